//! `[command]` sweeps one combo per process, as a SLURM job array runs them: `sweeprun
//! __combo` per combo (in any order, two at a time), then `sweeprun __gather`, must give
//! the table a local `sweeprun run` writes, byte for byte. No SLURM is needed: the tasks
//! are started here with std::process, one with `SLURM_ARRAY_TASK_ID` as SLURM sets it.
//!
//! The fixture is tests/command.rs's: a Python backtest over a 6 x 4 grid that fails
//! combo 5 (exit 1), hangs combo 10 past the 4 s timeout and prints no JSON for combo 16,
//! until a marker file `fixed` exists next to the spec.

use clap::Parser;
use std::path::Path;
use std::process::{Child, Command};
use sweeprun::cli::{Cli, Command as Subcommand};
use sweeprun_tests::{output_of, sweeprun, workspace_root};

/// Combos of the grid: a = 1..=6 (outer) x b = 10, 20, 30, 40.
const COMBOS: u64 = 24;
/// The combos that are not `ok` until the fixture is fixed: failed, timeout, bad_output.
const NOT_OK: [u64; 3] = [5, 10, 16];

const SPEC: &str = r#"[command]
argv = ["python3", "{spec_dir}/backtest.py", "--a", "{a}", "--b", "{b}", "--dir", "{spec_dir}"]
timeout = "4s"

[grid]
a = { from = 1, to = 6 }
b = [10, 20, 30, 40]

[output]
path = "out/results.csv"
"#;

const TABLE: &str = "out/results.csv";

/// The tests of this file take turns (a loaded machine slows Python start-up towards the
/// 4 s timeout; see tests/command.rs).
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn take_turn() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A temp dir holding the spec and the fixture script.
fn sweep_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(workspace_root().join("tests/fixtures/command/backtest.py"), dir.path().join("backtest.py")).unwrap();
    std::fs::write(dir.path().join("sweep.toml"), SPEC).unwrap();
    dir
}

/// `sweeprun __combo sweep.toml --id ID`, started (SLURM_ARRAY_TASK_ID removed, so only
/// `--id` can name the combo).
fn start_combo(dir: &Path, id: u64) -> Child {
    sweeprun(dir)
        .args(["__combo", "sweep.toml", "--id", &id.to_string()])
        .env_remove("SLURM_ARRAY_TASK_ID")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// Runs `__combo` for `ids`, two processes at a time; each must exit 0, whatever the
/// combo's status.
fn run_combos(dir: &Path, ids: &[u64]) {
    for pair in ids.chunks(2) {
        let children: Vec<(u64, Child)> = pair.iter().map(|&id| (id, start_combo(dir, id))).collect();
        for (id, mut child) in children {
            let status = child.wait().unwrap();
            assert!(status.success(), "__combo --id {id}: {status}");
        }
    }
}

/// The ids of `array_ids` for `sweeprun run sweep.toml FLAGS` of the sweep in `dir`.
fn array_ids(dir: &Path, flags: &[&str]) -> Vec<u64> {
    let spec = dir.join("sweep.toml");
    let cli = Cli::try_parse_from(["sweeprun", "run", spec.to_str().unwrap()].iter().chain(flags)).unwrap();
    let Subcommand::Run(args) = cli.command else { unreachable!() };
    sweeprun::array::array_ids(&args).unwrap()
}

fn record_file(dir: &Path, id: u64) -> std::path::PathBuf {
    dir.join(format!("out/results.csv.runs/records/{id}.json"))
}

/// stdout of a successful sweeprun command in `dir`.
fn stdout_of(command: &mut Command) -> String {
    let output = output_of(command);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "exit {:?}: {stderr}", output.status.code());
    String::from_utf8(output.stdout).unwrap()
}

/// The combo ids the fixture logged (sorted), and the log emptied.
fn take_log(dir: &Path) -> Vec<u64> {
    let path = dir.join("log.txt");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    std::fs::write(&path, "").unwrap();
    let mut ids: Vec<u64> = text.lines().map(|l| l.parse().unwrap()).collect();
    ids.sort_unstable();
    ids
}

fn sidecar(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("out/results.csv.meta.json")).unwrap()).unwrap()
}

