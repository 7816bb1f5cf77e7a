//! Thermal zones, cooling devices and cpufreq from sysfs.

use std::path::Path;

use super::sysfs::{numbered_entries, read_optional_value, read_trimmed, read_value};
use crate::thermal::{CoolingDevice, CpuFreq, ThermalZone};
use crate::Error;

pub(super) const MILLIDEGREES: &str = "an integer in millidegrees Celsius";
const STATE: &str = "a non-negative integer";
const KHZ: &str = "a non-negative integer in kHz";

pub(crate) fn thermal_zones(sys_root: &Path) -> Result<Vec<ThermalZone>, Error> {
    let dir = sys_root.join("class/thermal");
    numbered_entries(&dir, "thermal_zone")?
        .into_iter()
        .map(|(index, zone)| {
            let kind = read_trimmed(&zone.join("type"))?;
            let millidegrees: i64 = read_value(&zone.join("temp"), MILLIDEGREES)?;
            Ok(ThermalZone { index, kind, temp_c: millidegrees_to_celsius(millidegrees) })
        })
        .collect()
}

pub(crate) fn cooling_devices(sys_root: &Path) -> Result<Vec<CoolingDevice>, Error> {
    let dir = sys_root.join("class/thermal");
    numbered_entries(&dir, "cooling_device")?
        .into_iter()
        .map(|(index, device)| {
            Ok(CoolingDevice {
                index,
                kind: read_trimmed(&device.join("type"))?,
                cur_state: read_value(&device.join("cur_state"), STATE)?,
                max_state: read_value(&device.join("max_state"), STATE)?,
            })
        })
        .collect()
}

pub(crate) fn cpu_freqs(sys_root: &Path) -> Result<Vec<CpuFreq>, Error> {
    let dir = sys_root.join("devices/system/cpu");
    let mut freqs = Vec::new();
    for (cpu, cpu_dir) in numbered_entries(&dir, "cpu")? {
        let cpufreq = cpu_dir.join("cpufreq");
        match cpufreq.try_exists() {
            Ok(true) => {}
            // No driver, or the CPU is offline: nothing to report for it.
            Ok(false) => continue,
            Err(source) => return Err(Error::Io { path: cpufreq, source }),
        }
        freqs.push(CpuFreq {
            cpu,
            cur_khz: read_value(&cpufreq.join("scaling_cur_freq"), KHZ)?,
            min_khz: read_optional_value(&cpufreq.join("scaling_min_freq"), KHZ)?,
            max_khz: read_optional_value(&cpufreq.join("scaling_max_freq"), KHZ)?,
        });
    }
    Ok(freqs)
}

/// Converts the kernel's millidegrees to degrees. Exact for every reading a
/// sensor can produce (well under 2^53 m°C) and correctly rounded, so
/// `48312` gives the same `f64` as the literal `48.312`.
pub(super) fn millidegrees_to_celsius(millidegrees: i64) -> f64 {
    millidegrees as f64 / 1000.0
}
