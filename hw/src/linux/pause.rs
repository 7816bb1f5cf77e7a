//! `killpg` and `/proc/<pid>/stat`.

use std::fs;
use std::io;
use std::path::Path;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::{getpgrp, Pid};

use super::sysfs::parse_error;
use crate::pause::RunState;
use crate::Error;

pub(crate) const ESRCH: i32 = libc::ESRCH;

/// The signals [`signal_group`] sends.
#[derive(Debug, Clone, Copy)]
pub(crate) enum GroupSignal {
    Stop,
    Continue,
}

pub(crate) fn signal_group(pgid: u32, signal: GroupSignal) -> Result<(), Error> {
    let (sig, name) = match signal {
        GroupSignal::Stop => (Signal::SIGSTOP, "SIGSTOP"),
        GroupSignal::Continue => (Signal::SIGCONT, "SIGCONT"),
    };
    let fail = |source| Err(Error::Signal { pgid, signal: name, source });
    let raw = match i32::try_from(pgid) {
        Ok(raw) if raw > 0 => raw,
        // killpg(0) would signal the caller's own group; larger numbers are
        // no pid at all.
        _ => return fail(io::Error::new(io::ErrorKind::InvalidInput, "not a process group id")),
    };
    if raw == getpgrp().as_raw() {
        return fail(io::Error::new(io::ErrorKind::InvalidInput, "the caller's own process group"));
    }
    killpg(Pid::from_raw(raw), sig).or_else(|errno| fail(io::Error::from(errno)))
}

pub(crate) fn process_run_state(proc_root: &Path, pid: u32) -> Result<RunState, Error> {
    let path = proc_root.join(pid.to_string()).join("stat");
    let stat = match fs::read_to_string(&path) {
        Ok(stat) => stat,
        // ESRCH: the process exited between open and read.
        Err(err) if err.kind() == io::ErrorKind::NotFound || err.raw_os_error() == Some(libc::ESRCH) => {
            return Ok(RunState::Gone)
        }
        Err(source) => return Err(Error::Io { path, source }),
    };
    let expected = "\"<pid> (<comm>) <state letter> ...\"";
    // The command name (field 2) may itself contain spaces and ')'.
    let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next());
    match state {
        Some("R" | "S" | "D" | "I" | "W" | "P" | "K") => Ok(RunState::Running),
        Some("T" | "t") => Ok(RunState::Stopped),
        Some("Z" | "X" | "x") => Ok(RunState::Gone),
        _ => Err(parse_error(&path, expected, stat.trim_end())),
    }
}
