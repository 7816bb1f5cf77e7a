//! The node agent on the simulated Pi 4B board (`sweeprun-agent simulate`): 30 C room plus
//! a 3 K stack offset unless said otherwise, real worker processes paused and resumed by
//! the agent, simulated time 240 times faster than real time.

use std::process::Command;
use sweeprun_tests::{agent_bin, output_of};

/// One scenario at a time: each runs 4 busy workers, and on a 2-core machine several at once
/// would delay the workers' stops by tens of milliseconds, which accelerated board time
/// turns into seconds.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs a scenario (board time 240 x real time unless `args` say otherwise); returns its
/// JSON result and the agent's log (with `--verbose`).
fn simulate(args: &[&str]) -> (serde_json::Value, String) {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let speedup = if args.contains(&"--speedup") { &[][..] } else { &["--speedup", "240"][..] };
    let run = output_of(Command::new(agent_bin()).args(["simulate", "--verbose"]).args(speedup).args(args));
    let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
    assert!(run.status.success(), "simulate {args:?}: {stderr}");
    (serde_json::from_slice(&run.stdout).expect("one JSON object"), stderr)
}

fn number(result: &serde_json::Value, key: &str) -> f64 {
    result[key].as_f64().unwrap_or_else(|| panic!("{key} missing: {result}"))
}

/// Board times (s) of the agent's actuator changes, from its log lines `[h:mm:ss] at ...`.
fn change_times(log: &str) -> Vec<f64> {
    log.lines()
        .filter(|l| l.contains("clock cap") || l.contains("of the time") || l.contains(": fan "))
        .filter_map(|l| {
            let stamp = l.split('[').nth(1)?.split(']').next()?;
            let parts: Vec<f64> = stamp.split(':').filter_map(|p| p.parse().ok()).collect();
            (parts.len() == 3).then(|| parts[0] * 3600.0 + parts[1] * 60.0 + parts[2])
        })
        .collect()
}

fn assert_safe(result: &serde_json::Value) {
    assert!(number(result, "peak_temp_c") <= 75.0, "peak above 75 C: {result}");
    assert_eq!(number(result, "time_above_75_s"), 0.0, "{result}");
    assert_eq!(number(result, "firmware_throttle_s"), 0.0, "the firmware never throttles: {result}");
}

#[test]
fn fan_off_for_two_hours_stays_below_75_near_the_models_optimum_and_beats_the_firmware() {
    let (agent, log) = simulate(&["--model", "pi4-case-fan-off", "--duration", "2h"]);
    let (firmware, _) = simulate(&["--model", "pi4-case-fan-off", "--duration", "2h", "--baseline", "firmware"]);
    assert_safe(&agent);
    let throughput = number(&agent, "throughput_ratio");
    let baseline = number(&firmware, "throughput_ratio");
    let optimum = number(&agent, "model_optimum_ratio");
    assert!(number(&firmware, "peak_temp_c") >= 80.0, "the baseline dithers at the firmware's 80 C: {firmware}");
    assert!(throughput >= 0.75 * baseline, "{throughput} vs firmware-only {baseline}");
    assert!(throughput >= 0.95 * optimum, "{throughput} vs the model's optimum {optimum}");
    assert!(number(&agent, "max_swing_after_settle_c") <= 3.0, "{agent}");
    let changes = change_times(&log);
    assert_eq!(changes.len() as f64, number(&agent, "actuator_changes"), "{log}");
    assert!(changes.windows(2).all(|w| w[1] - w[0] >= 5.0), "at most one change per 5 s: {changes:?}");
}

#[test]
fn fan_on_runs_unthrottled_and_touches_nothing() {
    let (result, log) = simulate(&["--model", "pi4-case-fan-on", "--duration", "1h"]);
    assert_safe(&result);
    assert!(result["fan_failure_flagged_at_s"].is_null(), "no false alarm: {log}");
    assert!(number(&result, "throughput_ratio") >= 0.98, "{result}");
    assert_eq!(number(&result, "actuator_changes"), 0.0, "{log}");
}

#[test]
fn a_fan_failing_mid_run_is_flagged_within_180_s_and_the_limit_holds() {
    let (result, log) = simulate(&["--model", "pi4-case-fan-on", "--duration", "1h", "--fail-fan-at", "20m"]);
    assert_safe(&result);
    let detected = number(&result, "fan_failure_detected_s");
    assert!((0.0..=180.0).contains(&detected), "detected after {detected} s: {log}");
    assert!(log.contains("fan failure"), "{log}");
}

#[test]
fn the_limit_holds_from_a_cold_room_to_a_hot_one() {
    for room in ["17", "27", "37"] {
        let (result, _) = simulate(&["--model", "pi4-case-fan-off", "--duration", "45m", "--ambient", room]);
        assert_safe(&result);
        assert!(number(&result, "throughput_ratio") > 0.0, "{result}");
    }
}

#[test]
fn lost_sensors_freeze_the_work_within_5_s_and_their_return_resumes_it() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace.csv");
    let trace_arg = trace.display().to_string();
    let (result, log) = simulate(&[
        "--model",
        "pi4-case-fan-off",
        "--duration",
        "15m",
        "--lose-sensors-at",
        "10m",
        "--for",
        "20s",
        // Slower, so that the operating system's delay in stopping a process (ms) stays
        // well below the 5 s of board time being checked.
        "--speedup",
        "60",
        "--trace",
        &trace_arg,
    ]);
    assert_safe(&result);
    assert!(log.contains("freezing the work") && log.contains("resuming"), "{log}");
    // time_s,sensor_c,true_c,clock_mhz,cap_mhz,duty,busy_cores,fan_on (one row per second)
    let rows: Vec<Vec<f64>> = std::fs::read_to_string(&trace)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(|f| f.parse().unwrap()).collect())
        .collect();
    let busy_at = |t: f64| rows.iter().find(|r| r[0] >= t).map(|r| r[6]).unwrap();
    assert_eq!(busy_at(605.0), 0.0, "frozen within 5 s of losing the sensors");
    assert_eq!(busy_at(618.0), 0.0, "still frozen while they are gone");
    let resumed = rows.iter().filter(|r| r[0] >= 620.0 && r[0] <= 626.0).any(|r| r[6] > 0.0);
    assert!(resumed, "running again once the sensors are back");
}

