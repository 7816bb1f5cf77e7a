//! Small helpers for reading sysfs files: one value per file, trailing
//! newline, and errors that name the file.

use std::fmt::Display;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::Error;

/// How much of a rejected value to quote in an error message: enough to
/// recognise it, short enough to keep the message on one readable line.
const QUOTE_LIMIT: usize = 40;

/// Reads a file and trims surrounding whitespace (sysfs ends values with a
/// newline).
pub(super) fn read_trimmed(path: &Path) -> Result<String, Error> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(text.trim().to_owned()),
        Err(source) => Err(Error::Io { path: path.to_owned(), source }),
    }
}

/// Reads a file holding one value; `expected` describes it for the error
/// message, e.g. "an integer in millidegrees Celsius".
pub(super) fn read_value<T: FromStr>(path: &Path, expected: &str) -> Result<T, Error> {
    let text = read_trimmed(path)?;
    text.parse().map_err(|_| parse_error(path, expected, &text))
}

/// Like [`read_value`], but a missing file gives `None`: for optional
/// attributes that some drivers do not expose.
pub(super) fn read_optional_value<T: FromStr>(path: &Path, expected: &str) -> Result<Option<T>, Error> {
    match read_value(path, expected) {
        Ok(value) => Ok(Some(value)),
        Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err),
    }
}

/// A [`Error::Parse`] that quotes (a prefix of) the rejected text with
/// escapes, so the message stays on one line whatever the file held.
pub(super) fn parse_error(path: &Path, expected: impl Display, found: &str) -> Error {
    let mut quoted: String = found.chars().take(QUOTE_LIMIT).collect();
    if quoted.len() < found.len() {
        quoted.push('…');
    }
    Error::Parse { path: path.to_owned(), what: format!("expected {expected}, found {quoted:?}") }
}

/// The entries `<dir>/<prefix><N>` with `N` all digits, as `(N, path)`
/// sorted by `N`. A missing `dir` gives no entries. Other names that start
/// with the prefix (`cpufreq` next to `cpu0`) are skipped.
pub(super) fn numbered_entries<N>(dir: &Path, prefix: &str) -> Result<Vec<(N, PathBuf)>, Error>
where
    N: FromStr + Ord,
{
    let io_error = |source| Error::Io { path: dir.to_owned(), source };
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(source) if source.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(io_error(source)),
    };
    let mut numbered = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_error)?;
        let name = entry.file_name();
        let Some(digits) = name.to_str().and_then(|n| n.strip_prefix(prefix)) else {
            continue;
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Ok(n) = digits.parse::<N>() {
            numbered.push((n, entry.path()));
        }
    }
    numbered.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(numbered)
}

/// Writes one value to a sysfs file in one `write`, as `echo value > path`
/// does. The file must exist: sysfs attributes are never created.
pub(crate) fn write_value(path: &Path, value: impl Display) -> Result<(), Error> {
    use std::io::Write;
    let write_error = |source| Error::Write { path: path.to_owned(), source };
    let mut file = fs::OpenOptions::new().write(true).truncate(true).open(path).map_err(write_error)?;
    file.write_all(format!("{value}\n").as_bytes()).map_err(write_error)
}
