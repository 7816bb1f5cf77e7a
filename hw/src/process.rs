//! Process plumbing the launcher needs from the OS: children that die with their
//! launcher, and exclusive locks on journal files.

use std::fs::File;

use crate::{sys, Error};

/// Makes the calling process receive SIGKILL when its parent dies, and exits it at once
/// (`_exit(1)`) if the parent with pid `parent` is already gone.
///
/// Call it first thing in the child (or in a freshly forked child before exec, as a
/// `CommandExt::pre_exec` hook: it only makes async-signal-safe system calls and does not
/// allocate); the parent check closes the race with a parent that died before the call.
/// Note that Linux delivers the signal when the parent *thread* that spawned exits, so
/// spawn from a long-lived thread.
pub fn die_with_parent(parent: u32) -> std::io::Result<()> {
    sys::die_with_parent(parent)
}

/// Makes the program `command` runs receive SIGKILL when the calling thread (its parent)
/// dies, through a `pre_exec` hook (so the spawn forks instead of using posix_spawn). For
/// programs a rank runs per combo: they must not outlive the rank.
pub fn die_with_parent_on_exec(command: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id();
    // SAFETY: the hook runs between fork and exec; `die_with_parent` only makes
    // async-signal-safe system calls (prctl, getppid, _exit) and does not allocate.
    unsafe {
        command.pre_exec(move || sys::die_with_parent(parent));
    }
}

/// The pids of every living descendant of process `pid` (children first, then theirs),
/// read from `/proc` (empty where there is none). A snapshot: processes may come and go.
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(child) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
            // `pid (comm) state ppid ...`; comm may hold spaces and parentheses.
            let ppid = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse().ok());
            if let Some(ppid) = ppid {
                parents.push((child, ppid));
            }
        }
    }
    let mut found = vec![pid];
    let mut next = 0;
    while next < found.len() {
        let parent = found[next];
        found.extend(parents.iter().filter(|&&(_, ppid)| ppid == parent).map(|&(child, _)| child));
        next += 1;
    }
    found.remove(0);
    found
}

/// When process `pid` started (clock ticks since boot, `/proc/<pid>/stat` field 22), to
/// tell it from a later process that reuses its pid; `None` if it is gone (or no `/proc`).
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after `(comm)` start at field 3 (state).
    stat.rsplit_once(')')?.1.split_whitespace().nth(22 - 3)?.parse().ok()
}

/// Starts writing `len` bytes of `file` from `offset` to the disk without waiting (Linux
/// `sync_file_range(SYNC_FILE_RANGE_WRITE)`; nothing elsewhere). A hint: durability still
/// takes an fsync, which then has less left to wait for.
pub fn start_writeback(file: &File, offset: u64, len: u64) {
    sys::start_writeback(file, offset, len)
}

/// Takes an exclusive advisory lock on `file` without waiting: `Ok(true)` when this
/// process now holds it, `Ok(false)` when another process does. The lock lasts as long
/// as the file stays open.
pub fn try_lock_exclusive(file: &File) -> Result<bool, Error> {
    sys::try_lock_exclusive(file)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn descendants_lists_the_processes_a_shell_started() {
        let mut shell = std::process::Command::new("sh").arg("-c").arg("sleep 30 & sleep 30; wait").spawn().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut found = Vec::new();
        while found.len() < 2 && std::time::Instant::now() < deadline {
            found = descendants(shell.id());
            std::thread::yield_now();
        }
        for &pid in &found {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL);
        }
        shell.kill().unwrap();
        shell.wait().unwrap();
        assert_eq!(found.len(), 2, "the shell's two sleeps: {found:?}");
        assert!(start_time(std::process::id()).is_some_and(|t| t > 0));
        assert_eq!(start_time(u32::MAX), None, "no such process");
    }

    #[test]
    fn a_second_open_file_cannot_take_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal");
        let first = File::create(&path).unwrap();
        let second = File::open(&path).unwrap();
        assert!(try_lock_exclusive(&first).unwrap());
        assert!(!try_lock_exclusive(&second).unwrap(), "flock locks are per open file description");
        drop(first);
        assert!(try_lock_exclusive(&second).unwrap(), "released when the holder closes");
    }
}
