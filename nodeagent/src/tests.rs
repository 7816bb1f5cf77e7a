//! Snapshot tests on a fake sysfs tree.

use std::fs;
use std::path::Path;

use serde_json::json;
use tempfile::TempDir;

use super::*;

fn write(root: &Path, rel: &str, contents: &str) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, contents).unwrap();
}

/// A Pi 4B with the gpio-fan overlay, fan on, the clock capped to 1 GHz on
/// cpu 3 only (so per-CPU values are distinguishable).
fn pi_like_tree() -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "class/thermal/thermal_zone0/type", "cpu-thermal\n");
    write(root, "class/thermal/thermal_zone0/temp", "48312\n");
    write(root, "class/thermal/thermal_zone1/type", "pmic-thermal\n");
    write(root, "class/thermal/thermal_zone1/temp", "51000\n");
    write(root, "class/thermal/cooling_device0/type", "gpio-fan\n");
    write(root, "class/thermal/cooling_device0/cur_state", "1\n");
    write(root, "class/thermal/cooling_device0/max_state", "1\n");
    for cpu in 0..4 {
        let max = if cpu == 3 { "1000000\n" } else { "1500000\n" };
        let dir = format!("devices/system/cpu/cpu{cpu}/cpufreq");
        write(root, &format!("{dir}/scaling_cur_freq"), max);
        write(root, &format!("{dir}/scaling_min_freq"), "600000\n");
        write(root, &format!("{dir}/scaling_max_freq"), max);
    }
    dir
}

fn fixed_snapshot(root: &Path) -> Snapshot {
    let mut snapshot = Snapshot::take(root).unwrap();
    snapshot.taken_unix_ms = 1_700_000_000_123;
    snapshot
}

#[test]
fn take_reads_every_sensor_and_stamps_the_time() {
    let tree = pi_like_tree();
    let before = unix_ms_now();
    let snapshot = Snapshot::take(tree.path()).unwrap();
    assert_eq!(snapshot.zones.len(), 2);
    assert_eq!(snapshot.cooling.len(), 1);
    assert_eq!(snapshot.cpufreq.len(), 4);
    assert!(snapshot.taken_unix_ms >= before && snapshot.taken_unix_ms <= unix_ms_now());
}

#[test]
fn take_fails_on_a_garbled_sensor() {
    let tree = pi_like_tree();
    write(tree.path(), "class/thermal/thermal_zone0/temp", "n/a\n");
    let err = Snapshot::take(tree.path()).unwrap_err();
    assert!(err.to_string().contains("thermal_zone0/temp"), "{err}");
}

#[test]
fn json_has_the_contract_keys_and_values() {
    let tree = pi_like_tree();
    let value = fixed_snapshot(tree.path()).to_json();
    assert_eq!(
        value,
        json!({
            "taken_unix_ms": 1_700_000_000_123_u64,
            "max_temp_c": 51.0,
            "zones": [
                { "index": 0, "type": "cpu-thermal", "temp_c": 48.312 },
                { "index": 1, "type": "pmic-thermal", "temp_c": 51.0 },
            ],
            "cooling": [
                { "index": 0, "type": "gpio-fan", "cur_state": 1, "max_state": 1 },
            ],
            "cpufreq": [
                { "cpu": 0, "cur_khz": 1_500_000, "min_khz": 600_000, "max_khz": 1_500_000 },
                { "cpu": 1, "cur_khz": 1_500_000, "min_khz": 600_000, "max_khz": 1_500_000 },
                { "cpu": 2, "cur_khz": 1_500_000, "min_khz": 600_000, "max_khz": 1_500_000 },
                { "cpu": 3, "cur_khz": 1_000_000, "min_khz": 600_000, "max_khz": 1_000_000 },
            ],
        })
    );
}

#[test]
fn json_max_temp_is_null_without_zones() {
    let empty = tempfile::tempdir().unwrap();
    let value = Snapshot::take(empty.path()).unwrap().to_json();
    assert_eq!(value["max_temp_c"], Value::Null);
    assert_eq!(value["zones"], json!([]));
    assert_eq!(value["cooling"], json!([]));
    assert_eq!(value["cpufreq"], json!([]));
}

#[test]
fn json_missing_frequency_limits_are_null() {
    let tree = tempfile::tempdir().unwrap();
    write(tree.path(), "devices/system/cpu/cpu0/cpufreq/scaling_cur_freq", "600000\n");
    let value = Snapshot::take(tree.path()).unwrap().to_json();
    assert_eq!(value["cpufreq"], json!([{ "cpu": 0, "cur_khz": 600_000, "min_khz": null, "max_khz": null }]));
}

#[test]
fn prometheus_has_headers_and_labelled_samples() {
    let tree = pi_like_tree();
    let text = fixed_snapshot(tree.path()).to_prometheus();
    let lines: Vec<&str> = text.lines().collect();
    for expected in [
        "# HELP sweeprun_thermal_zone_celsius Temperature of a thermal zone, in degrees Celsius.",
        "# TYPE sweeprun_thermal_zone_celsius gauge",
        r#"sweeprun_thermal_zone_celsius{zone="0",type="cpu-thermal"} 48.312"#,
        r#"sweeprun_thermal_zone_celsius{zone="1",type="pmic-thermal"} 51"#,
        "# TYPE sweeprun_cooling_device_state gauge",
        r#"sweeprun_cooling_device_state{device="0",type="gpio-fan"} 1"#,
        r#"sweeprun_cooling_device_max_state{device="0",type="gpio-fan"} 1"#,
        "# TYPE sweeprun_cpu_frequency_khz gauge",
        r#"sweeprun_cpu_frequency_khz{cpu="0"} 1500000"#,
        r#"sweeprun_cpu_frequency_khz{cpu="3"} 1000000"#,
        r#"sweeprun_cpu_frequency_min_khz{cpu="3"} 600000"#,
        r#"sweeprun_cpu_frequency_max_khz{cpu="3"} 1000000"#,
    ] {
        assert!(lines.contains(&expected), "missing {expected:?} in:\n{text}");
    }
    assert!(text.ends_with('\n'));
}

#[test]
fn prometheus_is_well_formed() {
    let tree = pi_like_tree();
    let text = fixed_snapshot(tree.path()).to_prometheus();
    let mut declared = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert_eq!(kind, "gauge");
            declared.push(name);
        } else if !line.starts_with("# HELP ") {
            // A sample: its family was declared just before, and its value
            // parses as a number.
            let name = line.split(['{', ' ']).next().unwrap();
            assert_eq!(Some(&name), declared.last(), "sample before its TYPE: {line}");
            let value = line.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "bad value in {line}");
        }
    }
    assert_eq!(declared.len(), 6);
}

#[test]
fn prometheus_without_sensors_still_declares_every_family() {
    let empty = tempfile::tempdir().unwrap();
    let text = Snapshot::take(empty.path()).unwrap().to_prometheus();
    assert!(text.lines().all(|line| line.starts_with('#')), "{text}");
    assert_eq!(text.lines().filter(|line| line.starts_with("# TYPE ")).count(), 6);
}
