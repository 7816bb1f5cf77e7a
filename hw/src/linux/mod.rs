//! The Linux backend: sysfs readers, `sched_{get,set}affinity`, `prctl`, `flock` and
//! `sync_file_range`.

mod affinity;
mod process;
mod sysfs;
mod thermal;
mod topology;

pub(crate) use affinity::{current_binding, pin_current_process, usable_cpus};
pub(crate) use process::{die_with_parent, start_writeback, try_lock_exclusive};
pub(crate) use thermal::{cooling_devices, cpu_freqs, thermal_zones};
pub(crate) use topology::{online_cpus, topology_from_sysfs};

pub(crate) const IS_SUPPORTED: bool = true;

pub(crate) fn current_topology() -> Result<crate::topology::Topology, crate::Error> {
    topology_from_sysfs(std::path::Path::new("/sys"))
}
