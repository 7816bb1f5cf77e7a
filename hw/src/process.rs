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