/// The GOOG grid spec in `dir` (output `out`).
fn goog_in(dir: &std::path::Path) -> std::path::PathBuf {
    sweeprun_tests::write_spec(dir, "goog.toml", &sweeprun_tests::goog_spec("unused.csv", ""))
}

#[test]
fn a_sweep_under_a_simulated_hot_board_writes_the_same_table() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let spec = goog_in(dir.path());
    let plain = output_of(sweeprun_tests::sweeprun(dir.path()).arg("run").arg(&spec).args([
        "--out",
        "plain.csv",
        "--thermal",
        "off",
    ]));
    assert!(plain.status.success(), "{}", String::from_utf8_lossy(&plain.stderr));
    // Slowed down (20 ms per 16-combo chunk) and with board time 3000 x real time, the
    // sweep sees the fan-off board heat up to the agent's cap.
    let hot = output_of(
        sweeprun_tests::sweeprun(dir.path())
            .arg("run")
            .arg(&spec)
            .args(["--out", "hot.csv", "--thermal", "sim:pi4-case-fan-off", "-np", "4", "--chunk-size", "16"])
            .env("SWEEPRUN_DEBUG_CHUNK_DELAY_MS", "20")
            .env("SWEEPRUN_THERMAL_SIM_SPEEDUP", "3000"),
    );
    assert!(hot.status.success(), "{}", String::from_utf8_lossy(&hot.stderr));
    assert!(std::fs::read(dir.path().join("plain.csv")).unwrap() == std::fs::read(dir.path().join("hot.csv")).unwrap());
    let sidecar: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("hot.csv.meta.json")).unwrap()).unwrap();
    let thermal = &sidecar["thermal"];
    assert_eq!(
        (&thermal["mode"], &thermal["time"]),
        (&serde_json::json!("sim"), &serde_json::json!("board")),
        "{sidecar}"
    );
    assert!(thermal["actuator_changes"].as_u64().unwrap() > 0, "the agent acted: {thermal}");
    assert!(thermal["max_temp_c"].as_f64().unwrap() <= 75.0, "{thermal}");
}

/// Kills a child process when dropped (a failed assertion must not leave an agent or a
/// frozen sweep behind).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ =
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.0.id() as i32), nix::sys::signal::Signal::SIGCONT);
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A `sweeprun-agent run` on a fake board that reads 90 C: it freezes every rank it manages.
fn hot_agent(dir: &std::path::Path, socket: &std::path::Path) -> std::process::Child {
    let zone = dir.join("sys/class/thermal/thermal_zone0");
    std::fs::create_dir_all(&zone).unwrap();
    std::fs::write(zone.join("type"), "cpu-thermal\n").unwrap();
    std::fs::write(zone.join("temp"), "90000\n").unwrap();
    let child = Command::new(agent_bin())
        .args(["run", "--listen", "", "--sys-root"])
        .arg(dir.join("sys"))
        .arg("--socket")
        .arg(socket)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while !socket.exists() {
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "the agent did not start");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child
}

/// Pids of the rank processes of `sweeprun` process `launcher` and their states from /proc.
fn rank_states(launcher: u32) -> Vec<(u32, char)> {
    let mut ranks = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        let Some(after) = stat.rfind(')').map(|at| &stat[at + 2..]) else { continue };
        let fields: Vec<&str> = after.split_whitespace().collect();
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if fields.get(1) == Some(&launcher.to_string().as_str()) && cmdline.windows(6).any(|w| w == b"__rank") {
            ranks.push((pid, fields[0].chars().next().unwrap()));
        }
    }
    ranks
}

#[test]
fn kill_9_of_the_agent_leaves_no_rank_stopped() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let spec = goog_in(dir.path());
    let socket = dir.path().join("agent.sock");
    let mut agent = KillOnDrop(hot_agent(dir.path(), &socket));
    let mut sweep = KillOnDrop(
        sweeprun_tests::sweeprun(dir.path())
            .arg("run")
            .arg(&spec)
            .args(["--out", "r.csv", "-np", "2", "--chunk-size", "16"])
            .env("SWEEPRUN_AGENT_SOCKET", &socket)
            .env("SWEEPRUN_DEBUG_CHUNK_DELAY_MS", "20")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // The agent freezes the ranks (the board reads 90 C).
    let started = std::time::Instant::now();
    loop {
        let ranks = rank_states(sweep.0.id());
        if ranks.len() == 2 && ranks.iter().all(|&(_, state)| state == 'T') {
            break;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(20), "the agent never paused the ranks: {ranks:?}");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    agent.0.kill().unwrap();
    let killed = std::time::Instant::now();
    agent.0.wait().unwrap();
    loop {
        let ranks = rank_states(sweep.0.id());
        if ranks.iter().all(|&(_, state)| state != 'T') {
            break;
        }
        assert!(killed.elapsed() < std::time::Duration::from_secs(1), "a rank stayed stopped: {ranks:?}");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let mut stderr = String::new();
    std::io::Read::read_to_string(sweep.0.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    let status = sweep.0.wait().unwrap();
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("the node agent went away"), "{stderr}");
}
