//! End-to-end tests of `sweeprun run`: the README's command, rank counts, and the
//! reliability contract (a killed rank, a killed or interrupted launcher, `--resume`).

use std::os::unix::process::ExitStatusExt;
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

/// The `overfitting` object of a finished table's sidecar.
fn statistics_of(dir: &Path, out: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join(format!("{out}.meta.json"))).unwrap();
    let sidecar: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(sidecar["overfitting"]["pbo"].is_f64(), "{out}: no statistics in {sidecar}");
    sidecar["overfitting"].clone()
}

fn goog_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(dir.path(), "goog.toml", &goog_spec("results/goog.csv", ""));
    (dir, spec)
}

/// Distinct combos whose rows an interrupted CSV sweep has saved: those in its journal
/// `<out>.partial` and in its table so far, `<out>.partial.table` (complete lines only).
fn saved_rows(journal: &Path) -> usize {
    let mut table = journal.as_os_str().to_owned();
    table.push(".table");
    let mut ids = std::collections::BTreeSet::new();
    for path in [journal.to_path_buf(), PathBuf::from(table)] {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        for line in text.split_inclusive('\n').filter(|l| l.ends_with('\n') && !l.starts_with("combo_id")) {
            ids.insert(line.split(',').next().unwrap().to_string());
        }
    }
    ids.len()
}

/// Combos (table rows) in the sweep of `goog_spec`.
const COMBOS: usize = 3830;

/// Chunks per rank whose rows may already sit in a pipe to the launcher, unread, when the
/// rank is stopped: the launcher's in-flight limit (`IN_FLIGHT_PER_RANK`, 2) with slack.
const UNREPORTED_CHUNKS_PER_RANK: usize = 4;

/// How a deliberately slowed sweep runs: each rank sleeps `delay_ms` after every chunk of
/// `chunk` combos (compute time is negligible), so it takes about
/// `COMBOS / chunk / ranks * delay_ms` to finish if nothing stops it.
struct Pace {
    ranks: usize,
    chunk: usize,
    delay_ms: u64,
}

/// For the tests that interrupt the sweep and never wait for it: ~9.6 s if left alone, so a
/// test thread would have to stall for more than 8 s between seeing the journal reach its
/// threshold (at most 600 rows, 1.5 s in) and stopping the ranks for the sweep to finish.
const INTERRUPTED: Pace = Pace { ranks: 2, chunk: 10, delay_ms: 50 };

/// For the killed-rank test, which waits for the survivors to finish: ~4.5 s on three
/// ranks (~4 s left at 400 rows), then ~6 s for the remaining combos on two ranks.
const SURVIVED: Pace = Pace { ranks: 3, chunk: 10, delay_ms: 35 };

/// A slowed-down sweep (`SWEEPRUN_DEBUG_CHUNK_DELAY_MS`) running in the background, with
/// its rank processes. Dropping it kills the launcher (and so, through PR_SET_PDEATHSIG,
/// its ranks, even stopped ones), so a failing test leaves no processes behind.
struct SlowSweep {
    launcher: Option<Child>,
    ranks: Vec<u32>,
    pace: Pace,
    journal: PathBuf,
    table: PathBuf,
}

