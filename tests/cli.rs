//! End-to-end tests of `sweeprun run`: the README's command, rank counts, and the
//! reliability contract (a killed rank, a killed or interrupted launcher, `--resume`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use sweeprun_tests::{goog_spec, output_of, sweeprun, workspace_root, write_spec};

/// Runs a spec to completion and returns the table's bytes.
fn run_table(dir: &Path, spec: &Path, args: &[&str], out: &str) -> Vec<u8> {
    let run = output_of(sweeprun(dir).arg("run").arg(spec).args(args));
    assert!(run.status.success(), "sweeprun {args:?} failed: {}", String::from_utf8_lossy(&run.stderr));
    std::fs::read(dir.join(out)).unwrap()
}

fn goog_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(dir.path(), "goog.toml", &goog_spec("results/goog.csv", ""));
    (dir, spec)
}

fn rows_in(path: &Path) -> usize {
    std::fs::read_to_string(path).map(|t| t.lines().filter(|l| !l.starts_with("combo_id")).count()).unwrap_or(0)
}

/// Starts a slowed-down sweep (each rank sleeps after every chunk) in the background.
fn start_slow_sweep(dir: &Path, spec: &Path, extra: &[&str]) -> Child {
    Command::new(sweeprun_tests::sweeprun_bin())
        .current_dir(dir)
        .arg("run")
        .arg(spec)
        .args(["-np", "2", "--chunk-size", "40", "--top", "0"])
        .args(extra)
        .env("SWEEPRUN_DEBUG_CHUNK_DELAY_MS", "25")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_for_rows(journal: &Path, rows: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while rows_in(journal) < rows {
        assert!(Instant::now() < deadline, "the sweep made no progress");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Process ids whose parent is `parent` (from /proc/<pid>/stat).
fn children_of(parent: u32) -> Vec<u32> {
    let mut children = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // Fields after the parenthesised command name: state, ppid, ...
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let ppid: u32 = after.split(' ').nth(1).unwrap().parse().unwrap();
        if ppid == parent {
            children.push(pid);
        }
    }
    children
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s[s.rfind(')').unwrap() + 2..].starts_with('Z'))
        .unwrap_or(false)
}

fn signal(pid: u32, signal: libc::c_int) {
    // SAFETY: kill(2) with a pid we spawned and a valid signal number.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, signal) }, 0);
}

#[test]
fn the_readme_run_command_works_on_the_shipped_example() {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    let prefix = "cargo run --release -p sweeprun -- ";
    let line = readme.lines().map(str::trim).find(|l| l.starts_with(prefix)).expect("README has the run command");
    let args: Vec<&str> = line[prefix.len()..].split_whitespace().collect();
    assert_eq!(args[0], "run");
    // Run it on a copy of examples/ so the test writes nothing into the repository.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("examples");
    std::fs::create_dir_all(copy.join("data")).unwrap();
    for file in ["sma_goog.toml", "data/GOOG.csv"] {
        std::fs::copy(workspace_root().join("examples").join(file), copy.join(file)).unwrap();
    }
    let run = output_of(sweeprun(dir.path()).args(&args));
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let (header, rows) = sweeprun_tests::read_csv(&dir.path().join("results/sma_goog.csv"));
    assert_eq!(rows.len(), 3830);
    assert_eq!(&header[..3], ["combo_id", "fast", "slow"]);
    let ids: Vec<usize> = rows.iter().map(|r| r[0].parse().unwrap()).collect();
    assert_eq!(ids, (0..3830).collect::<Vec<_>>(), "rows sorted by combo id, each once");
    let stdout = String::from_utf8(run.stdout).unwrap();
    assert!(stdout.starts_with("top 10 of 3830 by sharpe:"), "{stdout}");
    assert_eq!(stdout.lines().count(), 12, "title, header and 10 rows: {stdout}");
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("results/sma_goog.csv.meta.json")).unwrap())
            .unwrap();
    assert_eq!(meta["statistics"], "standard");
    assert_eq!(meta["combos"], 3830);
    assert_eq!(meta["data"]["sha256"], "60e961a567490b157f71888df9e6afb36190a34a40a6286aa38988e2343f1b1a");
}

#[test]
fn one_rank_and_four_ranks_give_identical_tables() {
    let (dir, spec) = goog_dir();
    let one = run_table(dir.path(), &spec, &["-np", "1", "--out", "one.csv"], "one.csv");
    let four = run_table(dir.path(), &spec, &["-np", "4", "--out", "four.csv", "--chunk-size", "7"], "four.csv");
    assert_eq!(one.iter().filter(|&&b| b == b'\n').count(), 3831);
    assert!(one == four, "-np 1 and -np 4 tables differ");
}

#[test]
fn jsonl_output_holds_the_same_rows_as_csv() {
    let (dir, spec) = goog_dir();
    let csv = String::from_utf8(run_table(dir.path(), &spec, &["--out", "t.csv"], "t.csv")).unwrap();
    let jsonl = String::from_utf8(run_table(dir.path(), &spec, &["--out", "t.jsonl"], "t.jsonl")).unwrap();
    let mut csv_lines = csv.lines();
    let header: Vec<&str> = csv_lines.next().unwrap().split(',').collect();
    let mut count = 0;
    for (csv_row, json_row) in csv_lines.zip(jsonl.lines()) {
        let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(json_row).unwrap();
        assert_eq!(object.len(), header.len());
        for (name, cell) in header.iter().zip(csv_row.split(',')) {
            let value = &object[*name];
            assert_eq!(value.as_f64(), cell.parse::<f64>().ok(), "{name} in {json_row}");
        }
        count += 1;
    }
    assert_eq!(count, 3830);
    assert!(std::path::Path::new(&dir.path().join("t.jsonl.meta.json")).exists());
}

