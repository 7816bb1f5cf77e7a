//! The sweeprun node agent: reads a board's thermal state and reports it.
//!
//! This version takes [`Snapshot`]s of the sensors (thermal zones, cooling
//! devices such as the Pi's gpio-fan, cpufreq clocks) and renders them as
//! JSON or Prometheus text, which the `sweeprun-agent status` command
//! prints. The thermal control loop from the design (predicting the
//! temperature, capping the clock through `scaling_max_freq`, pausing and
//! resuming rank processes) is not implemented yet.
//!
//! Sensors come from [`sweeprun_hw`], always under an explicit sysfs root, so
//! the agent can be pointed at a fake or simulated tree.

#![deny(missing_docs)]

pub mod agent;
pub mod board_io;
pub mod config;
pub mod endpoint;
pub mod model;
pub mod plot;
pub mod policy;
mod prometheus;
pub mod registry;
pub mod simulate;
pub mod work;

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use sweeprun_hw::thermal::{self, CoolingDevice, CpuFreq, ThermalZone};

/// Every sensor reading the agent uses, taken at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Thermal zones, sorted by index.
    pub zones: Vec<ThermalZone>,
    /// Cooling devices (fans), sorted by index.
    pub cooling: Vec<CoolingDevice>,
    /// Per-CPU clocks, sorted by CPU; empty where there is no cpufreq driver.
    pub cpufreq: Vec<CpuFreq>,
    /// When the snapshot was taken, in milliseconds since the Unix epoch.
    pub taken_unix_ms: u64,
}

impl Snapshot {
    /// Reads every sensor under `sys_root` (normally `/sys`).
    ///
    /// Fails if any sensor that exists cannot be read or parsed: the agent
    /// must not mistake a dead sensor for a cool board.
    pub fn take(sys_root: &Path) -> Result<Snapshot, sweeprun_hw::Error> {
        Ok(Snapshot {
            zones: thermal::thermal_zones(sys_root)?,
            cooling: thermal::cooling_devices(sys_root)?,
            cpufreq: thermal::cpu_freqs(sys_root)?,
            taken_unix_ms: unix_ms_now(),
        })
    }

    /// Whether no sensor at all was found (no thermal zone, cooling device or cpufreq
    /// clock), as on most virtual machines or with a wrong `--sys-root`.
    pub fn is_empty(&self) -> bool {
        self.zones.is_empty() && self.cooling.is_empty() && self.cpufreq.is_empty()
    }

    /// The hottest zone's temperature in degrees Celsius, or `None` if there
    /// are no zones.
    pub fn max_temp_c(&self) -> Option<f64> {
        self.zones.iter().map(|zone| zone.temp_c).reduce(f64::max)
    }

    /// The snapshot as JSON. The keys are a contract (scripts read them):
    ///
    /// ```text
    /// { "taken_unix_ms": u64,
    ///   "max_temp_c": f64 | null,
    ///   "zones":   [{ "index", "type", "temp_c" }],
    ///   "cooling": [{ "index", "type", "cur_state", "max_state" }],
    ///   "cpufreq": [{ "cpu", "cur_khz", "min_khz" | null, "max_khz" | null }] }
    /// ```
    ///
    /// Temperatures are in degrees Celsius, frequencies in kHz.
    pub fn to_json(&self) -> Value {
        let zones: Vec<Value> =
            self.zones.iter().map(|z| json!({ "index": z.index, "type": z.kind, "temp_c": z.temp_c })).collect();
        let cooling: Vec<Value> = self
            .cooling
            .iter()
            .map(|c| {
                json!({
                    "index": c.index,
                    "type": c.kind,
                    "cur_state": c.cur_state,
                    "max_state": c.max_state,
                })
            })
            .collect();
        let cpufreq: Vec<Value> = self
            .cpufreq
            .iter()
            .map(|f| {
                json!({
                    "cpu": f.cpu,
                    "cur_khz": f.cur_khz,
                    "min_khz": f.min_khz,
                    "max_khz": f.max_khz,
                })
            })
            .collect();
        json!({
            "taken_unix_ms": self.taken_unix_ms,
            "max_temp_c": self.max_temp_c(),
            "zones": zones,
            "cooling": cooling,
            "cpufreq": cpufreq,
        })
    }

    /// The snapshot in the Prometheus text exposition format (version
    /// 0.0.4), one gauge family per reading:
    ///
    /// * `sweeprun_thermal_zone_celsius{zone,type}`
    /// * `sweeprun_cooling_device_state{device,type}` and
    ///   `sweeprun_cooling_device_max_state{device,type}`
    /// * `sweeprun_cpu_frequency_khz{cpu}`, plus
    ///   `sweeprun_cpu_frequency_min_khz{cpu}` and
    ///   `sweeprun_cpu_frequency_max_khz{cpu}` where the driver has limits
    ///
    /// Every family has its `# HELP` and `# TYPE` lines even when it has no
    /// samples, so a scraper sees the same metadata on every node.
    pub fn to_prometheus(&self) -> String {
        prometheus::render(self)
    }
}

/// Milliseconds since the Unix epoch; 0 if the clock is before 1970.
fn unix_ms_now() -> u64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests;
