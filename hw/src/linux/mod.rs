//! The Linux backend: sysfs readers and `sched_{get,set}affinity`.

mod sysfs;
mod thermal;
mod topology;

pub(crate) use thermal::{cooling_devices, cpu_freqs, thermal_zones};
pub(crate) use topology::{online_cpus, pin_current_process, usable_cpus};

pub(crate) const IS_SUPPORTED: bool = true;
