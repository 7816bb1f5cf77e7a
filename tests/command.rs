//! `[command]` sweeps end to end: a small Python backtest (tests/fixtures/command/
//! backtest.py) over a 6 x 4 grid, run by the real `sweeprun` binary.
//!
//! The fixture prints a JSON row computed from its parameters (the tests compute the same
//! values here), reports the environment and working directory it saw, appends its combo
//! id to `log.txt` in the spec's directory, and, until a marker file `fixed` exists there,
//! fails combo 5 (exit 1), hangs combo 10 (killed at the 4 s timeout: short, yet far above a loaded machine's Python start-up) and prints no JSON
//! for combo 16.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use sweeprun_tests::{output_of, sweeprun, workspace_root};

/// Combos of the grid: a = 1..=6 (outer) x b = 10, 20, 30, 40.
const COMBOS: u64 = 24;
/// The combos the fixture breaks until it is fixed: failed, timeout, bad_output.
const FAILED: u64 = 5;
const TIMED_OUT: u64 = 10;
const BAD_OUTPUT: u64 = 16;

const SPEC: &str = sweeprun_tests::COMMAND_FIXTURE_SPEC;

/// The tests of this file take turns: each runs up to three ranks of Python processes,
/// and on a loaded 2-core machine five such sweeps at once slow a Python start-up past the
/// 4 s timeout (the sweeps are correct either way; the expected statuses would not be).
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn take_turn() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A temp dir holding the spec and the fixture script.
fn sweep_dir(spec: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let script = workspace_root().join("tests/fixtures/command/backtest.py");
    std::fs::copy(script, dir.path().join("backtest.py")).unwrap();
    std::fs::write(dir.path().join("sweep.toml"), spec).unwrap();
    dir
}

/// Runs `sweeprun run sweep.toml ARGS` in `dir`; returns stdout, after checking exit 0.
fn run(dir: &Path, args: &[&str]) -> String {
    let output = output_of(sweeprun(dir).args(["run", "sweep.toml"]).args(args));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "sweeprun run {args:?}: exit {:?}: {stderr}", output.status.code());
    String::from_utf8(output.stdout).unwrap()
}

/// The combo ids the fixture logged, sorted, and the log emptied.
fn take_log(dir: &Path) -> Vec<u64> {
    let path = dir.join("log.txt");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    std::fs::write(&path, "").unwrap();
    let mut ids: Vec<u64> = text.lines().map(|l| l.parse().unwrap()).collect();
    ids.sort_unstable();
    ids
}

/// The table as (header, rows of cells keyed by column name).
fn read_table(path: &Path) -> (Vec<String>, Vec<BTreeMap<String, String>>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<String> = lines.next().unwrap().split(',').map(str::to_string).collect();
    let rows = lines
        .map(|line| {
            let cells = csv_cells(line);
            assert_eq!(cells.len(), header.len(), "{line}");
            header.iter().cloned().zip(cells).collect()
        })
        .collect();
    (header, rows)
}

/// The cells of a CSV line (`"..."` quoting without inner quotes: the fixture's labels).
fn csv_cells(line: &str) -> Vec<String> {
    let mut cells = vec![String::new()];
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => cells.push(String::new()),
            c => cells.last_mut().unwrap().push(c),
        }
    }
    cells
}

/// Python's `repr` of a float, as the fixture's JSON and the table write it (Rust's
/// `Debug` agrees for the values here, between 1e-4 and 1e16).
fn repr(x: f64) -> String {
    format!("{x:?}")
}

/// The columns every run of the fixture gives, in order: the first ok row's keys, then
/// `bonus` (only rows with a = 6 print it).
const COLUMNS: &str = "combo_id,a,b,status,exit_code,stderr,score,ratio,label,env_a,env_b,env_combo_id,\
                       cwd_is_workdir,cwd_name,cwd_parent,nan_when_a1,bonus";

