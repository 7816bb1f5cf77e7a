//! The Linux backend: sysfs readers and the `scaling_max_freq` writer,
//! `sched_{get,set}affinity` (or hwloc with the `hwloc` feature), `prctl`,
//! `flock`, `sync_file_range`, the `/dev/vcio` ioctl, `killpg`, and GPIO
//! levels through rppal (the `rpi` feature).

// Compiled with `hwloc` too: the tests compare hwloc's answers with these.
#[cfg_attr(
    all(feature = "hwloc", not(test)),
    expect(dead_code, reason = "with `hwloc` only the tests call the sched backend")
)]
pub(crate) mod affinity;
mod cpufreq;
mod gpio;
#[cfg(feature = "hwloc")]
mod hwloc;
mod hwmon;
mod mailbox;
mod pause;
mod process;
mod sysfs;
mod thermal;
mod topology;

#[cfg(not(feature = "hwloc"))]
pub(crate) use affinity::{current_binding, pin_current_process, usable_cpus};
pub(crate) use cpufreq::cpufreq_policies;
pub(crate) use gpio::{fan_pin_level, IS_GPIO_SUPPORTED};
#[cfg(feature = "hwloc")]
pub(crate) use hwloc::{current_binding, current_topology, pin_current_process, usable_cpus};
pub(crate) use hwmon::hwmon_devices;
pub(crate) use mailbox::VcioInner;
pub(crate) use pause::{process_run_state, signal_group, GroupSignal, ESRCH};
pub(crate) use process::{die_with_parent, start_writeback, try_lock_exclusive};
pub(crate) use sysfs::write_value;
pub(crate) use thermal::{cooling_devices, cpu_freqs, thermal_zones};
pub(crate) use topology::{online_cpus, topology_from_sysfs};

pub(crate) const IS_SUPPORTED: bool = true;

#[cfg(not(feature = "hwloc"))]
pub(crate) fn current_topology() -> Result<crate::topology::Topology, crate::Error> {
    topology_from_sysfs(std::path::Path::new("/sys"))
}
