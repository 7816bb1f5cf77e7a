//! The one error type of the hardware layer.

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::path::PathBuf;

/// Why a hardware read, an actuator or an affinity change failed.
///
/// `Display` is one line and names the file (or system call) involved. It
/// does not repeat the underlying OS error: that is returned by
/// [`source()`](StdError::source), so printing the chain (as `anyhow`'s
/// `{:#}` does) shows each cause exactly once.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// This target has no backend for the named feature.
    Unsupported(&'static str),
    /// A file or directory could not be read.
    Io {
        /// The file or directory that failed.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A file was read but its contents were not what the kernel writes.
    Parse {
        /// The file whose contents were rejected.
        path: PathBuf,
        /// What was expected and what was found.
        what: String,
    },
    /// A file could not be written (e.g. `scaling_max_freq`).
    Write {
        /// The file that failed.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A signal could not be sent to a process group.
    Signal {
        /// The process group.
        pgid: u32,
        /// The signal's name, e.g. `SIGSTOP`.
        signal: &'static str,
        /// The OS error (`ESRCH`: no such group; `EPERM`: not ours to signal).
        source: io::Error,
    },
    /// The firmware mailbox answered, but not with what was asked for: a
    /// response code other than success, a tag without its response bit, a
    /// value shorter than the tag's.
    Mailbox {
        /// What was wrong, naming the tag (e.g. `GET_THROTTLED (0x00030046)`).
        what: String,
    },
    /// A GPIO pin could not be read.
    Gpio {
        /// The pin's BCM number.
        pin: u8,
        /// The GPIO library's error.
        source: Box<dyn StdError + Send + Sync>,
    },
    /// A system call that involves no file failed (e.g. `sched_setaffinity`).
    Os {
        /// The call and what it was asked to do.
        call: &'static str,
        /// The OS error.
        source: io::Error,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Unsupported(what) => {
                write!(f, "{what} is not supported on this platform")
            }
            Error::Io { path, .. } => write!(f, "cannot read {}", path.display()),
            Error::Parse { path, what } => {
                write!(f, "cannot parse {}: {what}", path.display())
            }
            Error::Write { path, .. } => write!(f, "cannot write {}", path.display()),
            Error::Signal { pgid, signal, .. } => write!(f, "cannot send {signal} to process group {pgid}"),
            Error::Mailbox { what } => write!(f, "firmware mailbox: {what}"),
            Error::Gpio { pin, .. } => write!(f, "cannot read GPIO{pin}"),
            Error::Os { call, .. } => write!(f, "{call} failed"),
        }
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Error::Io { source, .. }
            | Error::Os { source, .. }
            | Error::Write { source, .. }
            | Error::Signal { source, .. } => Some(source),
            Error::Gpio { source, .. } => Some(&**source),
            Error::Unsupported(_) | Error::Parse { .. } | Error::Mailbox { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_error_names_the_path_and_keeps_the_cause_as_source() {
        let err = Error::Io {
            path: PathBuf::from("/sys/class/thermal/thermal_zone0/temp"),
            source: io::Error::from(io::ErrorKind::NotFound),
        };
        assert_eq!(err.to_string(), "cannot read /sys/class/thermal/thermal_zone0/temp");
        let source = err.source().expect("io error has a source");
        assert_eq!(source.to_string(), io::Error::from(io::ErrorKind::NotFound).to_string());
    }

    #[test]
    fn parse_error_is_one_line() {
        let err = Error::Parse { path: PathBuf::from("/x/temp"), what: "expected an integer, found \"a\\nb\"".into() };
        assert_eq!(err.to_string(), "cannot parse /x/temp: expected an integer, found \"a\\nb\"");
        assert!(!err.to_string().contains('\n'));
        assert!(err.source().is_none());
    }
}