/// Checks every row against what the fixture computes; `broken` says whether combos 5, 10
/// and 16 still misbehave.
fn check_rows(dir: &Path, out: &str, broken: bool) {
    let (header, rows) = read_table(&dir.join(out));
    assert_eq!(header.join(","), COLUMNS);
    assert_eq!(rows.len() as u64, COMBOS);
    let runs = format!("{}.runs", Path::new(out).file_name().unwrap().to_str().unwrap());
    for (id, row) in (0..COMBOS).zip(&rows) {
        let (a, b) = (id / 4 + 1, (id % 4 + 1) * 10);
        assert_eq!(row["combo_id"], id.to_string());
        assert_eq!((row["a"].as_str(), row["b"].as_str()), (a.to_string().as_str(), b.to_string().as_str()));
        let workdir = dir.join(Path::new(out).parent().unwrap()).join(&runs).join(id.to_string());
        let status = match id {
            FAILED if broken => "failed",
            TIMED_OUT if broken => "timeout",
            BAD_OUTPUT if broken => "bad_output",
            _ => "ok",
        };
        assert_eq!(row["status"], status, "combo {id}");
        if status != "ok" {
            let exit_code = match status {
                "failed" => "1",
                "timeout" => "",
                _ => "0",
            };
            assert_eq!(row["exit_code"], exit_code, "combo {id}");
            assert_eq!(row["stderr"], format!("{runs}/{id}/stderr"), "combo {id}");
            let stderr = std::fs::read_to_string(dir.join(Path::new(out).parent().unwrap()).join(&row["stderr"]))
                .unwrap_or_else(|e| panic!("combo {id}: its stderr file: {e}"));
            let expected = match status {
                "failed" => "boom: cannot compute\n",
                "timeout" => "sleeping\n",
                _ => "",
            };
            assert_eq!(stderr, expected, "combo {id}");
            for column in &header[6..] {
                assert_eq!(row[column], "", "combo {id}: {column} of a {status} row");
            }
            continue;
        }
        assert!(!workdir.exists(), "combo {id}: an ok combo's working directory is removed");
        assert_eq!((row["exit_code"].as_str(), row["stderr"].as_str()), ("0", ""), "combo {id}");
        assert_eq!(row["score"], repr(a as f64 * b as f64 + 0.5), "combo {id}");
        assert_eq!(row["ratio"], repr(a as f64 / b as f64), "combo {id}");
        assert_eq!(row["label"], format!("a{a},b{b}"));
        assert_eq!((row["env_a"].as_str(), row["env_b"].as_str()), (row["a"].as_str(), row["b"].as_str()));
        assert_eq!(row["env_combo_id"], id.to_string());
        assert_eq!(row["cwd_is_workdir"], "true", "combo {id}: cwd = SWEEPRUN_WORKDIR");
        assert_eq!((row["cwd_name"].as_str(), row["cwd_parent"].as_str()), (id.to_string().as_str(), runs.as_str()));
        assert_eq!(row["nan_when_a1"], if a == 1 { String::new() } else { repr(a as f64) }, "Python's NaN");
        assert_eq!(row["bonus"], if a == 6 { b.to_string() } else { String::new() });
    }
}

#[test]
fn a_command_sweep_gives_the_scripts_rows_and_the_same_table_at_any_rank_count() {
    let _turn = take_turn();
    let one = sweep_dir(SPEC);
    let summary = run(one.path(), &["-np", "1", "--sort-by", "score", "--top", "2"]);
    check_rows(one.path(), "out/results.csv", true);
    assert_eq!(take_log(one.path()), (0..COMBOS).collect::<Vec<_>>(), "each combo ran once");
    // The summary ranks by any numeric column of the script's.
    let best: Vec<&str> = summary.lines().skip(2).map(|l| l.split_whitespace().nth(1).unwrap()).collect();
    assert_eq!(best, ["23", "19"], "{summary}");

    let three = sweep_dir(SPEC);
    run(three.path(), &["-np", "3"]);
    check_rows(three.path(), "out/results.csv", true);
    assert_eq!(
        std::fs::read(one.path().join("out/results.csv")).unwrap(),
        std::fs::read(three.path().join("out/results.csv")).unwrap(),
        "-np 1 and -np 3 write the same bytes"
    );
    // Kept: the non-ok combos' working directories and the records.
    let kept: BTreeSet<String> = std::fs::read_dir(three.path().join("out/results.csv.runs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(kept, ["10", "16", "5", "rows.jsonl"].map(String::from).into());
    let sidecar: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(three.path().join("out/results.csv.meta.json")).unwrap())
            .unwrap();
    assert_eq!(sidecar["strategy"], "command");
    assert_eq!(sidecar["columns"].as_array().unwrap().len(), COLUMNS.split(',').count());
    assert!(sidecar["data"].is_null(), "no [data]");

    // JSON lines: the same rows, values typed.
    run(three.path(), &["-np", "2", "--out", "out/results.jsonl", "--top", "0"]);
    let lines = std::fs::read_to_string(three.path().join("out/results.jsonl")).unwrap();
    let rows: Vec<serde_json::Value> = lines.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len() as u64, COMBOS);
    assert_eq!(rows[23]["score"], 240.5);
    assert_eq!(rows[23]["cwd_is_workdir"], true);
    assert_eq!(rows[23]["label"], "a6,b40");
    assert_eq!(rows[TIMED_OUT as usize]["status"], "timeout");
    assert!(rows[TIMED_OUT as usize]["exit_code"].is_null());
    assert!(rows[0]["stderr"].is_null() && rows[0]["bonus"].is_null());
}

