//! The launcher's failure kinds and their exit codes.

use std::fmt;

/// Why a command did not complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Bad input or usage (exit code 2): one line naming the file, field or flag, and what
    /// would be accepted. Nothing was written.
    Usage(String),
    /// A failure while running (exit code 1). Partial results are kept and resumable.
    Runtime(String),
    /// Interrupted by a signal (exit code 130). Partial results are kept and resumable.
    Interrupted(String),
}

impl Failure {
    /// The process exit code for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Usage(_) => 2,
            Failure::Runtime(_) => 1,
            Failure::Interrupted(_) => 130,
        }
    }

    /// Shorthand for a usage error.
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure::Usage(message.into())
    }

    /// Shorthand for a runtime error.
    pub fn runtime(message: impl Into<String>) -> Failure {
        Failure::Runtime(message.into())
    }
}

impl Failure {
    /// The same kind of failure with its message removed: for a failure already reported
    /// with [`report`] (the exit code stays, nothing is printed twice).
    pub fn said(self) -> Failure {
        match self {
            Failure::Usage(_) => Failure::Usage(String::new()),
            Failure::Runtime(_) => Failure::Runtime(String::new()),
            Failure::Interrupted(_) => Failure::Interrupted(String::new()),
        }
    }
}

/// Writes `line` and a newline to stderr in one `write` (see the `say!` macro).
pub fn say_line(line: &str) {
    use std::io::Write;
    let mut text = String::with_capacity(line.len() + 1);
    text.push_str(line);
    text.push('\n');
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// Prints a failure as the command's last line on stderr: `sweeprun: error: ...`, or
/// `sweeprun: interrupted ...`; nothing for an empty message (said already).
pub fn report(failure: &Failure) {
    if failure.to_string().is_empty() {
        return;
    }
    match failure {
        Failure::Interrupted(m) => say!("sweeprun: {m}"),
        _ => say!("sweeprun: error: {failure}"),
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Usage(m) | Failure::Runtime(m) | Failure::Interrupted(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Failure {}

/// Result type of launcher operations.
pub type Result<T> = std::result::Result<T, Failure>;