#[test]
fn an_array_of_combos_gathers_into_the_table_of_a_local_run() {
    let _turn = take_turn();
    let dir = sweep_dir();
    let d = dir.path();
    let summary_flags = ["--sort-by", "score", "--top", "3"];
    // The reference: a local sweep of the same spec, into the same path.
    let local_summary = stdout_of(sweeprun(d).args(["run", "sweep.toml", "-np", "2"]).args(summary_flags));
    let local_table = std::fs::read(d.join(TABLE)).unwrap();
    let local_sidecar = sidecar(d);
    std::fs::remove_dir_all(d.join("out")).unwrap();
    take_log(d);

    // Every combo but 13 in a shuffled order (7 is prime to 24: a permutation).
    let order: Vec<u64> = (0..COMBOS).map(|i| (i * 7 + 3) % COMBOS).filter(|&id| id != 13).collect();
    run_combos(d, &order);
    assert_eq!(take_log(d), (0..COMBOS).filter(|&id| id != 13).collect::<Vec<_>>(), "each ran once");

    // One record missing: exit 1, one line naming it, nothing written.
    let gather = output_of(sweeprun(d).args(["__gather", "sweep.toml"]));
    let stderr = String::from_utf8_lossy(&gather.stderr);
    assert_eq!(gather.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("no record of this sweep for 1 of 24 combos (id 13)"), "{stderr}");
    assert!(!d.join(TABLE).exists() && !d.join("out/results.csv.meta.json").exists(), "no table");
    assert!(!d.join("out/results.csv.runs/rows.jsonl").exists());

    // The last one as an array task: its id from SLURM_ARRAY_TASK_ID.
    let task = output_of(sweeprun(d).args(["__combo", "sweep.toml"]).env("SLURM_ARRAY_TASK_ID", "13"));
    assert!(task.status.success(), "{}", String::from_utf8_lossy(&task.stderr));
    assert_eq!(take_log(d), [13]);
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(record_file(d, 13)).unwrap()).unwrap();
    assert_eq!((record["combo_id"].as_u64(), record["status"].as_str()), (Some(13), Some("ok")));
    // Idempotent: the same id again replaces its record.
    run_combos(d, &[13]);
    assert_eq!(take_log(d), [13]);

    // What an array must run again: the combos without a record (+ the non-ok ones).
    std::fs::remove_file(record_file(d, 2)).unwrap();
    std::fs::remove_file(record_file(d, 20)).unwrap();
    assert_eq!(array_ids(d, &[]), (0..COMBOS).collect::<Vec<_>>(), "a fresh sweep runs every combo");
    assert_eq!(array_ids(d, &["--resume"]), [2, 20]);
    assert_eq!(array_ids(d, &["--resume", "--retry-failed"]), [2, 5, 10, 16, 20]);
    run_combos(d, &[20, 2]);
    take_log(d);

    let summary = stdout_of(sweeprun(d).args(["__gather", "sweep.toml"]).args(summary_flags));
    assert_eq!(std::fs::read(d.join(TABLE)).unwrap(), local_table, "the local run's table, byte for byte");
    assert_eq!(summary, local_summary, "the local run's summary");
    let gathered = sidecar(d);
    assert_eq!(gathered["fingerprint"], local_sidecar["fingerprint"]);
    assert_eq!(gathered["columns"], local_sidecar["columns"]);
    assert_eq!(gathered["backend"], "slurm-array");
    let verify = output_of(sweeprun(d).args(["verify", TABLE]));
    assert!(verify.status.success(), "the sidecar vouches for the table");
    // As a finished local run leaves it: records in rows.jsonl, non-ok workdirs, no journal.
    let mut left: Vec<String> = std::fs::read_dir(d.join("out/results.csv.runs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(left, ["10", "16", "5", "rows.jsonl"]);
    let mut out: Vec<String> =
        std::fs::read_dir(d.join("out")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    out.sort();
    assert_eq!(out, ["results.csv", "results.csv.meta.json", "results.csv.runs"], "no journal left");

    // Finished: nothing to resume; the non-ok rows to retry, from rows.jsonl.
    assert_eq!(array_ids(d, &["--resume"]), Vec::<u64>::new());
    assert_eq!(array_ids(d, &["--resume", "--retry-failed"]), NOT_OK);
    // rows.jsonl is what a local --retry-failed starts from: only the non-ok combos rerun.
    std::fs::write(d.join("fixed"), "").unwrap();
    stdout_of(sweeprun(d).args(["run", "sweep.toml", "-np", "2", "--resume", "--retry-failed"]));
    assert_eq!(take_log(d), NOT_OK);
}

#[test]
fn a_retry_of_a_gathered_array_is_prepared_from_its_rows() {
    let _turn = take_turn();
    let dir = sweep_dir();
    let d = dir.path();
    std::fs::write(d.join("fixed"), "").unwrap();
    // A finished sweep whose combo 7 failed (as far as its records say).
    run_combos(d, &(0..COMBOS).collect::<Vec<_>>());
    let line = std::fs::read_to_string(record_file(d, 7)).unwrap();
    let failed = line.replace("\"status\":\"ok\"", "\"status\":\"failed\"");
    assert_ne!(line, failed);
    std::fs::write(record_file(d, 7), failed).unwrap();
    stdout_of(sweeprun(d).args(["__gather", "sweep.toml", "--top", "0"]));
    take_log(d);

    let spec = d.join("sweep.toml");
    let cli = Cli::try_parse_from(["sweeprun", "run", spec.to_str().unwrap(), "--resume", "--retry-failed"]).unwrap();
    let Subcommand::Run(args) = cli.command else { unreachable!() };
    let plan = sweeprun::array::prepare_array(&args).unwrap();
    assert_eq!(plan.ids, [7]);
    assert_eq!(plan.combos, COMBOS);
    assert_eq!(sweeprun::array::array_spec_text(&plan.ids, Some(4)), "7%4");
    // Every other combo's record is back in place, so the array runs combo 7 only.
    assert!((0..COMBOS).all(|id| record_file(d, id).exists()));
    run_combos(d, &plan.ids);
    assert_eq!(take_log(d), [7]);
    stdout_of(sweeprun(d).args(["__gather", "sweep.toml", "--top", "0"]));
    let rows = std::fs::read_to_string(d.join("out/results.csv.runs/rows.jsonl")).unwrap();
    assert!(rows.lines().all(|l| l.contains("\"status\":\"ok\"")), "combo 7 is ok now");
}

#[test]
fn bad_combo_tasks_exit_2_with_one_line_and_write_nothing() {
    let dir = sweep_dir();
    let d = dir.path();
    let sma = sweeprun_tests::goog_spec("out/sma.csv", "");
    std::fs::write(d.join("sma.toml"), sma).unwrap();
    for (args, env, expected) in [
        (&["__combo", "sweep.toml", "--id", "24"][..], None, "--id 24: combo 24 is not in the grid"),
        (&["__combo", "sweep.toml"], Some("24"), "$SLURM_ARRAY_TASK_ID=24: combo 24 is not in the grid"),
        (&["__combo", "sweep.toml"], Some("x"), "$SLURM_ARRAY_TASK_ID: expected a combo id"),
        (&["__combo", "sweep.toml"], None, "no combo to run"),
        (&["__combo", "sma.toml", "--id", "0"], None, "sma.toml: not a [command] sweep"),
        (&["__gather", "sma.toml"], None, "sma.toml: not a [command] sweep"),
        (&["__combo", "sweep.toml", "--id", "0", "--set", "command.retries=99"], None, "retries"),
    ] {
        let mut command = sweeprun(d);
        command.args(args).env_remove("SLURM_ARRAY_TASK_ID");
        if let Some(id) = env {
            command.env("SLURM_ARRAY_TASK_ID", id);
        }
        let output = output_of(&mut command);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!d.join("out").exists(), "{args:?}: nothing written");
    }
}

#[test]
fn a_record_that_cannot_be_written_exits_1() {
    let dir = sweep_dir();
    let d = dir.path();
    // A file where the records directory goes.
    std::fs::create_dir_all(d.join("out/results.csv.runs")).unwrap();
    std::fs::write(d.join("out/results.csv.runs/records"), "").unwrap();
    let output = output_of(sweeprun(d).args(["__combo", "sweep.toml", "--id", "0"]).env_remove("SLURM_ARRAY_TASK_ID"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("cannot create") && stderr.contains("records"), "{stderr}");
}