#[test]
fn retry_failed_reruns_only_the_non_ok_rows_and_gives_the_table_of_a_clean_run() {
    let _turn = take_turn();
    let dir = sweep_dir(SPEC);
    run(dir.path(), &["-np", "2"]);
    check_rows(dir.path(), "out/results.csv", true);
    assert_eq!(take_log(dir.path()).len() as u64, COMBOS);

    std::fs::write(dir.path().join("fixed"), "").unwrap();
    // A longer timeout is still the same sweep: timeout, retries and keep_workdirs decide
    // how hard to try, not what a row is.
    run(dir.path(), &["-np", "2", "--resume", "--retry-failed", "--set", "command.timeout=\"5s\""]);
    assert_eq!(take_log(dir.path()), [FAILED, TIMED_OUT, BAD_OUTPUT], "only the non-ok combos ran again");
    check_rows(dir.path(), "out/results.csv", false);
    let retried = std::fs::read(dir.path().join("out/results.csv")).unwrap();
    assert!(!dir.path().join("out/results.csv.partial").exists(), "the journal is gone");
    let verify = output_of(sweeprun(dir.path()).args(["verify", "out/results.csv"]));
    assert!(verify.status.success(), "the sidecar vouches for the new table");

    // Nothing left to retry: nothing runs.
    run(dir.path(), &["--resume", "--retry-failed"]);
    assert_eq!(take_log(dir.path()), Vec::<u64>::new());

    let clean = sweep_dir(SPEC);
    std::fs::write(clean.path().join("fixed"), "").unwrap();
    run(clean.path(), &["-np", "3"]);
    assert_eq!(retried, std::fs::read(clean.path().join("out/results.csv")).unwrap(), "equals a clean run");
}

/// Starts the sweep at -np 1 and interrupts it (SIGINT, exit 130) once combos 0..10 are
/// journaled (the hanging combo 10 holds it for 4 s). Returns how many combos the journal
/// holds (ids 0..n: one rank runs them in order) and the combos that ran.
fn interrupted_sweep(dir: &Path) -> (u64, BTreeSet<u64>) {
    let mut child = sweeprun(dir)
        .args(["run", "sweep.toml", "-np", "1"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let journal = dir.join("out/results.csv.partial");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while journaled(&journal) < TIMED_OUT && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGINT).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "interrupted");
    let saved = journaled(&journal);
    assert!(saved >= TIMED_OUT, "{saved} rows journaled");
    (saved, take_log(dir).into_iter().collect())
}

#[test]
fn an_interrupted_command_sweep_resumes_without_rerunning_finished_combos() {
    let _turn = take_turn();
    let dir = sweep_dir(SPEC);
    let (saved, ran_before) = interrupted_sweep(dir.path());
    run(dir.path(), &["-np", "2", "--resume"]);
    let ran_after: BTreeSet<u64> = take_log(dir.path()).into_iter().collect();
    let journaled_ids: BTreeSet<u64> = (0..saved).collect();
    assert!(ran_after.is_disjoint(&journaled_ids), "journaled combos do not run again: {ran_after:?}");
    assert_eq!(ran_before.union(&ran_after).count() as u64, COMBOS);
    check_rows(dir.path(), "out/results.csv", true);
}

#[test]
fn retry_failed_on_an_interrupted_sweep_reruns_its_failed_combos_and_finishes_the_rest() {
    let _turn = take_turn();
    let dir = sweep_dir(SPEC);
    let (saved, _) = interrupted_sweep(dir.path());
    std::fs::write(dir.path().join("fixed"), "").unwrap();
    run(dir.path(), &["-np", "2", "--resume", "--retry-failed"]);
    let ran_after: BTreeSet<u64> = take_log(dir.path()).into_iter().collect();
    // Journaled: 0..saved, of which combo 5 failed (and 10 timed out, if journaled).
    let expected: BTreeSet<u64> = (0..COMBOS).filter(|&id| id >= saved || id == FAILED || id == TIMED_OUT).collect();
    assert_eq!(ran_after, expected, "the journal's non-ok combos and the missing ones, nothing else");
    check_rows(dir.path(), "out/results.csv", false);
}

/// Combos in a command sweep's journal (complete JSON lines; ids in order at -np 1).
fn journaled(journal: &Path) -> u64 {
    let text = std::fs::read_to_string(journal).unwrap_or_default();
    text.split_inclusive('\n').filter(|l| l.ends_with("}\n")).count() as u64
}

