//! CPU lists from sysfs and affinity through `sched_{get,set}affinity`.

use std::io;
use std::path::Path;

use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::{getpid, Pid};

use super::sysfs::{parse_error, read_trimmed};
use crate::topology::parse_cpu_list;
use crate::Error;

pub(crate) fn usable_cpus() -> Result<Vec<usize>, Error> {
    // getpid() rather than 0: 0 would mean the *calling thread*, whose mask
    // may have been narrowed on its own; the process's mask is the main
    // thread's (its tid equals the pid).
    let set = sched_getaffinity(getpid()).map_err(|errno| Error::Os {
        call: "sched_getaffinity (reading this process's CPU mask)",
        source: io::Error::from(errno),
    })?;
    // is_set only fails for numbers >= CpuSet::count(), which the range
    // never reaches.
    Ok((0..CpuSet::count()).filter(|&cpu| set.is_set(cpu).unwrap_or(false)).collect())
}

pub(crate) fn online_cpus(sys_root: &Path) -> Result<Vec<usize>, Error> {
    let path = sys_root.join("devices/system/cpu/online");
    let text = read_trimmed(&path)?;
    parse_cpu_list(&text).ok_or_else(|| parse_error(&path, "a CPU list like \"0-3,5\"", &text))
}

// Nothing here may allocate: callers use it between fork and exec.
pub(crate) fn pin_current_process(cpu: usize) -> Result<(), Error> {
    let pin_error =
        |errno| Error::Os { call: "sched_setaffinity (pinning to one CPU)", source: io::Error::from(errno) };
    let mut set = CpuSet::new();
    set.set(cpu).map_err(pin_error)?;
    sched_setaffinity(Pid::from_raw(0), &set).map_err(pin_error)
}
