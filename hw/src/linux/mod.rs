//! The Linux backend: sysfs readers, `sched_{get,set}affinity`, `prctl`, `flock` and
//! `sync_file_range`.

mod process;
mod sysfs;
mod thermal;
mod topology;

pub(crate) use process::{die_with_parent, start_writeback, try_lock_exclusive};
pub(crate) use thermal::{cooling_devices, cpu_freqs, thermal_zones};
pub(crate) use topology::{online_cpus, pin_current_process, usable_cpus};

pub(crate) const IS_SUPPORTED: bool = true;
