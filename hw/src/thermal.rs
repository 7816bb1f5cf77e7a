//! Thermal state from sysfs: zone temperatures, cooling devices and CPU
//! clocks.
//!
//! Every reader takes the sysfs root (normally `/sys`), so tests and the
//! simulated board can use a fake tree. Entries are returned sorted by their
//! kernel index (`thermal_zone10` after `thermal_zone2`).

use std::path::Path;

use crate::{sys, Error};

/// One `<sys_root>/class/thermal/thermal_zone<index>`.
#[derive(Debug, Clone, PartialEq)]
pub struct ThermalZone {
    /// The `N` in `thermal_zoneN`.
    pub index: u32,
    /// The zone's `type` file, e.g. `cpu-thermal` on a Pi 4B.
    pub kind: String,
    /// Temperature in degrees Celsius (the kernel's `temp` file is in
    /// millidegrees Celsius; `48312` reads as `48.312`).
    pub temp_c: f64,
}

/// One `<sys_root>/class/thermal/cooling_device<index>`, such as the Pi's
/// `gpio-fan`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoolingDevice {
    /// The `N` in `cooling_deviceN`.
    pub index: u32,
    /// The device's `type` file, e.g. `gpio-fan`.
    pub kind: String,
    /// Current cooling state, `0` (off / no cooling) to `max_state`. For a
    /// two-speed gpio-fan, `1` means the fan is commanded on (not measured).
    pub cur_state: u32,
    /// Highest state the device supports (dimensionless).
    pub max_state: u32,
}

/// The cpufreq view of one CPU, from
/// `<sys_root>/devices/system/cpu/cpu<cpu>/cpufreq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuFreq {
    /// The CPU number.
    pub cpu: usize,
    /// `scaling_cur_freq`, in kHz: the clock the kernel *requested*. On a Pi
    /// the firmware may run the core slower while it throttles.
    pub cur_khz: u64,
    /// `scaling_min_freq`, in kHz, if the driver exposes it.
    pub min_khz: Option<u64>,
    /// `scaling_max_freq`, in kHz, if the driver exposes it: the cap the
    /// governor stays under (the node agent's clock actuator).
    pub max_khz: Option<u64>,
}

/// Reads every thermal zone under `<sys_root>/class/thermal`, sorted by
/// index.
///
/// A missing thermal directory means "no zones" (many VMs have none) and
/// gives an empty `Vec`. A zone whose `type` or `temp` file cannot be read
/// or parsed is an error naming that file: a sensor that stops answering
/// must not look like a cool board.
pub fn thermal_zones(sys_root: &Path) -> Result<Vec<ThermalZone>, Error> {
    sys::thermal_zones(sys_root)
}

/// Reads every cooling device under `<sys_root>/class/thermal`, sorted by
/// index. A missing thermal directory gives an empty `Vec`.
pub fn cooling_devices(sys_root: &Path) -> Result<Vec<CoolingDevice>, Error> {
    sys::cooling_devices(sys_root)
}

