//! Pausing and resuming process groups (`SIGSTOP` / `SIGCONT`), and
//! reading whether a process is stopped.
//!
//! The node agent's second actuator, after the clock cap: stopping a rank
//! stops its heat at once. [`ProcessPauser`] remembers what it stopped so
//! that [`ProcessPauser::undo`], or dropping it, lets everything run again.
//! A stopped process keeps its memory, open files and locks, and wall-clock
//! timers keep running; the ranks must tolerate that.

use std::collections::BTreeSet;
use std::path::Path;

use crate::{sys, Error};

/// What `/proc/<pid>/stat` says about a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// Not stopped: running, runnable, sleeping or waiting for I/O
    /// (`R`, `S`, `D`, `I`, ...).
    Running,
    /// Stopped by a signal (`T`) or by a tracer (`t`).
    Stopped,
    /// Exited: a zombie (`Z`), dead (`X`), or no such process.
    Gone,
}

/// Reads the state of process `pid` from field 3 of
/// `<proc_root>/<pid>/stat` (normally `proc_root` is `/proc`).
///
/// A missing process is [`RunState::Gone`], not an error; a state letter
/// this crate does not know is an [`Error::Parse`] naming the file.
pub fn process_run_state(proc_root: &Path, pid: u32) -> Result<RunState, Error> {
    sys::process_run_state(proc_root, pid)
}

/// Sends signals to process groups and remembers which it paused.
///
/// Process groups, not processes: a rank and the helpers it starts share
/// its group (start it with `CommandExt::process_group(0)`), so they stop
/// and resume together. The caller's own group is refused, since pausing it
/// would stop the caller, with nobody left to resume it.
#[derive(Debug, Default)]
pub struct ProcessPauser {
    paused: BTreeSet<u32>,
}

impl ProcessPauser {
    /// A pauser that has paused nothing.
    pub fn new() -> ProcessPauser {
        ProcessPauser::default()
    }

    /// Sends `SIGSTOP` to process group `pgid` and remembers it.
    ///
    /// [`Error::Signal`] when the group does not exist (`ESRCH`), is not
    /// ours to signal (`EPERM`), is 0 or the caller's own group
    /// (`InvalidInput`). Stopping is asynchronous: poll
    /// [`process_run_state`] to see it happen.
    pub fn pause(&mut self, pgid: u32) -> Result<(), Error> {
        sys::signal_group(pgid, sys::GroupSignal::Stop)?;
        self.paused.insert(pgid);
        Ok(())
    }

    /// Sends `SIGCONT` to process group `pgid` (paused by this pauser or
    /// not) and forgets it. A group that no longer exists has nothing left
    /// to resume: `Ok`.
    pub fn resume(&mut self, pgid: u32) -> Result<(), Error> {
        resume_group(pgid)?;
        self.paused.remove(&pgid);
        Ok(())
    }

    /// The groups this pauser has paused and not resumed, ascending.
    pub fn paused(&self) -> impl Iterator<Item = u32> + '_ {
        self.paused.iter().copied()
    }

    /// Resumes every group this pauser paused. Tries them all; the ones
    /// that fail stay remembered for a retry. Returns the first error.
    pub fn undo(&mut self) -> Result<(), Error> {
        let mut first_error = None;
        self.paused.retain(|&pgid| match resume_group(pgid) {
            Ok(()) => false,
            Err(err) => {
                first_error.get_or_insert(err);
                true
            }
        });
        first_error.map_or(Ok(()), Err)
    }
}

impl Drop for ProcessPauser {
    fn drop(&mut self) {
        // Never leave a rank stopped behind; nobody is left to report to.
        let _ = self.undo();
    }
}

