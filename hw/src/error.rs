//! The one error type of the hardware layer.

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::path::PathBuf;

/// Why a hardware read or an affinity change failed.
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
            Error::Os { call, .. } => write!(f, "{call} failed"),
        }
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Error::Io { source, .. } | Error::Os { source, .. } => Some(source),
            Error::Unsupported(_) | Error::Parse { .. } => None,
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
