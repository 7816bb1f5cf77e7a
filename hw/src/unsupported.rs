//! The backend for targets without one: every call reports
//! [`Error::Unsupported`], so callers compile everywhere and decide at run
//! time what to do without hardware data.

use std::path::Path;

use crate::cpufreq::CpufreqPolicy;
use crate::gpio::PinLevel;
use crate::hwmon::Hwmon;
use crate::pause::RunState;
use crate::thermal::{CoolingDevice, CpuFreq, ThermalZone};
use crate::topology::Topology;
use crate::Error;

pub(crate) const IS_SUPPORTED: bool = false;

pub(crate) fn usable_cpus() -> Result<Vec<usize>, Error> {
    Err(Error::Unsupported("reading the CPU affinity mask"))
}

pub(crate) fn online_cpus(_sys_root: &Path) -> Result<Vec<usize>, Error> {
    Err(Error::Unsupported("reading online CPUs from sysfs"))
}

pub(crate) fn pin_current_process(_cpu: usize) -> Result<(), Error> {
    Err(Error::Unsupported("pinning a process to a CPU"))
}

pub(crate) fn current_binding() -> Result<Vec<usize>, Error> {
    Err(Error::Unsupported("reading the calling thread's CPU binding"))
}

pub(crate) fn current_topology() -> Result<Topology, Error> {
    Err(Error::Unsupported("reading the CPU topology"))
}

pub(crate) fn topology_from_sysfs(_sys_root: &Path) -> Result<Topology, Error> {
    Err(Error::Unsupported("reading the CPU topology from sysfs"))
}

pub(crate) fn die_with_parent(_parent: u32) -> std::io::Result<()> {
    // Without a parent-death signal the rank still exits when its input pipe closes.
    Ok(())
}

pub(crate) fn start_writeback(_file: &std::fs::File, _offset: u64, _len: u64) {
    // The data reaches the disk at the next fsync, as without this hint.
}

pub(crate) fn try_lock_exclusive(_file: &std::fs::File) -> Result<bool, Error> {
    Err(Error::Unsupported("locking a file"))
}

pub(crate) fn thermal_zones(_sys_root: &Path) -> Result<Vec<ThermalZone>, Error> {
    Err(Error::Unsupported("reading thermal zones from sysfs"))
}

pub(crate) fn cooling_devices(_sys_root: &Path) -> Result<Vec<CoolingDevice>, Error> {
    Err(Error::Unsupported("reading cooling devices from sysfs"))
}

pub(crate) fn cpu_freqs(_sys_root: &Path) -> Result<Vec<CpuFreq>, Error> {
    Err(Error::Unsupported("reading cpufreq from sysfs"))
}

pub(crate) fn hwmon_devices(_sys_root: &Path) -> Result<Vec<Hwmon>, Error> {
    Err(Error::Unsupported("reading hwmon devices from sysfs"))
}

pub(crate) fn cpufreq_policies(_sys_root: &Path) -> Result<Vec<CpufreqPolicy>, Error> {
    Err(Error::Unsupported("reading cpufreq policies from sysfs"))
}

pub(crate) fn write_value(_path: &Path, _value: impl std::fmt::Display) -> Result<(), Error> {
    Err(Error::Unsupported("writing sysfs files"))
}

/// No mailbox device here: a `Vcio` can never be made.
#[derive(Debug)]
pub(crate) enum VcioInner {}

impl VcioInner {
    pub(crate) fn open(_path: &Path) -> Result<VcioInner, Error> {
        Err(Error::Unsupported("the firmware mailbox (/dev/vcio)"))
    }

    pub(crate) fn property(&mut self, _words: &mut [u32]) -> Result<(), Error> {
        match *self {}
    }
}

pub(crate) const IS_GPIO_SUPPORTED: bool = false;

pub(crate) fn fan_pin_level(_pin: u8) -> Result<PinLevel, Error> {
    Err(Error::Unsupported("reading a GPIO level (Linux with the `rpi` feature)"))
}

/// `ESRCH` from Linux; never produced here, since nothing is signalled.
pub(crate) const ESRCH: i32 = 3;

/// The signals `signal_group` would send.
#[derive(Debug, Clone, Copy)]
pub(crate) enum GroupSignal {
    Stop,
    Continue,
}

pub(crate) fn signal_group(_pgid: u32, signal: GroupSignal) -> Result<(), Error> {
    Err(Error::Unsupported(match signal {
        GroupSignal::Stop => "pausing a process group",
        GroupSignal::Continue => "resuming a process group",
    }))
}

pub(crate) fn process_run_state(_proc_root: &Path, _pid: u32) -> Result<RunState, Error> {
    Err(Error::Unsupported("reading a process's state from /proc"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_call_is_unsupported_with_a_readable_message() {
        let root = Path::new("/sys");
        let errors = [
            usable_cpus().unwrap_err(),
            online_cpus(root).unwrap_err(),
            pin_current_process(0).unwrap_err(),
            current_binding().unwrap_err(),
            current_topology().unwrap_err(),
            topology_from_sysfs(root).unwrap_err(),
            thermal_zones(root).unwrap_err(),
            cooling_devices(root).unwrap_err(),
            cpu_freqs(root).unwrap_err(),
            hwmon_devices(root).unwrap_err(),
            cpufreq_policies(root).unwrap_err(),
            write_value(root, 1).unwrap_err(),
            VcioInner::open(Path::new("/dev/vcio")).unwrap_err(),
            fan_pin_level(12).unwrap_err(),
            signal_group(1234, GroupSignal::Stop).unwrap_err(),
            signal_group(1234, GroupSignal::Continue).unwrap_err(),
            process_run_state(Path::new("/proc"), 1).unwrap_err(),
            try_lock_exclusive(&std::fs::File::open("/dev/null").unwrap()).unwrap_err(),
        ];
        for err in errors {
            assert!(matches!(err, Error::Unsupported(_)), "{err:?}");
            assert!(err.to_string().ends_with("is not supported on this platform"), "{err}");
        }
        // A `VcioInner` cannot exist, so its `property` can only be named.
        let _ = VcioInner::property;
        const { assert!(!IS_SUPPORTED && !IS_GPIO_SUPPORTED) };
        assert_eq!(ESRCH, 3, "Linux's number, so resume_group's check reads the same everywhere");
        // No parent-death signal here: a no-op the launcher can always call.
        assert!(die_with_parent(std::process::id()).is_ok());
        // Early writeback is a hint: nothing to do, nothing to fail.
        start_writeback(&std::fs::File::open("/dev/null").unwrap(), 0, 1);
    }
}