impl SlowSweep {
    /// Starts the sweep of `spec` (which writes `results/goog.csv`) and finds its ranks.
    fn start(dir: &Path, spec: &Path, pace: Pace, extra: &[&str]) -> SlowSweep {
        let launcher = Command::new(sweeprun_tests::sweeprun_bin())
            .current_dir(dir)
            .arg("run")
            .arg(spec)
            .args(["-np", &pace.ranks.to_string(), "--chunk-size", &pace.chunk.to_string(), "--top", "0"])
            .args(extra)
            .env("SWEEPRUN_DEBUG_CHUNK_DELAY_MS", pace.delay_ms.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut sweep = SlowSweep {
            launcher: Some(launcher),
            ranks: Vec::new(),
            pace,
            journal: dir.join("results/goog.csv.partial"),
            table: dir.join("results/goog.csv"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while sweep.ranks.len() < sweep.pace.ranks {
            assert!(Instant::now() < deadline, "the launcher did not start its ranks");
            std::thread::sleep(Duration::from_millis(5));
            sweep.ranks = children_of(sweep.launcher_pid());
        }
        assert_eq!(sweep.ranks.len(), sweep.pace.ranks, "one process per rank: {:?}", sweep.ranks);
        sweep
    }

    fn launcher_pid(&self) -> u32 {
        self.launcher.as_ref().expect("launcher not yet waited for").id()
    }

    /// Waits until the journal holds `rows` rows, then stops (SIGSTOP) every rank, so the
    /// sweep cannot progress while the test acts, however slowly the test thread runs.
    /// Asserts that the sweep had not finished and cannot finish while its ranks stay stopped
    /// (the rows they may already have sent are far from the rest), so a test never passes
    /// through another path. Returns the journal's rows at that point.
    fn stop_ranks_after(&mut self, rows: usize) -> usize {
        let deadline = Instant::now() + Duration::from_secs(30);
        while saved_rows(&self.journal) < rows {
            assert!(Instant::now() < deadline, "the sweep made no progress");
            std::thread::sleep(Duration::from_millis(10));
        }
        // The launcher first: stopped, it cannot reap a rank, so the rank pids stay theirs
        // (never reused by another process) while they are checked and stopped.
        let launcher = self.launcher_pid();
        stop(launcher, "the launcher");
        let children = children_of(launcher);
        for &rank in &self.ranks {
            assert!(children.contains(&rank), "rank pid {rank} was reaped before it could be stopped: the sweep ended");
            stop(rank, "a rank");
        }
        signal(launcher, libc::SIGCONT);
        let saved = saved_rows(&self.journal);
        let launcher = self.launcher.as_mut().expect("launcher not yet waited for");
        assert_eq!(launcher.try_wait().unwrap(), None, "the sweep ended before its ranks were stopped");
        assert!(!self.table.exists(), "the sweep finished before its ranks were stopped");
        let unreported = self.ranks.len() * UNREPORTED_CHUNKS_PER_RANK * self.pace.chunk;
        assert!(
            saved + unreported < COMBOS,
            "the sweep was nearly done ({saved} of {COMBOS} rows) before its ranks were stopped"
        );
        saved
    }

    /// Lets stopped ranks run again (SIGCONT).
    fn continue_ranks(&self, ranks: &[u32]) {
        for &rank in ranks {
            signal(rank, libc::SIGCONT);
        }
    }

    /// Waits for the launcher to exit, collecting its output.
    fn wait_with_output(mut self) -> std::process::Output {
        self.launcher.take().expect("launcher not yet waited for").wait_with_output().unwrap()
    }
}

impl Drop for SlowSweep {
    fn drop(&mut self) {
        if let Some(mut launcher) = self.launcher.take() {
            let _ = launcher.kill();
            let _ = launcher.wait();
        }
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

/// The process state letter from /proc/<pid>/stat (`None` once the process is gone).
fn state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 2..].chars().next()
}

fn stopped(state: Option<char>) -> bool {
    matches!(state, Some('T' | 't'))
}

fn alive(pid: u32) -> bool {
    !matches!(state(pid), None | Some('Z' | 'X' | 'x'))
}

/// Stops `pid` (SIGSTOP) and waits until it is stopped; fails if it has already exited.
fn stop(pid: u32, what: &str) {
    signal(pid, libc::SIGSTOP);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !stopped(state(pid)) {
        assert!(alive(pid), "{what} (pid {pid}) exited before it could be stopped: the sweep ended too soon");
        assert!(Instant::now() < deadline, "{what} (pid {pid}) not stopped after 5 s (state {:?})", state(pid));
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn signal(pid: u32, signal: libc::c_int) {
    // SAFETY: kill(2) with a pid we spawned and a valid signal number.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, signal) }, 0, "kill({pid}, {signal})");
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
    assert_eq!(stdout.lines().count(), 13, "title, header, 10 rows and the overfitting line: {stdout}");
    assert!(stdout.lines().last().unwrap().starts_with("overfitting: deflated Sharpe "), "{stdout}");
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("results/sma_goog.csv.meta.json")).unwrap())
            .unwrap();
    assert_eq!(meta["statistics"], "standard");
    assert_eq!(meta["combos"], 3830);
    let kernel = meta["kernel"].as_str().unwrap();
    assert!(["scalar", "portable", "avx2", "avx512", "neon"].contains(&kernel), "kernel {kernel}");
    assert_eq!(meta["data"]["sha256"], "60e961a567490b157f71888df9e6afb36190a34a40a6286aa38988e2343f1b1a");
    let table = std::fs::read(dir.path().join("results/sma_goog.csv")).unwrap();
    assert_eq!(meta["output"]["blake3"], blake3::hash(&table).to_hex().as_str(), "the sidecar vouches for the table");
}

#[test]
fn verify_checks_the_table_against_its_sidecar() {
    let (dir, spec) = goog_dir();
    run_table(dir.path(), &spec, &["--out", "t.jsonl", "--top", "0"], "t.jsonl");
    let verify = |table: &str| output_of(sweeprun(dir.path()).args(["verify", table]));
    let ok = verify("t.jsonl");
    assert_eq!(ok.status.code(), Some(0), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).starts_with("t.jsonl: OK (BLAKE3 "));

    // One byte changed: exit 1 with one line naming the table.
    let table = dir.path().join("t.jsonl");
    let mut bytes = std::fs::read(&table).unwrap();
    let at = bytes.iter().position(|&b| b == b'5').unwrap();
    bytes[at] = b'6';
    std::fs::write(&table, bytes).unwrap();
    let changed = verify("t.jsonl");
    let stderr = String::from_utf8_lossy(&changed.stderr);
    assert_eq!(changed.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("t.jsonl: BLAKE3 ") && stderr.contains("differs"), "{stderr}");

    // No sidecar, or no table: bad input.
    std::fs::remove_file(dir.path().join("t.jsonl.meta.json")).unwrap();
    for missing in ["t.jsonl", "absent.csv"] {
        let run = verify(missing);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(2), "{missing}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
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
            // The same text in both: the number as written, an undefined value as `null` / empty.
            let key = format!("\"{name}\":");
            let json_text = json_row.split(&key).nth(1).unwrap().split([',', '}']).next().unwrap();
            assert_eq!(json_text, if cell.is_empty() { "null" } else { cell }, "{name} in {json_row}");
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
    let mut sweep = SlowSweep::start(dir.path(), &spec, SURVIVED, &[]);
    sweep.stop_ranks_after(400);
    // Whichever rank: pids need not follow rank numbers (they wrap around).
    let (killed, survivors) = (sweep.ranks[0], sweep.ranks[1..].to_vec());
    signal(killed, libc::SIGKILL);
    sweep.continue_ranks(&survivors);
    let journal = sweep.journal.clone();
    let output = sweep.wait_with_output();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.lines().any(|l| l.contains(&format!("(pid {killed})")) && l.contains("killed by signal 9")),
        "no report of rank pid {killed} killed by signal 9: {stderr}"
    );
    assert!(std::fs::read(dir.path().join("results/goog.csv")).unwrap() == expected, "table differs");
    assert!(!journal.exists(), "journal removed after success");
}

#[test]
fn a_killed_launcher_resumes_without_duplicates_or_gaps() {
    let (dir, spec) = goog_dir();
    let expected = run_table(dir.path(), &spec, &["--out", "expected.csv"], "expected.csv");
    let mut sweep = SlowSweep::start(dir.path(), &spec, INTERRUPTED, &[]);
    let at_kill = sweep.stop_ranks_after(600);
    // The ranks stay stopped: they must die with their launcher (PR_SET_PDEATHSIG) anyway.
    let ranks = sweep.ranks.clone();
    let journal = sweep.journal.clone();
    signal(sweep.launcher_pid(), libc::SIGKILL);
    let status = sweep.wait_with_output().status;
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while ranks.iter().any(|&pid| alive(pid)) {
        assert!(Instant::now() < deadline, "ranks outlived their launcher");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!dir.path().join("results/goog.csv").exists(), "no final table from a killed sweep");
    let saved = saved_rows(&journal);
    assert!((600..COMBOS).contains(&saved) && saved >= at_kill, "journal holds {saved} rows ({at_kill} at the kill)");
    let blocks = dir.path().join("results/goog.csv.partial.blocks");
    assert!(blocks.exists(), "the block sums are kept beside the journal");

    // Without --resume the journal is protected.
    let refused = output_of(sweeprun(dir.path()).arg("run").arg(&spec));
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--resume"));

    let resumed = output_of(sweeprun(dir.path()).arg("run").arg(&spec).arg("--resume"));
    let stderr = String::from_utf8_lossy(&resumed.stderr);
    assert!(resumed.status.success(), "{stderr}");
    assert!(stderr.contains("from the journal"), "{stderr}");
    // The block sums are written every half second: a killed launcher loses at most the
    // last half second's, which the resumed run computes again.
    if let Some(line) = stderr.lines().find(|l| l.contains("block sums")) {
        let count: usize = line.split_whitespace().nth(6).unwrap().replace(',', "").parse().unwrap();
        assert!(count < saved / 2, "most of the journal's sums were on disk: {line} ({saved} saved)");
    }
    assert!(std::fs::read(dir.path().join("results/goog.csv")).unwrap() == expected, "resumed table differs");
    assert_eq!(
        statistics_of(dir.path(), "results/goog.csv"),
        statistics_of(dir.path(), "expected.csv"),
        "the resumed sweep's overfitting statistics differ"
    );
    assert!(!journal.exists() && !blocks.exists());
    assert!(!dir.path().join("results/goog.csv.partial.table").exists());
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("results/goog.csv.meta.json")).unwrap()).unwrap();
    assert!(meta["resumed_combos"].as_u64().unwrap() >= 600);
}