#[test]
fn an_output_file_in_qstrader_json_statistics_layout_gives_its_scalar_statistics() {
    let _turn = take_turn();
    let spec = SPEC
        .replace("\"--dir\", \"{spec_dir}\"]", "\"--dir\", \"{spec_dir}\", \"--stats\", \"{workdir}/stats.json\"]")
        .replace("timeout = \"4s\"", "timeout = \"4s\"\noutput = \"stats.json\"\nkeep_workdirs = true")
        .replace("a = { from = 1, to = 6 }", "a = [1, 6]");
    let dir = sweep_dir(&spec);
    std::fs::write(dir.path().join("fixed"), "").unwrap();
    run(dir.path(), &["-np", "2", "--sort-by", "sharpe", "--top", "1"]);
    let (header, rows) = read_table(&dir.path().join("out/results.csv"));
    assert_eq!(header.join(","), "combo_id,a,b,status,exit_code,stderr,sharpe,tot_ret");
    assert_eq!(rows.len(), 8);
    for row in &rows {
        let (a, b): (f64, f64) = (row["a"].parse().unwrap(), row["b"].parse().unwrap());
        assert_eq!(row["status"], "ok");
        assert_eq!(row["sharpe"], repr(a / b));
        assert_eq!(row["tot_ret"], repr(0.5 * a));
        // keep_workdirs: every working directory stays, its stderr named in the row.
        assert_eq!(row["stderr"], format!("results.csv.runs/{}/stderr", row["combo_id"]));
        assert!(dir.path().join("out").join(&row["stderr"]).exists());
    }
}