#[test]
fn a_killed_rank_is_replaced_and_the_table_is_complete() {
    let (dir, spec) = goog_dir();
    let expected = run_table(dir.path(), &spec, &["--out", "expected.csv"], "expected.csv");
    let launcher = start_slow_sweep(dir.path(), &spec, &[]);
    let journal = dir.path().join("results/goog.csv.partial");
    wait_for_rows(&journal, 400);
    let ranks = children_of(launcher.id());
    assert_eq!(ranks.len(), 2, "two rank processes");
    signal(ranks[0], libc::SIGKILL);
    let output = launcher.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("rank 0 (pid {})", ranks[0])) && stderr.contains("killed by signal 9"),
        "{stderr}"
    );
    assert!(std::fs::read(dir.path().join("results/goog.csv")).unwrap() == expected, "table differs");
    assert!(!journal.exists(), "journal removed after success");
}

#[test]
fn a_killed_launcher_resumes_without_duplicates_or_gaps() {
    let (dir, spec) = goog_dir();
    let expected = run_table(dir.path(), &spec, &["--out", "expected.csv"], "expected.csv");
    let mut launcher = start_slow_sweep(dir.path(), &spec, &[]);
    let journal = dir.path().join("results/goog.csv.partial");
    wait_for_rows(&journal, 600);
    let ranks = children_of(launcher.id());
    signal(launcher.id(), libc::SIGKILL);
    launcher.wait().unwrap();
    // The ranks die with their launcher (PR_SET_PDEATHSIG).
    let deadline = Instant::now() + Duration::from_secs(5);
    while ranks.iter().any(|&pid| alive(pid)) {
        assert!(Instant::now() < deadline, "ranks outlived their launcher");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!dir.path().join("results/goog.csv").exists(), "no final table from a killed sweep");
    let saved = rows_in(&journal);
    assert!((600..3830).contains(&saved), "journal holds {saved} rows");

    // Without --resume the journal is protected.
    let refused = output_of(sweeprun(dir.path()).arg("run").arg(&spec));
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--resume"));

    let resumed = output_of(sweeprun(dir.path()).arg("run").arg(&spec).arg("--resume"));
    let stderr = String::from_utf8_lossy(&resumed.stderr);
    assert!(resumed.status.success(), "{stderr}");
    assert!(stderr.contains("from the journal"), "{stderr}");
    assert!(std::fs::read(dir.path().join("results/goog.csv")).unwrap() == expected, "resumed table differs");
    assert!(!journal.exists());
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("results/goog.csv.meta.json")).unwrap()).unwrap();
    assert!(meta["resumed_combos"].as_u64().unwrap() >= 600);
}

#[test]
fn ctrl_c_exits_130_and_resume_completes_the_table() {
    let (dir, spec) = goog_dir();
    let expected = run_table(dir.path(), &spec, &["--out", "expected.csv"], "expected.csv");
    let launcher = start_slow_sweep(dir.path(), &spec, &[]);
    let journal = dir.path().join("results/goog.csv.partial");
    wait_for_rows(&journal, 300);
    signal(launcher.id(), libc::SIGINT);
    let output = launcher.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("--resume"), "{stderr}");
    assert!(!dir.path().join("results/goog.csv").exists());
    let saved = rows_in(&journal);
    assert!((300..3830).contains(&saved), "journal holds {saved} rows");

    let resumed = output_of(sweeprun(dir.path()).arg("run").arg(&spec).arg("--resume"));
    assert!(resumed.status.success(), "{}", String::from_utf8_lossy(&resumed.stderr));
    assert!(std::fs::read(dir.path().join("results/goog.csv")).unwrap() == expected);

    // Resuming a finished sweep changes nothing and says so.
    let again = output_of(sweeprun(dir.path()).arg("run").arg(&spec).arg("--resume"));
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already complete"));
    assert!(std::fs::read(dir.path().join("results/goog.csv")).unwrap() == expected);
}

#[test]
fn a_journal_from_a_different_sweep_is_refused() {
    let (dir, spec) = goog_dir();
    let launcher = start_slow_sweep(dir.path(), &spec, &[]);
    wait_for_rows(&dir.path().join("results/goog.csv.partial"), 100);
    signal(launcher.id(), libc::SIGINT);
    assert_eq!(launcher.wait_with_output().unwrap().status.code(), Some(130));
    let changed =
        output_of(sweeprun(dir.path()).arg("run").arg(&spec).args(["--resume", "--set", "strategy.fee=0.001"]));
    assert_eq!(changed.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&changed.stderr);
    assert!(stderr.contains("different sweep") && stderr.lines().count() == 1, "{stderr}");
}

#[test]
fn progress_goes_to_stderr_as_plain_lines_without_a_terminal() {
    let (dir, spec) = goog_dir();
    let run = output_of(sweeprun(dir.path()).arg("run").arg(&spec).args(["--top", "3"]));
    assert!(run.status.success());
    let stderr = String::from_utf8(run.stderr).unwrap();
    assert!(stderr.lines().any(|l| l.starts_with("sweeprun: 3830 combos; computed 3830")), "{stderr}");
    assert!(!stderr.contains('\r') && !stderr.contains('\u{1b}'), "no terminal control codes: {stderr:?}");
    assert_eq!(String::from_utf8(run.stdout).unwrap().lines().count(), 5);
}