#[test]
fn ctrl_c_exits_130_and_resume_completes_the_table() {
    let (dir, spec) = goog_dir();
    let expected = run_table(dir.path(), &spec, &["--out", "expected.csv"], "expected.csv");
    let mut sweep = SlowSweep::start(dir.path(), &spec, INTERRUPTED, &[]);
    let at_interrupt = sweep.stop_ranks_after(300);
    // The launcher kills its (stopped) ranks itself: SIGKILL ends stopped processes too.
    let journal = sweep.journal.clone();
    signal(sweep.launcher_pid(), libc::SIGINT);
    let output = sweep.wait_with_output();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("--resume"), "{stderr}");
    assert!(!dir.path().join("results/goog.csv").exists());
    let saved = saved_rows(&journal);
    assert!(
        (300..COMBOS).contains(&saved) && saved >= at_interrupt,
        "journal holds {saved} rows ({at_interrupt} at the interrupt)"
    );

    // Block sums lost (say, a journal copied without them): the launcher computes the
    // journal's sums itself, and the statistics are the same.
    std::fs::remove_file(dir.path().join("results/goog.csv.partial.blocks")).unwrap();
    let resumed = output_of(sweeprun(dir.path()).arg("run").arg(&spec).arg("--resume"));
    let stderr = String::from_utf8_lossy(&resumed.stderr);
    assert!(resumed.status.success(), "{stderr}");
    assert!(std::fs::read(dir.path().join("results/goog.csv")).unwrap() == expected);
    let recomputed = stderr.lines().find(|l| l.contains("block sums")).unwrap_or_else(|| panic!("{stderr}"));
    let count: usize = recomputed.split_whitespace().nth(6).unwrap().replace(',', "").parse().unwrap();
    assert!(count >= saved && count < COMBOS, "{recomputed} ({saved} saved)");
    assert_eq!(statistics_of(dir.path(), "results/goog.csv"), statistics_of(dir.path(), "expected.csv"));

    // Resuming a finished sweep changes nothing and says so, statistics included.
    let again = output_of(sweeprun(dir.path()).arg("run").arg(&spec).arg("--resume"));
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already complete"));
    assert_eq!(again.stdout, resumed.stdout, "the same summary and overfitting line");
    assert!(std::fs::read(dir.path().join("results/goog.csv")).unwrap() == expected);
}

