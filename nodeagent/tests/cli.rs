//! Runs the real `sweeprun-agent` binary on fake sysfs trees.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use tempfile::TempDir;

fn agent(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sweeprun-agent")).args(args).output().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

fn write(root: &Path, rel: &str, contents: &str) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, contents).unwrap();
}

/// One Pi-like zone, its gpio-fan (off), one CPU with cpufreq.
fn fake_tree() -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "class/thermal/thermal_zone0/type", "cpu-thermal\n");
    write(root, "class/thermal/thermal_zone0/temp", "48312\n");
    write(root, "class/thermal/cooling_device0/type", "gpio-fan\n");
    write(root, "class/thermal/cooling_device0/cur_state", "0\n");
    write(root, "class/thermal/cooling_device0/max_state", "1\n");
    write(root, "devices/system/cpu/cpu0/cpufreq/scaling_cur_freq", "1500000\n");
    dir
}

#[test]
fn status_prints_json_by_default() {
    let tree = fake_tree();
    let output = agent(&["status", "--sys-root", tree.path().to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "stderr: {}", stderr(&output));
    assert_eq!(stderr(&output), "");
    let json: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(json["max_temp_c"], 48.312);
    assert_eq!(json["zones"][0]["type"], "cpu-thermal");
    assert_eq!(json["cooling"][0]["type"], "gpio-fan");
    assert_eq!(json["cooling"][0]["cur_state"], 0);
    assert_eq!(json["cpufreq"][0]["cur_khz"], 1_500_000);
    assert_eq!(json["cpufreq"][0]["max_khz"], Value::Null);
    assert!(json["taken_unix_ms"].as_u64().unwrap() > 1_600_000_000_000);
}

#[test]
fn status_without_sensors_says_so_in_one_line() {
    let empty = tempfile::tempdir().unwrap();
    let root = empty.path().to_str().unwrap();
    let output = agent(&["status", "--sys-root", root]);
    assert_eq!(output.status.code(), Some(0), "stderr: {}", stderr(&output));
    assert_eq!(
        stderr(&output),
        format!("sweeprun-agent: no thermal zones, cooling devices or cpufreq found under {root}\n")
    );
    let json: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(json["zones"], serde_json::json!([]));
}

#[test]
fn status_prints_prometheus_text() {
    let tree = fake_tree();
    let root = tree.path().to_str().unwrap();
    let output = agent(&["status", "--sys-root", root, "--format", "prometheus"]);
    assert_eq!(output.status.code(), Some(0), "stderr: {}", stderr(&output));
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.contains(&"# TYPE sweeprun_thermal_zone_celsius gauge"), "{text}");
    assert!(lines.contains(&r#"sweeprun_thermal_zone_celsius{zone="0",type="cpu-thermal"} 48.312"#), "{text}");
    assert!(lines.contains(&r#"sweeprun_cooling_device_state{device="0",type="gpio-fan"} 0"#));
    assert!(lines.contains(&r#"sweeprun_cpu_frequency_khz{cpu="0"} 1500000"#), "{text}");
}

#[test]
fn status_reads_sys_by_default() {
    // Whatever this machine has: either a JSON snapshot, or a one-line error
    // that shows /sys was the root.
    let output = agent(&["status"]);
    match output.status.code() {
        Some(0) => {
            let json: Value = serde_json::from_str(&stdout(&output)).unwrap();
            assert!(json["zones"].is_array());
        }
        Some(1) => assert!(stderr(&output).starts_with("sweeprun-agent: cannot read /sys/")),
        other => panic!("unexpected exit {other:?}: {}", stderr(&output)),
    }
}

#[test]
fn garbled_sensor_is_one_line_on_stderr_and_exit_1() {
    let tree = fake_tree();
    write(tree.path(), "class/thermal/thermal_zone0/temp", "garbage\n");
    let output = agent(&["status", "--sys-root", tree.path().to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stdout(&output), "");
    let temp = tree.path().join("class/thermal/thermal_zone0/temp");
    assert_eq!(
        stderr(&output),
        format!(
            "sweeprun-agent: cannot parse {}: expected an integer in millidegrees Celsius, \
             found \"garbage\"\n",
            temp.display()
        )
    );
}

#[test]
fn unreadable_root_names_the_file_and_the_os_error() {
    let tree = fake_tree();
    fs::remove_file(tree.path().join("class/thermal/thermal_zone0/type")).unwrap();
    let output = agent(&["status", "--sys-root", tree.path().to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert_eq!(message.lines().count(), 1, "{message}");
    let type_file = tree.path().join("class/thermal/thermal_zone0/type");
    assert!(message.starts_with(&format!("sweeprun-agent: cannot read {}: ", type_file.display())), "{message}");
    assert!(message.contains("No such file or directory"), "{message}");
}

#[test]
fn bad_flag_is_a_usage_error_with_exit_2() {
    let output = agent(&["status", "--bogus"]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(stdout(&output), "");
    let message = stderr(&output);
    assert!(message.contains("--bogus"), "{message}");
    assert!(message.contains("Usage:"), "{message}");
}

#[test]
fn bad_format_value_is_a_usage_error_with_exit_2() {
    let output = agent(&["status", "--format", "xml"]);
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(message.contains("json") && message.contains("prometheus"), "{message}");
}

#[test]
fn sys_root_that_is_not_a_directory_is_a_usage_error_with_exit_2() {
    let output = agent(&["status", "--sys-root", "/nonexistent/sweeprun-sys"]);
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(message.contains("--sys-root"), "{message}");
    assert!(message.contains("/nonexistent/sweeprun-sys"), "{message}");
    assert!(message.contains("not a directory"), "{message}");
}

#[test]
fn missing_subcommand_is_a_usage_error_with_exit_2() {
    assert_eq!(agent(&[]).status.code(), Some(2));
}

#[test]
fn help_describes_the_control_loop_and_shows_examples() {
    let output = agent(&["--help"]);
    assert_eq!(output.status.code(), Some(0));
    let help = stdout(&output);
    assert!(help.contains("capping the clock, then duty-cycling"), "{help}");
    assert!(help.contains("sweeprun-agent status --format prometheus"), "{help}");
    for command in ["run", "simulate"] {
        let output = agent(&[command, "--help"]);
        assert_eq!(output.status.code(), Some(0));
        assert!(stdout(&output).contains(&format!("sweeprun-agent {command} ")), "{command}: {}", stdout(&output));
    }

    let output = agent(&["status", "--help"]);
    assert_eq!(output.status.code(), Some(0));
    let help = stdout(&output);
    assert!(help.contains("--sys-root <DIR>"), "{help}");
    assert!(help.contains("Examples:"), "{help}");
}