/// Reads the cpufreq state of every CPU under
/// `<sys_root>/devices/system/cpu`, sorted by CPU number.
///
/// CPUs without a `cpufreq` directory (no driver, as in most VMs, or an
/// offline CPU) are skipped. A missing `scaling_min_freq` or
/// `scaling_max_freq` gives `None`; a missing `scaling_cur_freq` is an error.
pub fn cpu_freqs(sys_root: &Path) -> Result<Vec<CpuFreq>, Error> {
    sys::cpu_freqs(sys_root)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use crate::testutil::FakeSysfs;

    /// The shape of a Pi 4B with the gpio-fan overlay, plus a second zone.
    fn pi_like_tree() -> FakeSysfs {
        let sys = FakeSysfs::new();
        sys.write("class/thermal/thermal_zone0/type", "cpu-thermal\n");
        sys.write("class/thermal/thermal_zone0/temp", "48312\n");
        sys.write("class/thermal/thermal_zone1/type", "pmic-thermal\n");
        sys.write("class/thermal/thermal_zone1/temp", "-1500\n");
        sys.write("class/thermal/cooling_device0/type", "gpio-fan\n");
        sys.write("class/thermal/cooling_device0/cur_state", "1\n");
        sys.write("class/thermal/cooling_device0/max_state", "1\n");
        for cpu in 0..4 {
            let dir = format!("devices/system/cpu/cpu{cpu}/cpufreq");
            sys.write(&format!("{dir}/scaling_cur_freq"), &format!("{}\n", 1_500_000 - cpu * 100));
            sys.write(&format!("{dir}/scaling_min_freq"), "600000\n");
            sys.write(&format!("{dir}/scaling_max_freq"), "1500000\n");
        }
        // Siblings that share the `cpu` prefix must be ignored.
        sys.write("devices/system/cpu/cpufreq/policy0/scaling_cur_freq", "1500000\n");
        sys.write("devices/system/cpu/cpuidle/current_driver", "none\n");
        sys.write("devices/system/cpu/online", "0-3\n");
        sys
    }

    #[test]
    fn zones_are_read_in_degrees_celsius() {
        let sys = pi_like_tree();
        let zones = thermal_zones(sys.root()).unwrap();
        assert_eq!(
            zones,
            vec![
                ThermalZone { index: 0, kind: "cpu-thermal".into(), temp_c: 48.312 },
                ThermalZone { index: 1, kind: "pmic-thermal".into(), temp_c: -1.5 },
            ]
        );
    }

    #[test]
    fn zones_sort_numerically_not_by_name() {
        let sys = FakeSysfs::new();
        for index in [10, 2, 0] {
            sys.write(&format!("class/thermal/thermal_zone{index}/type"), "z\n");
            sys.write(&format!("class/thermal/thermal_zone{index}/temp"), "1000\n");
        }
        let indices: Vec<u32> = thermal_zones(sys.root()).unwrap().iter().map(|z| z.index).collect();
        assert_eq!(indices, vec![0, 2, 10]);
    }

    #[test]
    fn missing_thermal_dir_means_no_zones_and_no_cooling() {
        let sys = FakeSysfs::new();
        assert_eq!(thermal_zones(sys.root()).unwrap(), vec![]);
        assert_eq!(cooling_devices(sys.root()).unwrap(), vec![]);
        assert_eq!(cpu_freqs(sys.root()).unwrap(), vec![]);
    }

    #[test]
    fn garbled_temp_is_an_error_naming_the_file() {
        let sys = pi_like_tree();
        sys.write("class/thermal/thermal_zone1/temp", "hot\n");
        let err = thermal_zones(sys.root()).unwrap_err();
        let path = sys.root().join("class/thermal/thermal_zone1/temp");
        match &err {
            Error::Parse { path: p, .. } => assert_eq!(p, &path),
            other => panic!("expected a parse error, got {other:?}"),
        }
        let message = err.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("\"hot\""), "{message}");
        assert!(!message.contains('\n'), "{message}");
    }

    #[test]
    fn unreadable_temp_is_an_io_error_naming_the_file() {
        let sys = pi_like_tree();
        // A directory where the file should be: reading it fails on any uid,
        // unlike chmod 000, which root ignores.
        let temp = sys.root().join("class/thermal/thermal_zone0/temp");
        std::fs::remove_file(&temp).unwrap();
        std::fs::create_dir(&temp).unwrap();
        let err = thermal_zones(sys.root()).unwrap_err();
        match &err {
            Error::Io { path, .. } => assert_eq!(path, &temp),
            other => panic!("expected an io error, got {other:?}"),
        }
    }

    #[test]
    fn gpio_fan_cooling_device() {
        let sys = pi_like_tree();
        assert_eq!(
            cooling_devices(sys.root()).unwrap(),
            vec![CoolingDevice { index: 0, kind: "gpio-fan".into(), cur_state: 1, max_state: 1 }]
        );
    }

    #[test]
    fn garbled_cooling_state_is_an_error_naming_the_file() {
        let sys = pi_like_tree();
        sys.write("class/thermal/cooling_device0/cur_state", "-1\n");
        let err = cooling_devices(sys.root()).unwrap_err();
        assert!(
            err.to_string().ends_with("cooling_device0/cur_state: expected a non-negative integer, found \"-1\""),
            "{err}"
        );
    }

    #[test]
    fn cpufreq_for_four_cpus() {
        let sys = pi_like_tree();
        let freqs = cpu_freqs(sys.root()).unwrap();
        let expected: Vec<CpuFreq> = (0..4)
            .map(|cpu| CpuFreq {
                cpu,
                cur_khz: 1_500_000 - cpu as u64 * 100,
                min_khz: Some(600_000),
                max_khz: Some(1_500_000),
            })
            .collect();
        assert_eq!(freqs, expected);
    }

    #[test]
    fn cpufreq_skips_cpus_without_a_driver_and_tolerates_missing_limits() {
        let sys = FakeSysfs::new();
        sys.write("devices/system/cpu/cpu0/topology/core_id", "0\n");
        sys.write("devices/system/cpu/cpu1/cpufreq/scaling_cur_freq", "1000000\n");
        assert_eq!(
            cpu_freqs(sys.root()).unwrap(),
            vec![CpuFreq { cpu: 1, cur_khz: 1_000_000, min_khz: None, max_khz: None }]
        );
    }

    #[test]
    fn real_sys_cpufreq_reads_or_is_empty() {
        // This VM has no cpufreq driver; a Pi has one policy for all cores.
        let freqs = cpu_freqs(Path::new("/sys")).unwrap();
        assert!(freqs.windows(2).all(|w| w[0].cpu < w[1].cpu));
    }
}