/// `-np 1` runs its rank as a thread of the launcher (no rank process), yet Ctrl-C still
/// exits 130 with everything received kept, and `--resume` finishes the same table. Under
/// a node agent (`--thermal sim:...`) the rank stays a process the agent can pause.
#[test]
fn one_rank_is_a_thread_and_ctrl_c_still_resumes() {
    let (dir, spec) = goog_dir();
    let expected = run_table(dir.path(), &spec, &["-np", "2", "--out", "expected.csv"], "expected.csv");
    let start = |extra: &[&str]| {
        Command::new(sweeprun_tests::sweeprun_bin())
            .current_dir(dir.path())
            .arg("run")
            .arg(&spec)
            .args(["-np", "1", "--chunk-size", "10", "--top", "0"])
            .args(extra)
            .env("SWEEPRUN_DEBUG_CHUNK_DELAY_MS", "20")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let journal = dir.path().join("results/goog.csv.partial");
    let wait_for_rows = |rows: usize| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while saved_rows(&journal) < rows {
            assert!(Instant::now() < deadline, "the sweep made no progress");
            std::thread::sleep(Duration::from_millis(5));
        }
    };

    let launcher = start(&[]);
    wait_for_rows(100);
    assert_eq!(children_of(launcher.id()), Vec::<u32>::new(), "-np 1: no rank process");
    signal(launcher.id(), libc::SIGINT);
    let output = launcher.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("--resume"), "{stderr}");
    assert!(!dir.path().join("results/goog.csv").exists());
    let saved = saved_rows(&journal);
    assert!((100..COMBOS).contains(&saved), "journal holds {saved} rows");
    let resumed = output_of(sweeprun(dir.path()).arg("run").arg(&spec).args(["-np", "1", "--resume"]));
    assert!(resumed.status.success(), "{}", String::from_utf8_lossy(&resumed.stderr));
    assert!(std::fs::read(dir.path().join("results/goog.csv")).unwrap() == expected, "resumed table differs");
    assert_eq!(
        statistics_of(dir.path(), "results/goog.csv"),
        statistics_of(dir.path(), "expected.csv"),
        "-np 1 (a thread), resumed, and -np 2 give the same statistics"
    );

    // Under an agent: one rank process, in a process group of its own (what the agent stops).
    std::fs::remove_file(dir.path().join("results/goog.csv")).unwrap();
    let mut launcher = start(&["--thermal", "sim:pi4-case-fan-on"]);
    wait_for_rows(100);
    let ranks = children_of(launcher.id());
    let _ = launcher.kill();
    let _ = launcher.wait();
    assert_eq!(ranks.len(), 1, "--thermal sim at -np 1: one rank process, got {ranks:?}");
    // SAFETY: getpgid(2) takes a pid and no pointers.
    assert_eq!(unsafe { libc::getpgid(ranks[0] as libc::pid_t) }, ranks[0] as libc::pid_t);
}