#[test]
fn bad_command_specs_exit_2_with_one_line_and_write_nothing() {
    let broken = |from: &str, to: &str| {
        assert!(SPEC.contains(from), "{from}");
        SPEC.replace(from, to)
    };
    let cases: Vec<(&str, String, Vec<&str>, &str)> = vec![
        ("both sections", format!("[strategy]\nname = \"sma_cross\"\n{SPEC}"), vec![], "both [strategy] and [command]"),
        ("misspelt section", broken("[command]", "[commands]"), vec![], "unknown section `commands`"),
        (
            "neither section",
            "[grid]\na = [1]\n[output]\npath = \"out/r.csv\"\n".to_string(),
            vec![],
            "missing section [strategy] or [command]",
        ),
        ("unknown field", broken("{b}", "{c}"), vec![], "[command] argv: `{c}` is not a grid parameter"),
        ("unclosed field", broken("{b}", "{b"), vec![], "[command] argv: `{b`"),
        (
            "argv = []",
            SPEC.replace(SPEC.lines().nth(1).unwrap(), "argv = []"),
            vec![],
            "[command] argv: must not be empty",
        ),
        ("bad timeout", broken("\"4s\"", "\"one second\""), vec![], "[command] timeout: `one second`"),
        ("zero timeout", broken("\"4s\"", "\"0s\""), vec![], "[command] timeout: `0s` is zero"),
        (
            "bad retries",
            broken("timeout", "retries = 99\ntimeout"),
            vec![],
            "[command] retries: expected an integer 0..=10",
        ),
        ("unknown key", broken("timeout", "timout = 3\ntimeout"), vec![], "[command] unknown key `timout`"),
        ("missing program", broken("\"python3\"", "\"./no-such-program\""), vec![], "[command] argv: the program"),
        ("builtin as a parameter", broken("b = [", "workdir = [1]\nb = ["), vec![], "[grid] workdir"),
        ("text parameter", broken("b = [10, 20, 30, 40]", "b = [\"x\"]"), vec![], "[grid] b"),
        ("tearsheets", SPEC.to_string(), vec!["--tearsheet", "top:1"], "--equity/--tearsheet"),
        ("retry without resume", SPEC.to_string(), vec!["--retry-failed"], "--resume"),
        (
            "retry of no sweep",
            SPEC.to_string(),
            vec!["--resume", "--retry-failed"],
            "--retry-failed: no sweep of this spec to retry",
        ),
    ];
    let mut failures = Vec::new();
    for (name, spec, args, expected) in cases {
        let dir = sweep_dir(&spec);
        let before = listing(dir.path());
        let output = output_of(sweeprun(dir.path()).args(["run", "sweep.toml"]).args(&args));
        let stderr = String::from_utf8_lossy(&output.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        let ok = output.status.code() == Some(2)
            && lines.len() == 1
            && lines[0].contains(expected)
            && output.stdout.is_empty()
            && listing(dir.path()) == before;
        if !ok {
            failures.push(format!("{name}: exit {:?}, stderr {stderr:?}, expected {expected:?}", output.status.code()));
        }
    }
    // A built-in strategy has no failed rows to retry.
    let dir = tempfile::tempdir().unwrap();
    let spec = sweeprun_tests::write_spec(dir.path(), "goog.toml", &sweeprun_tests::goog_spec("r.csv", ""));
    let before = listing(dir.path());
    let output = output_of(sweeprun(dir.path()).arg("run").arg(&spec).args(["--resume", "--retry-failed"]));
    let stderr = String::from_utf8_lossy(&output.stderr);
    if output.status.code() != Some(2) || !stderr.contains("--retry-failed: only a [command] sweep") {
        failures.push(format!("strategy retry: exit {:?}, stderr {stderr:?}", output.status.code()));
    }
    assert_eq!(listing(dir.path()), before);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every path under `dir` with its contents.
fn listing(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        for entry in std::fs::read_dir(&path).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                out.insert(path.clone(), Vec::new());
                stack.push(path);
            } else {
                out.insert(path.clone(), std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

/// Process ids whose parent is `parent` (from /proc/<pid>/stat).
fn children_of(parent: u32) -> Vec<u32> {
    let mut children = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // Fields after the parenthesised command name: state, ppid, ...
        let ppid = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
        if ppid == Some(parent) {
            children.push(pid);
        }
    }
    children
}

/// The process state letter from /proc/<pid>/stat (`None` once the process is gone).
fn state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Waits (up to 10 s) until `ready()` holds; `false` if it never did.
fn eventually(mut ready: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !ready() {
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    true
}

/// The node agent pauses a rank by stopping its process group: the rank's command is in
/// that group, so it stops and continues with its rank.
#[test]
fn stopping_a_ranks_process_group_stops_its_command() {
    let _turn = take_turn();
    // One combo, the hanging one (a = 3, b = 30), with a timeout far beyond the test.
    let spec = SPEC.replace("a = { from = 1, to = 6 }", "a = [3]").replace("b = [10, 20, 30, 40]", "b = [30]");
    let dir = sweep_dir(&spec.replace("timeout = \"4s\"", "timeout = \"5m\""));
    let mut launcher = sweeprun(dir.path())
        .args(["run", "sweep.toml", "-np", "1", "--thermal", "off"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut command = None;
    let found = eventually(|| {
        let commands: Vec<u32> = children_of(launcher.id()).into_iter().flat_map(children_of).collect();
        command = commands.first().copied();
        // The fixture logs its combo id right after it starts: then it is python, not a fork.
        command.is_some() && std::fs::read_to_string(dir.path().join("log.txt")).is_ok_and(|log| log == "0\n")
    });
    let (rank, command) = (children_of(launcher.id())[0], command.unwrap_or(0));
    let signal_group = |signal| nix::sys::signal::killpg(nix::unistd::Pid::from_raw(rank as i32), signal);
    let result = std::panic::catch_unwind(|| {
        assert!(found, "the rank's command started");
        signal_group(nix::sys::signal::Signal::SIGSTOP).unwrap();
        assert!(eventually(|| matches!(state(command), Some('T' | 't'))), "the command stopped with its rank");
        signal_group(nix::sys::signal::Signal::SIGCONT).unwrap();
        assert!(eventually(|| matches!(state(command), Some('S' | 'R'))), "and continued with it");
    });
    let _ = signal_group(nix::sys::signal::Signal::SIGCONT);
    let pid = nix::unistd::Pid::from_raw(launcher.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    assert_eq!(launcher.wait().unwrap().code(), Some(130));
    assert!(eventually(|| matches!(state(command), None | Some('Z'))), "the command died with its rank");
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

/// The README's example: a plain-Python SMA crossover on GOOG per combo.
#[test]
fn the_shipped_command_example_runs() {
    let _turn = take_turn();
    let dir = tempfile::tempdir().unwrap();
    let spec = workspace_root().join("examples/command_sweep.toml");
    let output = output_of(sweeprun(dir.path()).arg("run").arg(&spec).args(["-np", "2", "--out", "r.csv"]));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let (header, rows) = read_table(&dir.path().join("r.csv"));
    assert_eq!(header.join(","), "combo_id,fast,slow,status,exit_code,stderr,total_return,sharpe,max_drawdown,trades");
    assert_eq!(rows.len(), 15);
    assert!(rows.iter().all(|row| row["status"] == "ok" && row["sharpe"].parse::<f64>().is_ok()));
    let summary = String::from_utf8(output.stdout).unwrap();
    assert!(summary.starts_with("top 10 of 15 by sharpe:"), "{summary}");
}
