//! Temperatures from the hwmon class (`<sys_root>/class/hwmon/hwmon*/`).
//!
//! On a Pi 4B the SoC sensor shows up twice: as thermal zone `cpu-thermal`
//! ([`crate::thermal`]) and as hwmon `cpu_thermal` with one `temp1_input`.
//! The `raspberrypi-hwmon` device (name `rpi_volt`) has no temperature, only
//! the under-voltage alarm `in0_lcrit_alarm`.

use std::path::Path;

use crate::{sys, Error};

/// One `<sys_root>/class/hwmon/hwmon<index>` device.
#[derive(Debug, Clone, PartialEq)]
pub struct Hwmon {
    /// The `N` in `hwmonN`.
    pub index: u32,
    /// The device's `name` file, e.g. `cpu_thermal` on a Pi 4B.
    pub name: String,
    /// Its `temp<channel>_input` files, sorted by channel; empty for a
    /// device without temperatures (a fan or voltage monitor).
    pub temps: Vec<HwmonTemp>,
}

/// One `temp<channel>_input` of a hwmon device.
#[derive(Debug, Clone, PartialEq)]
pub struct HwmonTemp {
    /// The `N` in `tempN_input` (hwmon channels start at 1).
    pub channel: u32,
    /// The channel's `tempN_label` file, if the driver has one
    /// (e.g. `Package id 0` for coretemp).
    pub label: Option<String>,
    /// Temperature in degrees Celsius (the file is in millidegrees).
    pub temp_c: f64,
}

/// Reads every hwmon device under `<sys_root>/class/hwmon`, sorted by index.
///
/// A missing hwmon directory gives an empty `Vec`. A device without a
/// `name` file, or a `temp*_input` that cannot be read or parsed, is an
/// error naming the file, as for thermal zones: a sensor that stops
/// answering must not look like a cool board.
pub fn hwmon_devices(sys_root: &Path) -> Result<Vec<Hwmon>, Error> {
    sys::hwmon_devices(sys_root)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use crate::testutil::FakeSysfs;

    #[test]
    fn pi_hwmon_devices_with_and_without_temperatures() {
        let sys = FakeSysfs::new();
        sys.write("class/hwmon/hwmon0/name", "cpu_thermal\n");
        sys.write("class/hwmon/hwmon0/temp1_input", "51121\n");
        sys.write("class/hwmon/hwmon1/name", "rpi_volt\n");
        sys.write("class/hwmon/hwmon1/in0_lcrit_alarm", "0\n");
        sys.write("class/hwmon/hwmon2/name", "coretemp\n");
        sys.write("class/hwmon/hwmon2/temp10_input", "40000\n");
        sys.write("class/hwmon/hwmon2/temp2_input", "-500\n");
        sys.write("class/hwmon/hwmon2/temp2_label", "Core 0\n");
        // Not temperatures, or not inputs: ignored.
        sys.write("class/hwmon/hwmon2/temp2_crit", "100000\n");
        sys.write("class/hwmon/hwmon2/temp_input", "1\n");
        sys.write("class/hwmon/hwmon2/fan1_input", "1200\n");
        assert_eq!(
            hwmon_devices(sys.root()).unwrap(),
            vec![
                Hwmon {
                    index: 0,
                    name: "cpu_thermal".into(),
                    temps: vec![HwmonTemp { channel: 1, label: None, temp_c: 51.121 }],
                },
                Hwmon { index: 1, name: "rpi_volt".into(), temps: vec![] },
                Hwmon {
                    index: 2,
                    name: "coretemp".into(),
                    temps: vec![
                        HwmonTemp { channel: 2, label: Some("Core 0".into()), temp_c: -0.5 },
                        HwmonTemp { channel: 10, label: None, temp_c: 40.0 },
                    ],
                },
            ]
        );
    }

    #[test]
    fn missing_hwmon_dir_means_no_devices() {
        let sys = FakeSysfs::new();
        assert_eq!(hwmon_devices(sys.root()).unwrap(), vec![]);
    }

    #[test]
    fn garbled_hwmon_temp_is_an_error_naming_the_file() {
        let sys = FakeSysfs::new();
        sys.write("class/hwmon/hwmon3/name", "cpu_thermal\n");
        sys.write("class/hwmon/hwmon3/temp1_input", "warm\n");
        let err = hwmon_devices(sys.root()).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("hwmon3/temp1_input: expected an integer in millidegrees Celsius, found \"warm\""),
            "{err}"
        );
    }

    #[test]
    fn hwmon_without_a_name_is_an_error_naming_the_file() {
        let sys = FakeSysfs::new();
        sys.write("class/hwmon/hwmon0/temp1_input", "1000\n");
        match hwmon_devices(sys.root()).unwrap_err() {
            Error::Io { path, .. } => assert_eq!(path, sys.root().join("class/hwmon/hwmon0/name")),
            other => panic!("expected an io error, got {other:?}"),
        }
    }

    #[test]
    fn real_sys_hwmon_reads_or_is_empty() {
        // Only checks the walk: a host's sensors may legitimately refuse reads
        // (ENODATA), which is an error here.
        if let Ok(devices) = hwmon_devices(Path::new("/sys")) {
            assert!(devices.windows(2).all(|w| w[0].index < w[1].index));
        }
    }
}