#[test]
fn a_journal_from_a_different_sweep_is_refused() {
    let (dir, spec) = goog_dir();
    let mut sweep = SlowSweep::start(dir.path(), &spec, INTERRUPTED, &[]);
    sweep.stop_ranks_after(100);
    signal(sweep.launcher_pid(), libc::SIGINT);
    assert_eq!(sweep.wait_with_output().status.code(), Some(130));
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
    assert_eq!(String::from_utf8(run.stdout).unwrap().lines().count(), 6, "title, header, 3 rows, overfitting");
}

#[test]
fn stats_override_and_tearsheets_agree_with_the_table() {
    let (dir, spec) = goog_dir();
    let run = output_of(sweeprun(dir.path()).arg("run").arg(&spec).args([
        "--stats",
        "qstrader",
        "--equity",
        "0,5",
        "--tearsheet",
        "top:1",
        "--top",
        "0",
    ]));
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let out = dir.path().join("results/goog.csv");
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.with_extension("csv.meta.json")).unwrap()).unwrap();
    assert_eq!(meta["statistics"], "qstrader");
    let (header, rows) = sweeprun_tests::read_csv(&out);
    let sharpe_col = header.iter().position(|h| h == "sharpe").unwrap();
    let sheets = dir.path().join("results/goog.csv.tearsheets");
    for (id, fast, slow) in [(0usize, "5", "10"), (5, "5", "35")] {
        assert_eq!(rows[id][1..3], [fast, slow]);
        let tag = format!("sma_cross_fast{fast}_slow{slow}");
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(sheets.join(format!("{tag}.json"))).unwrap()).unwrap();
        // The tearsheet recomputes the statistics two-pass from the stored curve.
        let table_sharpe: f64 = rows[id][sharpe_col].parse().unwrap();
        let sheet_sharpe = doc["strategy"]["sharpe"].as_f64().unwrap();
        assert!(
            (table_sharpe - sheet_sharpe).abs() <= 1e-9 * table_sharpe.abs(),
            "{tag}: {table_sharpe} vs {sheet_sharpe}"
        );
        assert_eq!(doc["strategy"]["equity_curve"].as_array().unwrap().len(), 2148);
        let (_, curve) = sweeprun_tests::read_csv(&sheets.join(format!("{tag}.equity.csv")));
        assert_eq!(curve.len(), 2148);
        assert_eq!(curve[0], ["2004-08-19", "1.0"]);
    }
    // top:1 by sharpe adds the best combo's tearsheet.
    let written = std::fs::read_dir(&sheets)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().unwrap() == "json")
        .count();
    assert_eq!(written, 3);
}

