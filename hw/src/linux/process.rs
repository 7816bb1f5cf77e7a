//! `prctl(PR_SET_PDEATHSIG)`, `flock` and `sync_file_range` for the launcher.

use std::fs::File;
use std::os::fd::AsRawFd;

use crate::Error;

pub(crate) fn die_with_parent(parent: u32) -> std::io::Result<()> {
    // SAFETY: prctl with PR_SET_PDEATHSIG takes a signal number and has no memory
    // arguments; getppid and _exit are always safe to call (async-signal-safe too).
    unsafe {
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // The parent may have died between fork and prctl.
        if i64::from(libc::getppid()) != i64::from(parent) {
            libc::_exit(1);
        }
    }
    Ok(())
}

pub(crate) fn try_lock_exclusive(file: &File) -> Result<bool, Error> {
    // SAFETY: flock on a file descriptor owned by `file`, which outlives the call.
    let status = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if status == 0 {
        return Ok(true);
    }
    let error = std::io::Error::last_os_error();
    if error.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(Error::Os { call: "flock", source: error })
    }
}

pub(crate) fn start_writeback(file: &File, offset: u64, len: u64) {
    let (Ok(offset), Ok(len)) = (libc::off64_t::try_from(offset), libc::off64_t::try_from(len)) else { return };
    // SAFETY: sync_file_range on a file descriptor owned by `file`, which outlives the
    // call; it takes no memory arguments. A failure only means no early writeback.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE);
    }
}
