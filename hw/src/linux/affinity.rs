//! Affinity through `sched_{get,set}affinity`: the backend without the
//! `hwloc` feature, and the reference the hwloc backend is tested against.

use std::io;

use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::{getpid, Pid};

use crate::Error;

pub(crate) fn usable_cpus() -> Result<Vec<usize>, Error> {
    // getpid() rather than 0: 0 would mean the *calling thread*, whose mask
    // may have been narrowed on its own; the process's mask is the main
    // thread's (its tid equals the pid).
    let set = sched_getaffinity(getpid()).map_err(|errno| Error::Os {
        call: "sched_getaffinity (reading this process's CPU mask)",
        source: io::Error::from(errno),
    })?;
    Ok(cpus_in(&set))
}

pub(crate) fn current_binding() -> Result<Vec<usize>, Error> {
    let set = sched_getaffinity(Pid::from_raw(0)).map_err(|errno| Error::Os {
        call: "sched_getaffinity (reading this thread's CPU mask)",
        source: io::Error::from(errno),
    })?;
    Ok(cpus_in(&set))
}

// Nothing here may allocate: callers use it between fork and exec.
pub(crate) fn pin_current_process(cpu: usize) -> Result<(), Error> {
    let pin_error =
        |errno| Error::Os { call: "sched_setaffinity (pinning to one CPU)", source: io::Error::from(errno) };
    let mut set = CpuSet::new();
    set.set(cpu).map_err(pin_error)?;
    sched_setaffinity(Pid::from_raw(0), &set).map_err(pin_error)
}

fn cpus_in(set: &CpuSet) -> Vec<usize> {
    // is_set only fails for numbers >= CpuSet::count(), which the range
    // never reaches.
    (0..CpuSet::count()).filter(|&cpu| set.is_set(cpu).unwrap_or(false)).collect()
}