#[test]
fn sweeprun_kernel_picks_the_path_and_the_sidecar_says_so() {
    let (dir, spec) = goog_dir();
    let scalar = output_of(
        sweeprun(dir.path())
            .env("SWEEPRUN_KERNEL", "scalar")
            .arg("run")
            .arg(&spec)
            .args(["--out", "s.csv", "--top", "0"]),
    );
    assert!(scalar.status.success(), "{}", String::from_utf8_lossy(&scalar.stderr));
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("s.csv.meta.json")).unwrap()).unwrap();
    assert_eq!(meta["kernel"], "scalar");
    let portable = output_of(
        sweeprun(dir.path())
            .env("SWEEPRUN_KERNEL", "portable")
            .arg("run")
            .arg(&spec)
            .args(["--out", "p.csv", "--top", "0"]),
    );
    assert!(portable.status.success());
    // Same combos, same trades and drawdowns; statistics within 1e-9 of the scalar kernel.
    let (header, s_rows) = sweeprun_tests::read_csv(&dir.path().join("s.csv"));
    let (_, p_rows) = sweeprun_tests::read_csv(&dir.path().join("p.csv"));
    let trades = header.iter().position(|h| h == "trades").unwrap();
    for (a, b) in s_rows.iter().zip(&p_rows) {
        assert_eq!(a[trades], b[trades]);
    }
    let bogus =
        output_of(sweeprun(dir.path()).env("SWEEPRUN_KERNEL", "sse9").arg("run").arg(&spec).args(["--out", "b.csv"]));
    assert_eq!(bogus.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bogus.stderr).contains("SWEEPRUN_KERNEL=sse9"));
    assert!(!dir.path().join("b.csv").exists());
}

#[test]
fn the_top_k_preselected_by_ranks_equals_the_top_k_of_the_whole_table() {
    // A fresh sweep ranks only the rows its ranks preselect per chunk; `--resume` of a
    // finished table ranks every row of the file. Small chunks (many preselections), every
    // metric (higher- and lower-is-better, integer columns full of ties), CSV and JSONL.
    let (dir, spec) = goog_dir();
    for out in ["t.csv", "t.jsonl"] {
        for metric in [
            "total_return",
            "cagr",
            "sharpe",
            "sortino",
            "volatility",
            "max_drawdown",
            "max_drawdown_duration",
            "trades",
        ] {
            let args = ["--out", out, "--top", "25", "--sort-by", metric, "-np", "3", "--chunk-size", "37"];
            let fresh = output_of(sweeprun(dir.path()).arg("run").arg(&spec).args(args));
            assert!(fresh.status.success(), "{}", String::from_utf8_lossy(&fresh.stderr));
            let whole = output_of(sweeprun(dir.path()).arg("run").arg(&spec).args(args).arg("--resume"));
            assert!(String::from_utf8_lossy(&whole.stderr).contains("already complete"));
            let shown = String::from_utf8(fresh.stdout).unwrap();
            assert_eq!(shown.lines().count(), 28, "title, header, 25 rows and the overfitting line: {shown}");
            assert_eq!(shown, String::from_utf8(whole.stdout).unwrap(), "{out} by {metric}");
            for file in [out.to_string(), format!("{out}.meta.json")] {
                std::fs::remove_file(dir.path().join(file)).unwrap();
            }
        }
    }
}

#[test]
fn a_grid_smaller_than_the_rank_count_uses_only_the_ranks_it_needs() {
    // Ranks start before the grid size is known; the extra ones are stopped, and whatever
    // they still report must not disturb the sweep.
    let dir = tempfile::tempdir().unwrap();
    let tiny = goog_spec("tiny.csv", "").replace(
        "fast = { from = 5, to = 100, step = 1 }\nslow = { from = 10, to = 250, step = 5 }",
        "fast = [5, 10]\nslow = [30]",
    );
    assert!(tiny.contains("fast = [5, 10]"), "spec template changed: {tiny}");
    let spec = write_spec(dir.path(), "tiny.toml", &tiny);
    for np in [None, Some("4"), Some("64")] {
        let mut command = sweeprun(dir.path());
        command.arg("run").arg(&spec);
        if let Some(np) = np {
            command.args(["-np", np]);
        }
        let run = output_of(&mut command);
        assert!(run.status.success(), "-np {np:?}: {}", String::from_utf8_lossy(&run.stderr));
        let table = std::fs::read_to_string(dir.path().join("tiny.csv")).unwrap();
        assert_eq!(table.lines().count(), 3, "header and two rows: {table}");
        let meta: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("tiny.csv.meta.json")).unwrap()).unwrap();
        assert_eq!(meta["ranks"], 2, "-np {np:?}");
        assert!(!dir.path().join("tiny.csv.partial").exists());
    }
}