/// `SIGCONT` to `pgid`; a group that is gone counts as resumed.
fn resume_group(pgid: u32) -> Result<(), Error> {
    match sys::signal_group(pgid, sys::GroupSignal::Continue) {
        Err(Error::Signal { source, .. }) if source.raw_os_error() == Some(sys::ESRCH) => Ok(()),
        other => other,
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::io;
    use std::os::unix::process::CommandExt;
    use std::process::{Child, Command};
    use std::time::{Duration, Instant};

    use super::*;
    use crate::testutil::FakeSysfs;

    /// A `sleep 30` in a process group of its own, killed and reaped on drop.
    struct Sleeper(Child);

    impl Sleeper {
        /// Returns once the child leads its own process group. (A real kernel
        /// has done that before `spawn` returns; qemu-user's emulated vfork
        /// lets `spawn` return earlier.)
        fn spawn() -> Sleeper {
            let sleeper = Sleeper(Command::new("sleep").arg("30").process_group(0).spawn().expect("spawn sleep"));
            let deadline = Instant::now() + Duration::from_secs(10);
            while sleeper.stat_field(2) != sleeper.pid().to_string() {
                assert!(Instant::now() < deadline, "sleep never got its own process group");
                std::thread::sleep(Duration::from_millis(5));
            }
            sleeper
        }

        /// Field `3 + index` of /proc/<pid>/stat (0: the state letter, 2: the
        /// process group).
        fn stat_field(&self, index: usize) -> String {
            let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap();
            stat.rsplit_once(')').unwrap().1.split_whitespace().nth(index).unwrap().to_owned()
        }

        fn pid(&self) -> u32 {
            self.0.id()
        }

        /// Waits up to 10 s for the state letter in /proc/<pid>/stat.
        fn wait_for_letter(&self, letter: char) {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let state = self.stat_field(0);
                if state == letter.to_string() {
                    return;
                }
                assert!(Instant::now() < deadline, "state {state}, waited for {letter}");
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }

    impl Drop for Sleeper {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    #[test]
    fn pause_stops_a_real_group_and_resume_lets_it_sleep_again() {
        let sleeper = Sleeper::spawn();
        let proc_root = Path::new("/proc");
        sleeper.wait_for_letter('S');
        assert_eq!(process_run_state(proc_root, sleeper.pid()).unwrap(), RunState::Running);

        let mut pauser = ProcessPauser::new();
        pauser.pause(sleeper.pid()).unwrap();
        sleeper.wait_for_letter('T');
        assert_eq!(process_run_state(proc_root, sleeper.pid()).unwrap(), RunState::Stopped);
        assert_eq!(pauser.paused().collect::<Vec<_>>(), vec![sleeper.pid()]);

        pauser.resume(sleeper.pid()).unwrap();
        sleeper.wait_for_letter('S');
        assert_eq!(process_run_state(proc_root, sleeper.pid()).unwrap(), RunState::Running);
        assert_eq!(pauser.paused().count(), 0);
    }

    #[test]
    fn undo_and_drop_resume_every_paused_group() {
        let (a, b) = (Sleeper::spawn(), Sleeper::spawn());
        let mut pauser = ProcessPauser::new();
        pauser.pause(a.pid()).unwrap();
        pauser.pause(b.pid()).unwrap();
        a.wait_for_letter('T');
        b.wait_for_letter('T');
        pauser.undo().unwrap();
        a.wait_for_letter('S');
        b.wait_for_letter('S');

        pauser.pause(a.pid()).unwrap();
        a.wait_for_letter('T');
        drop(pauser);
        a.wait_for_letter('S');
    }

    #[test]
    fn a_group_that_ended_is_gone_and_counts_as_resumed() {
        let mut sleeper = Sleeper::spawn();
        let pid = sleeper.pid();
        let mut pauser = ProcessPauser::new();
        pauser.pause(pid).unwrap();
        sleeper.0.kill().unwrap();
        sleeper.0.wait().unwrap();
        assert_eq!(process_run_state(Path::new("/proc"), pid).unwrap(), RunState::Gone);
        pauser.undo().unwrap();
        assert_eq!(pauser.paused().count(), 0);
        // Pausing a group that does not exist is an error naming it.
        let err = pauser.pause(pid).unwrap_err();
        assert_eq!(err.to_string(), format!("cannot send SIGSTOP to process group {pid}"));
        assert!(matches!(&err, Error::Signal { source, .. } if source.raw_os_error() == Some(libc::ESRCH)));
    }

    #[test]
    fn the_own_group_and_group_zero_are_refused() {
        let mut pauser = ProcessPauser::new();
        let own = u32::try_from(nix::unistd::getpgrp().as_raw()).unwrap();
        for pgid in [own, 0, u32::MAX] {
            match pauser.pause(pgid).unwrap_err() {
                Error::Signal { source, .. } => assert_eq!(source.kind(), io::ErrorKind::InvalidInput),
                other => panic!("expected a signal error, got {other:?}"),
            }
        }
        assert_eq!(pauser.paused().count(), 0);
    }

    #[test]
    fn run_state_from_fake_proc_files() {
        let proc = FakeSysfs::new();
        // A command name may hold spaces and ')': the state follows the last ')'.
        proc.write("100/stat", "100 (a) b (c)) T 1 100 100 0 -1 4194560 0\n");
        proc.write("101/stat", "101 (sleep) S 1 101 101 0 -1\n");
        proc.write("102/stat", "102 (cc) Z 1 102 102\n");
        proc.write("103/stat", "103 (gdb target) t 1\n");
        proc.write("104/stat", "104 (kworker/0:1) I 2 0 0\n");
        proc.write("105/stat", "105 (x) R 1\n");
        let state = |pid| process_run_state(proc.root(), pid).unwrap();
        assert_eq!(state(100), RunState::Stopped);
        assert_eq!(state(101), RunState::Running);
        assert_eq!(state(102), RunState::Gone);
        assert_eq!(state(103), RunState::Stopped);
        assert_eq!(state(104), RunState::Running);
        assert_eq!(state(105), RunState::Running);
        assert_eq!(state(999), RunState::Gone, "no such process");
    }

    #[test]
    fn garbled_stat_is_an_error_naming_the_file() {
        let proc = FakeSysfs::new();
        proc.write("7/stat", "7 (x) ? 1\n");
        proc.write("8/stat", "8 no parenthesis S\n");
        for pid in [7, 8] {
            let err = process_run_state(proc.root(), pid).unwrap_err();
            let path = proc.root().join(format!("{pid}/stat"));
            assert!(matches!(&err, Error::Parse { path: p, .. } if *p == path), "{err:?}");
        }
    }
}