/// Runs `sweeprun run` with `args` in a temp dir; asserts success; returns (stdout, stderr).
fn run_ok(dir: &Path, args: &[&str]) -> (String, String) {
    let run = output_of(sweeprun(dir).args(args));
    let stderr = String::from_utf8(run.stderr).unwrap();
    assert!(run.status.success(), "sweeprun {args:?}: {stderr}");
    (String::from_utf8(run.stdout).unwrap(), stderr)
}

#[test]
fn every_summary_column_sorts_and_money_is_readable() {
    let dir = tempfile::tempdir().unwrap();
    let spec = workspace_root().join("examples/momentum_etf5.toml");
    let spec = spec.to_str().unwrap();
    for column in ["final_equity", "rebalances", "lookback", "top_n", "max_drawdown"] {
        let (stdout, _) = run_ok(dir.path(), &["run", spec, "--out", "m.csv", "--top", "3", "--sort-by", column]);
        assert!(stdout.starts_with(&format!("top 3 of 60 by {column}:")), "{stdout}");
        let (header, rows) = sweeprun_tests::read_csv(&dir.path().join("m.csv"));
        let col = header.iter().position(|h| h == column).unwrap();
        let mut values: Vec<f64> = rows.iter().map(|r| r[col].parse().unwrap()).collect();
        values.sort_by(f64::total_cmp);
        let best = if column == "max_drawdown" { values[0] } else { values[values.len() - 1] };
        let shown = stdout.lines().nth(2).unwrap().split_whitespace().nth(col + 1).unwrap().replace(',', "");
        assert!((shown.parse::<f64>().unwrap() - best).abs() <= 1e-4 * best.abs().max(1.0), "{column}: {stdout}");
    }
    let (stdout, _) = run_ok(dir.path(), &["run", spec, "--out", "m.csv", "--top", "3"]);
    let header: Vec<&str> = stdout.lines().nth(1).unwrap().split_whitespace().collect();
    let equity_col = header.iter().position(|&h| h == "final_equity").unwrap();
    for line in stdout.lines().skip(2).filter(|l| !l.starts_with("overfitting: ")) {
        let cells: Vec<&str> = line.split_whitespace().collect();
        let equity = cells[equity_col];
        assert!(equity.contains(',') && equity.split_once('.').unwrap().1.len() == 2, "money: {line}");
        assert!(!line.contains("e6") && !line.contains("e+") && !line.contains("e-"), "no exponents: {line}");
        let sharpe = cells[header.iter().position(|&h| h == "sharpe").unwrap()];
        assert_eq!(sharpe.split_once('.').unwrap().1.len(), 4, "ratios with 4 decimals: {line}");
    }
}

#[test]
fn one_combo_is_singular_in_every_message() {
    let (dir, spec) = goog_dir();
    let spec = spec.to_str().unwrap();
    let (_, stderr) = run_ok(dir.path(), &["run", spec, "-np", "1", "--set", "grid.fast=5", "--set", "grid.slow=10"]);
    assert!(
        stderr.contains("(1 row)") && stderr.contains("sweeprun: 1 combo;") && stderr.contains("on 1 rank"),
        "{stderr}"
    );
    // A count of one is the whole number: "18761 combos/s" is a rate, not a plural error.
    let words: Vec<&str> = stderr.split(|c: char| !c.is_ascii_alphanumeric()).collect();
    for plural in ["rows", "combos", "ranks"] {
        let after_one = words.windows(2).any(|w| w[0] == "1" && w[1] == plural);
        assert!(!after_one, "`1 {plural}` in {stderr}");
    }
}

#[test]
fn long_only_equity_stays_positive_at_the_highest_fees() {
    let dir = tempfile::tempdir().unwrap();
    let ids: Vec<String> = (0..60).map(|id| id.to_string()).collect();
    let ids = ids.join(",");
    let spec = workspace_root().join("examples/momentum_etf5.toml");
    let fees = ["--set", "strategy.fee_pct=0.1", "--set", "strategy.tax_pct=0.1"];
    let mut args = vec!["run", spec.to_str().unwrap(), "--out", "fees.csv", "--top", "0", "--equity", &ids];
    args.extend(fees);
    run_ok(dir.path(), &args);
    let (header, rows) = sweeprun_tests::read_csv(&dir.path().join("fees.csv"));
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    for row in &rows {
        assert!(row[column("final_equity")].parse::<f64>().unwrap() > 0.0, "{row:?}");
        assert!(row[column("total_return")].parse::<f64>().unwrap() > -1.0, "{row:?}");
    }
    let mut curves = 0;
    for entry in std::fs::read_dir(dir.path().join("fees.csv.tearsheets")).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().ends_with(".equity.csv") {
            let (_, points) = sweeprun_tests::read_csv(&path);
            assert!(points.iter().all(|p| p[1].parse::<f64>().unwrap() > 0.0), "{}", path.display());
            curves += 1;
        }
    }
    assert_eq!(curves, 60);
}

#[test]
fn bench_finds_its_example_data_from_any_directory_and_compares_only_momentum() {
    let dir = tempfile::tempdir().unwrap();
    let sma = output_of(sweeprun(dir.path()).args(["bench", "--samples", "1", "--fast", "2:10", "--slow", "5:20"]));
    let stdout = String::from_utf8(sma.stdout).unwrap();
    assert!(sma.status.success(), "{}", String::from_utf8_lossy(&sma.stderr));
    assert!(stdout.contains("combo-bars/s") && !stdout.contains("faster than"), "{stdout}");
    let baseline = output_of(sweeprun(dir.path()).args(["bench", "--samples", "1", "--baseline", "10"]));
    let stderr = String::from_utf8(baseline.stderr).unwrap();
    assert_eq!(baseline.status.code(), Some(2));
    assert!(stderr.lines().count() == 1 && stderr.contains("--baseline"), "{stderr}");
    let spec = workspace_root().join("examples/momentum_etf5.toml");
    let momentum = output_of(sweeprun(dir.path()).arg("bench").arg(&spec).args(["--samples", "1"]));
    let stdout = String::from_utf8(momentum.stdout).unwrap();
    assert!(momentum.status.success(), "{}", String::from_utf8_lossy(&momentum.stderr));
    assert!(stdout.contains("faster than 8.24 s per backtest"), "{stdout}");
}

/// `bench --cscv-blocks S` times the overfitting statistics after the kernel; a bad S is
/// one line and exit 2.
#[test]
fn bench_times_the_overfitting_statistics_and_refuses_bad_block_counts() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["bench", "--samples", "1", "--fast", "2:20", "--slow", "5:60", "--cscv-blocks"];
    let ok = output_of(sweeprun(dir.path()).args(args).arg("8"));
    let stdout = String::from_utf8(ok.stdout).unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(stdout.contains("with sums over 8 CSCV blocks"), "{stdout}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("overfitting statistics: 70 splits x "))
        .unwrap_or_else(|| panic!("{stdout}"));
    let pbo: f64 = line.rsplit("PBO ").next().unwrap().trim_end_matches(')').parse().unwrap();
    assert!((0.0..=1.0).contains(&pbo), "{line}");
    for (blocks, says) in
        [("3", "even number of blocks"), ("0", "even number of blocks"), ("26", "more than 24 (C(26, 13) splits")]
    {
        let bad = output_of(sweeprun(dir.path()).args(args).arg(blocks));
        let stderr = String::from_utf8(bad.stderr).unwrap();
        assert_eq!(bad.status.code(), Some(2), "{blocks}: {stderr}");
        assert!(stderr.lines().count() == 1 && stderr.contains("--cscv-blocks") && stderr.contains(says), "{stderr}");
    }
    let spec = workspace_root().join("examples/momentum_etf5.toml");
    let bad = output_of(sweeprun(dir.path()).arg("bench").arg(&spec).args(["--samples", "1", "--cscv-blocks", "8"]));
    assert_eq!(bad.status.code(), Some(2));
}
