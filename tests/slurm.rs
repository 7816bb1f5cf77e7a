//! `--backend slurm` end to end, on a real SLURM 22.05: slurmctld and one slurmd per
//! emulated node (`scripts/cluster/slurm-up.sh`), MPI ranks through PMIx. Every table
//! must equal the local backend's byte for byte; cancellation, a lost node and a time
//! limit must leave a ledger that `--resume` finishes.
//!
//! Needs the cluster up (`bash scripts/cluster/slurm-up.sh`, as root) and OpenMPI with
//! libclang (sweeprun is built with `--features mpi`). `scripts/test-all.sh` does both;
//! run alone without them, these tests fail saying what is missing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use sweeprun_tests::{goog_spec, output_of, sweeprun, workspace_root, write_spec};

/// The tests take turns: one kills a node, and jobs of two tests at once would wait for
/// each other's CPUs.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn take_turn() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// sweeprun built with OpenMPI (what the batch script runs under `srun --mpi=pmix`).
fn mpi_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| sweeprun_tests::mpi_build("mpi-openmpi", "mpicc.openmpi")).clone()
}

/// The SLURM cluster's settings (`slurm-up.sh` writes them), as environment variables.
fn slurm_env() -> Vec<(String, String)> {
    sweeprun_tests::exported_vars(
        Path::new("/run/sweeprun-cluster/slurm-env.sh"),
        "the SLURM cluster is not up: run `bash scripts/cluster/slurm-up.sh` as root",
    )
}

/// A command on the cluster (SLURM_CONF set), run in `dir`.
fn on_cluster(program: impl AsRef<std::ffi::OsStr>, dir: &Path) -> Command {
    let mut command = Command::new(program);
    command.current_dir(dir).envs(slurm_env()).env_remove("SWEEPRUN_DEBUG_CHUNK_DELAY_MS");
    command
}

/// `sweeprun` (the MPI build) on the cluster, in `dir`.
fn slurm_sweeprun(dir: &Path) -> Command {
    on_cluster(mpi_bin(), dir)
}

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The local backend's table and summary for `spec` (what every SLURM run must equal).
fn local_table(dir: &Path, spec: &Path, out: &str, top: &str) -> (Vec<u8>, String) {
    let run = output_of(sweeprun(dir).arg("run").arg(spec).args(["--top", top, "--out", out]));
    assert!(run.status.success(), "local run: {}", stderr_of(&run));
    (std::fs::read(dir.join(out)).unwrap(), String::from_utf8(run.stdout).unwrap())
}

fn sidecar(table: &Path) -> serde_json::Value {
    let mut path = table.as_os_str().to_owned();
    path.push(".meta.json");
    serde_json::from_str(&std::fs::read_to_string(PathBuf::from(path)).unwrap()).unwrap()
}

fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// The job id `<out>.slurm.json` records.
fn job_of(out: &Path) -> String {
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(suffixed(out, ".slurm.json")).unwrap()).unwrap();
    record["job_id"].as_str().unwrap().to_string()
}

/// The job's stderr file (OpenMPI's and srun's complaints land there), for failure messages.
fn job_log(out: &Path) -> String {
    let id = std::fs::read_to_string(suffixed(out, ".slurm.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .and_then(|record| record["job_id"].as_str().map(str::to_string));
    match id {
        Some(id) => std::fs::read_to_string(suffixed(out, &format!(".slurm-{id}.err")))
            .unwrap_or_else(|e| format!("(no job log: {e})")),
        None => "(no job record)".to_string(),
    }
}

/// `JobState` of a job, from scontrol.
fn job_state(dir: &Path, id: &str) -> String {
    let out = output_of(on_cluster("scontrol", dir).args(["show", "job", "-o", id]));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.split_whitespace().find_map(|w| w.strip_prefix("JobState=")).unwrap_or("").to_string()
}

/// Every job SLURM knows (finished ones too, for MinJobAge).
fn all_jobs(dir: &Path) -> Vec<String> {
    let out = output_of(on_cluster("squeue", dir).args(["-h", "-t", "all", "-o", "%i"]));
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
}

/// Distinct rows of a running sweep on disk, at least: the in-order table's rows, or the
/// journal's (a chunk that came early is journaled at a sync and later written to the
/// table too, so the two are not added). Headers are not counted.
fn rows_on_disk(out: &Path) -> u64 {
    [".partial", ".partial.table"]
        .iter()
        .map(|s| std::fs::read_to_string(suffixed(out, s)).map_or(0, |t| t.lines().count().saturating_sub(1) as u64))
        .max()
        .unwrap_or(0)
}

/// Polls until `ready` (every 50 ms), failing the test after `limit`.
fn wait_for(what: &str, limit: Duration, mut ready: impl FnMut() -> bool) {
    let started = Instant::now();
    while !ready() {
        assert!(started.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A child process killed (and reaped) when the test ends, whatever happens.
struct KillOnDrop(Option<std::process::Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl KillOnDrop {
    fn pid(&self) -> nix::unistd::Pid {
        nix::unistd::Pid::from_raw(self.0.as_ref().expect("running").id() as i32)
    }

    /// Waits for the process to exit (at most `limit`) and returns its output.
    fn finish(mut self, limit: Duration) -> Output {
        let started = Instant::now();
        while self.0.as_mut().expect("running").try_wait().unwrap().is_none() {
            assert!(started.elapsed() < limit, "the follower did not end within {limit:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
        self.0.take().expect("running").wait_with_output().unwrap()
    }
}

/// Starts `sweeprun run SPEC --backend slurm ARGS` following its job, slowed down by
/// `delay_ms` per chunk (the job inherits the variable, as sbatch exports the environment).
fn follower(dir: &Path, spec: &Path, delay_ms: u64, args: &[&str]) -> KillOnDrop {
    let child = slurm_sweeprun(dir)
        .env("SWEEPRUN_DEBUG_CHUNK_DELAY_MS", delay_ms.to_string())
        .arg("run")
        .arg(spec)
        .args(["--backend", "slurm", "--top", "0", "--chunk-size", "10"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    KillOnDrop(Some(child))
}

fn goog(dir: &Path) -> PathBuf {
    write_spec(dir, "goog.toml", &goog_spec("unused.csv", ""))
}

#[test]
fn the_sma_grid_via_sbatch_and_via_srun_on_16_ranks_equals_the_local_table() {
    let _turn = take_turn();
    let dir = tempfile::tempdir().unwrap();
    let spec = goog(dir.path());
    let (local, local_summary) = local_table(dir.path(), &spec, "local.csv", "3");

    let run = output_of(
        slurm_sweeprun(dir.path())
            .arg("run")
            .arg(&spec)
            .args(["--backend", "slurm", "--nodes", "4", "--ntasks-per-node", "4", "--report-bindings"])
            .args(["--top", "3", "--out", "slurm.csv"]),
    );
    let stderr = stderr_of(&run);
    let out = dir.path().join("slurm.csv");
    assert!(run.status.success(), "{stderr}\njob log:\n{}", job_log(&out));
    assert!(stderr.starts_with("sweeprun: submitted job "), "the job id comes first: {stderr}");
    assert!(std::fs::read(&out).unwrap() == local, "the SLURM table differs from the local one");
    assert_eq!(String::from_utf8(run.stdout).unwrap(), local_summary, "the same summary");
    assert_eq!(sidecar(&out)["ranks"], 16);
    let statistics = sidecar(&out)["overfitting"].clone();
    assert!(statistics["pbo"].is_f64(), "{statistics}");
    assert_eq!(statistics, sidecar(&dir.path().join("local.csv"))["overfitting"], "the local run's statistics");
    assert_eq!(sidecar(&out)["slurm_job"], job_of(&out).as_str(), "the sidecar names the job");
    let script = std::fs::read_to_string(dir.path().join("slurm.csv.sbatch")).unwrap();
    for line in ["#SBATCH --nodes=4", "#SBATCH --ntasks-per-node=4", "#SBATCH --requeue"] {
        assert!(script.lines().any(|l| l == line), "{line} missing:\n{script}");
    }
    assert!(script.contains("\nexec srun --mpi=pmix "), "{script}");
    // Every rank said where it runs: 4 on each node.
    let log = std::fs::read_to_string(suffixed(&out, &format!(".slurm-{}.err", job_of(&out)))).unwrap();
    for node in 1..=4 {
        let on_node = log.lines().filter(|l| l.starts_with(&format!("[node{node}:")) && l.contains("MCW rank")).count();
        assert_eq!(on_node, 4, "node{node}:\n{log}");
    }

    // srun itself, in an allocation of its own: the same table.
    let srun = output_of(
        on_cluster("srun", dir.path())
            .args(["--mpi=pmix", "-N", "4", "-n", "16"])
            .arg(mpi_bin())
            .arg("run")
            .arg(&spec)
            .args(["--backend", "mpi", "--top", "0", "--out"])
            .arg(dir.path().join("srun.csv")),
    );
    assert!(srun.status.success(), "{}", stderr_of(&srun));
    assert!(std::fs::read(dir.path().join("srun.csv")).unwrap() == local, "the srun table differs");
    assert_eq!(sidecar(&dir.path().join("srun.csv"))["ranks"], 16);
}

#[test]
fn detach_status_scancel_collect_and_resume_give_the_uninterrupted_table() {
    let _turn = take_turn();
    let dir = tempfile::tempdir().unwrap();
    let spec = goog(dir.path());
    let (local, local_summary) = local_table(dir.path(), &spec, "local.csv", "5");
    let out = dir.path().join("cut.csv");
    let out_arg = out.display().to_string();
    // 383 chunks of 10 at 0.3 s on 8 ranks: about 15 s.
    let follow = follower(dir.path(), &spec, 300, &["--nodes", "2", "--ntasks-per-node", "4", "--out", &out_arg]);
    wait_for("200 rows on disk", Duration::from_secs(90), || rows_on_disk(&out) >= 200);
    let id = job_of(&out);

    // Ctrl-C detaches: the job goes on.
    nix::sys::signal::kill(follow.pid(), nix::sys::signal::Signal::SIGINT).unwrap();
    let detached = follow.finish(Duration::from_secs(10));
    let stderr = stderr_of(&detached);
    assert_eq!(detached.status.code(), Some(130), "{stderr}");
    assert!(stderr.lines().last().unwrap().starts_with(&format!("sweeprun: detached; job {id} goes on")), "{stderr}");
    assert_eq!(job_state(dir.path(), &id), "RUNNING", "Ctrl-C cancels nothing");

    let status = output_of(slurm_sweeprun(dir.path()).args(["status", &out_arg]));
    let text = String::from_utf8_lossy(&status.stdout).into_owned();
    assert!(status.status.success(), "{}", stderr_of(&status));
    assert!(text.starts_with(&format!("job {id}: RUNNING on node[1-2]\n")), "{text}");
    assert!(text.contains("/3830 combos on disk"), "{text}");

    // A second job for the same table is refused while this one runs.
    let twice = output_of(slurm_sweeprun(dir.path()).arg("run").arg(&spec).args([
        "--backend",
        "slurm",
        "--resume",
        "--out",
        &out_arg,
    ]));
    assert_eq!(twice.status.code(), Some(2), "{}", stderr_of(&twice));
    assert!(stderr_of(&twice).contains(&format!("job {id} is still RUNNING writing")), "{}", stderr_of(&twice));

    // scancel mid-sweep: the follower reports how the job ended and how to finish.
    let cancelled = output_of(on_cluster("scancel", dir.path()).arg(&id));
    assert!(cancelled.status.success());
    let collect = output_of(slurm_sweeprun(dir.path()).args(["collect", &out_arg]));
    let stderr = stderr_of(&collect);
    assert_eq!(collect.status.code(), Some(1), "{stderr}");
    let last = stderr.lines().last().unwrap();
    assert!(last.starts_with(&format!("sweeprun: error: job {id} ended CANCELLED")), "{stderr}");
    assert!(last.contains("results so far are kept in") && last.ends_with("--resume`)"), "{stderr}");
    assert!(suffixed(&out, ".partial").exists() && !out.exists());
    let cancel = output_of(slurm_sweeprun(dir.path()).args(["cancel", &out_arg]));
    assert!(cancel.status.success());
    assert!(stderr_of(&cancel).contains("already ended (CANCELLED); nothing to cancel"), "{}", stderr_of(&cancel));

    // Without --resume the journal is not overwritten.
    let again =
        output_of(slurm_sweeprun(dir.path()).arg("run").arg(&spec).args(["--backend", "slurm", "--out", &out_arg]));
    assert_eq!(again.status.code(), Some(2));
    assert!(stderr_of(&again).contains("add --resume to finish it"), "{}", stderr_of(&again));

    // --resume --no-wait: the job id on stdout; collect waits and prints the summary.
    let resumed = output_of(
        slurm_sweeprun(dir.path())
            .arg("run")
            .arg(&spec)
            .args(["--backend", "slurm", "--nodes", "2", "--top", "5"])
            .args(["--out", &out_arg, "--resume", "--no-wait"]),
    );
    assert!(resumed.status.success(), "{}", stderr_of(&resumed));
    let new_id = String::from_utf8(resumed.stdout).unwrap().trim().to_string();
    assert!(new_id.parse::<u64>().is_ok() && new_id != id, "a new job: {new_id}");
    let collect = output_of(slurm_sweeprun(dir.path()).args(["collect", &out_arg]));
    assert!(collect.status.success(), "{}", stderr_of(&collect));
    assert_eq!(String::from_utf8(collect.stdout).unwrap(), local_summary);
    assert!(std::fs::read(&out).unwrap() == local, "the resumed table differs from an uninterrupted one");
    let meta = sidecar(&out);
    let resumed_combos = meta["resumed_combos"].as_u64().unwrap();
    assert!((200..3830).contains(&resumed_combos), "only what was missing ran: {meta}");
    assert!(!suffixed(&out, ".partial").exists(), "the journal is gone");
}

/// Node `n` of the emulated cluster gets its slurmd back when the test ends.
struct Revive(u32);

impl Drop for Revive {
    fn drop(&mut self) {
        let script = workspace_root().join("scripts/cluster/slurm-node.sh");
        let _ = Command::new("bash").arg(script).args(["revive", &self.0.to_string()]).status();
    }
}

#[test]
fn a_node_lost_mid_sweep_requeues_the_job_and_the_rerun_finishes_from_the_journal() {
    let _turn = take_turn();
    let dir = tempfile::tempdir().unwrap();
    let spec = goog(dir.path());
    let (local, _) = local_table(dir.path(), &spec, "local.csv", "0");
    let out = dir.path().join("lost.csv");
    let out_arg = out.display().to_string();
    // 3 of the 4 nodes: the requeued job finds 3 live ones without waiting for a revive.
    let follow = follower(dir.path(), &spec, 300, &["--nodes", "3", "--ntasks-per-node", "4", "--out", &out_arg]);
    wait_for("300 rows on disk", Duration::from_secs(90), || rows_on_disk(&out) >= 300);
    let id = job_of(&out);
    let _revive = Revive(3);
    let kill = Command::new("bash")
        .arg(workspace_root().join("scripts/cluster/slurm-node.sh"))
        .args(["kill", "3"])
        .output()
        .unwrap();
    assert!(kill.status.success(), "{}", stderr_of(&kill));
    // SLURM marks the node DOWN after ~30 s and requeues the job; it may start again after
    // cred_expire (30 s here).
    let done = follow.finish(Duration::from_secs(180));
    let stderr = stderr_of(&done);
    assert!(done.status.success(), "{stderr}");
    assert!(stderr.contains(&format!("sweeprun: job {id} was requeued by SLURM (restart 1)")), "{stderr}");
    assert!(std::fs::read(&out).unwrap() == local, "the table after the node loss differs");
    let meta = sidecar(&out);
    assert_eq!(
        meta["overfitting"],
        sidecar(&dir.path().join("local.csv"))["overfitting"],
        "requeued: the same statistics"
    );
    assert!(meta["resumed_combos"].as_u64().unwrap() >= 250, "the rerun resumed: {meta}");
    let log = std::fs::read_to_string(suffixed(&out, &format!(".slurm-{id}.err"))).unwrap();
    assert!(log.contains(&format!("sweeprun: job {id} (restart 1) on ")), "the job ran again: {log}");
}

#[test]
fn a_job_past_its_time_limit_leaves_a_journal_that_resume_finishes() {
    let _turn = take_turn();
    let dir = tempfile::tempdir().unwrap();
    let spec = goog(dir.path());
    let (local, _) = local_table(dir.path(), &spec, "local.csv", "0");
    let out = dir.path().join("late.csv");
    let out_arg = out.display().to_string();
    // About 50 s of work: longer than slurmctld's 30 s between time-limit checks.
    let follow = follower(
        dir.path(),
        &spec,
        1000,
        &["--nodes", "2", "--ntasks-per-node", "4", "--time", "10", "--out", &out_arg],
    );
    wait_for("100 rows on disk", Duration::from_secs(90), || rows_on_disk(&out) >= 100);
    let id = job_of(&out);
    let script = std::fs::read_to_string(suffixed(&out, ".sbatch")).unwrap();
    assert!(script.lines().any(|l| l == "#SBATCH --time=10"), "{script}");
    // The limit drops to 0: the next check (within 30 s) ends the job with TIMEOUT.
    let update = output_of(on_cluster("scontrol", dir.path()).args(["update", &format!("jobid={id}"), "TimeLimit=0"]));
    assert!(update.status.success(), "{}", stderr_of(&update));
    let ended = follow.finish(Duration::from_secs(90));
    let stderr = stderr_of(&ended);
    assert_eq!(ended.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.lines().last().unwrap().starts_with(&format!("sweeprun: error: job {id} ended TIMEOUT")),
        "{stderr}"
    );
    let journaled = rows_on_disk(&out);
    assert!(journaled >= 100 && !out.exists(), "the journal holds what was done");

    let resumed = output_of(
        slurm_sweeprun(dir.path())
            .arg("run")
            .arg(&spec)
            .args(["--backend", "slurm", "--nodes", "2", "--top", "0"])
            .args(["--out", &out_arg, "--resume"]),
    );
    assert!(resumed.status.success(), "{}", stderr_of(&resumed));
    assert!(std::fs::read(&out).unwrap() == local, "the resumed table differs from an uninterrupted one");
    assert!(sidecar(&out)["resumed_combos"].as_u64().unwrap() >= 100);
}

/// Every file under `dir`, for "nothing was written".
fn listing(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files
}

#[test]
fn bad_input_exits_2_with_one_line_and_submits_nothing() {
    let _turn = take_turn();
    let dir = tempfile::tempdir().unwrap();
    let spec = goog(dir.path());
    let both = write_spec(
        dir.path(),
        "both.toml",
        "[strategy]\nname = \"sma_cross\"\n[command]\nargv = [\"true\"]\n[grid]\nfast = [1]\n[output]\npath = \"b.csv\"\n",
    );
    let unknown_field = write_spec(
        dir.path(),
        "field.toml",
        "[command]\nargv = [\"echo\", \"{lookback}\"]\n[grid]\nfast = [1]\n[output]\npath = \"f.csv\"\n",
    );
    let before = listing(dir.path());
    let jobs = all_jobs(dir.path());
    let cases: Vec<(Vec<&str>, &Path, &str)> = vec![
        (vec!["--partition", "nope"], &spec, "--partition nope: no such partition (this cluster has: debug)"),
        (vec!["--nodes", "5"], &spec, "--nodes 5: partition debug has only 4 nodes"),
        (vec!["--nodes", "0"], &spec, "--nodes: expected at least 1, got 0"),
        (vec!["-np", "4"], &spec, "-np: with --backend slurm the ranks are --nodes x --ntasks-per-node"),
        (
            vec!["--sbatch-arg=--mem=lots"],
            &spec,
            "--backend slurm: sbatch refused the job: Invalid --mem specification",
        ),
        (vec!["--sbatch-arg=--time=9"], &spec, "--sbatch-arg=--time=9: sweeprun sets --time itself (use --time)"),
        (
            vec!["--sbatch-arg", "exclusive"],
            &spec,
            "--sbatch-arg: expected one sbatch option in the --opt or --opt=value form",
        ),
        (vec!["--sbatch-arg=--output=x.log"], &spec, "--sbatch-arg=--output=x.log: sweeprun sets --output itself"),
        (vec!["--partition", "debug,nope"], &spec, "--partition nope: no such partition"),
        (vec!["--out", "a\\b.csv"], &spec, "holds a backslash, which a SLURM batch script cannot carry"),
        (vec![], &both, "[strategy] and [command]"),
        (vec![], &unknown_field, "lookback"),
    ];
    for (args, spec, expected) in cases {
        let run = output_of(slurm_sweeprun(dir.path()).arg("run").arg(spec).args(["--backend", "slurm"]).args(&args));
        let stderr = stderr_of(&run);
        assert_eq!(run.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: one line: {stderr}");
        assert!(stderr.starts_with("sweeprun: error: ") && stderr.contains(expected), "{args:?}: {stderr}");
    }
    // A machine without SLURM's commands.
    let run = output_of(
        slurm_sweeprun(dir.path()).env("PATH", "/nonexistent").arg("run").arg(&spec).args(["--backend", "slurm"]),
    );
    let stderr = stderr_of(&run);
    assert_eq!(run.status.code(), Some(2), "{stderr}");
    assert_eq!(
        stderr,
        "sweeprun: error: --backend slurm: sbatch, scontrol, scancel, sinfo not on PATH; run this on a SLURM login \
         node (apt-get install slurm-client), or use --backend local or mpi\n"
    );
    // SLURM's options without --backend slurm.
    let run = output_of(sweeprun(dir.path()).arg("run").arg(&spec).args(["--nodes", "2"]));
    assert_eq!(run.status.code(), Some(2));
    assert_eq!(stderr_of(&run), "sweeprun: error: --nodes: only with --backend slurm\n");
    // status/collect/cancel of a table no job writes.
    for sub in ["status", "collect", "cancel"] {
        let run = output_of(slurm_sweeprun(dir.path()).args([sub, "nothing.csv"]));
        assert_eq!(run.status.code(), Some(2), "{sub}");
        assert!(stderr_of(&run).contains("no SLURM job writes this table"), "{sub}: {}", stderr_of(&run));
    }
    assert_eq!(listing(dir.path()), before, "nothing was written");
    assert_eq!(all_jobs(dir.path()), jobs, "nothing was submitted");
}

/// The `[command]` fixture of tests/command.rs: 24 combos of a Python script; combo 5
/// exits 1, 10 sleeps past the 4 s timeout, 16 prints no JSON, until `fixed` exists.
const COMMAND_SPEC: &str = sweeprun_tests::COMMAND_FIXTURE_SPEC;

fn command_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(workspace_root().join("tests/fixtures/command/backtest.py"), dir.path().join("backtest.py")).unwrap();
    std::fs::write(dir.path().join("sweep.toml"), COMMAND_SPEC).unwrap();
    dir
}

/// The combo ids the fixture logged (sorted), and the log emptied.
fn take_log(dir: &Path) -> Vec<u64> {
    let path = dir.join("log.txt");
    let mut ids: Vec<u64> =
        std::fs::read_to_string(&path).unwrap_or_default().lines().map(|l| l.trim().parse().unwrap()).collect();
    let _ = std::fs::remove_file(path);
    ids.sort();
    ids
}

#[test]
fn a_command_sweep_under_slurm_gives_the_local_table_and_retries_only_its_failures() {
    let _turn = take_turn();
    let local = command_dir();
    let run = output_of(sweeprun(local.path()).args(["run", "sweep.toml", "-np", "2", "--top", "0"]));
    assert!(run.status.success(), "{}", stderr_of(&run));
    let local_table = std::fs::read(local.path().join("out/results.csv")).unwrap();

    let dir = command_dir();
    let run = output_of(
        slurm_sweeprun(dir.path())
            .args(["run", "sweep.toml", "--backend", "slurm", "--nodes", "2", "--ntasks-per-node", "2"])
            .args(["--top", "0"]),
    );
    assert!(run.status.success(), "{}", stderr_of(&run));
    let table = std::fs::read(dir.path().join("out/results.csv")).unwrap();
    assert!(table == local_table, "the SLURM command table differs from the local one");
    assert_eq!(take_log(dir.path()), (0..24).collect::<Vec<_>>(), "each combo ran once");
    let text = String::from_utf8(table).unwrap();
    let status_of = |id: usize| text.lines().nth(id + 1).unwrap().split(',').nth(3).unwrap().to_string();
    assert_eq!([status_of(5), status_of(10), status_of(16), status_of(0)], ["failed", "timeout", "bad_output", "ok"]);

    std::fs::write(dir.path().join("fixed"), "").unwrap();
    let retry = output_of(
        slurm_sweeprun(dir.path())
            .args(["run", "sweep.toml", "--backend", "slurm", "--nodes", "2", "--ntasks-per-node", "2"])
            .args(["--top", "0", "--resume", "--retry-failed"]),
    );
    assert!(retry.status.success(), "{}", stderr_of(&retry));
    assert_eq!(take_log(dir.path()), [5, 10, 16], "only the non-ok combos ran again");
    let clean = command_dir();
    std::fs::write(clean.path().join("fixed"), "").unwrap();
    let run = output_of(sweeprun(clean.path()).args(["run", "sweep.toml", "-np", "2", "--top", "0"]));
    assert!(run.status.success(), "{}", stderr_of(&run));
    assert!(
        std::fs::read(dir.path().join("out/results.csv")).unwrap()
            == std::fs::read(clean.path().join("out/results.csv")).unwrap(),
        "after the retry: the table of a clean run"
    );
}

#[test]
fn a_command_sweep_as_a_job_array_gives_the_local_table_and_retries_only_its_failures() {
    let _turn = take_turn();
    // A table whose path has a blank, a `%` and a `#`: each means something to sbatch in a
    // `#SBATCH` line or a log file name, and must come through as it is. (The rows name
    // each failed combo's kept stderr under the table's path: every run here uses it.)
    let out = "out dir/50% #1.csv";
    let local = command_dir();
    let run = output_of(sweeprun(local.path()).args(["run", "sweep.toml", "-np", "2", "--top", "0", "--out", out]));
    assert!(run.status.success(), "{}", stderr_of(&run));
    let local_table = std::fs::read(local.path().join(out)).unwrap();

    let dir = command_dir();
    let table = dir.path().join(out);
    let array = |extra: &[&str]| {
        output_of(
            slurm_sweeprun(dir.path())
                .args(["run", "sweep.toml", "--backend", "slurm", "--slurm-array=4", "--top", "0", "--out", out])
                .args(["--sbatch-arg=--comment=sweep #1 \"50%\""])
                .args(extra),
        )
    };
    let run = array(&[]);
    let stderr = stderr_of(&run);
    assert!(run.status.success(), "{stderr}");
    assert!(stderr.starts_with("sweeprun: submitted array job "), "{stderr}");
    assert!(stderr.contains("24 tasks (24 combos) as --array=0-23%4, then gather job "), "{stderr}");
    assert!(std::fs::read(&table).unwrap() == local_table, "the array's table differs");
    assert_eq!(take_log(dir.path()), (0..24).collect::<Vec<_>>(), "each combo ran once");
    let meta = sidecar(&table);
    assert_eq!(meta["backend"], "slurm-array");
    let script = std::fs::read_to_string(suffixed(&table, ".sbatch")).unwrap();
    assert!(script.lines().any(|l| l == "#SBATCH --array=0-23%4"), "{script}");
    // The logs are where the record says, under the table's own name.
    let job = job_of(&table);
    let log = std::fs::read_to_string(suffixed(&table, &format!(".slurm-{job}.err"))).unwrap();
    assert!(log.contains(&format!("sweeprun: wrote {}", table.display())), "{log}");
    let array_job = output_of(on_cluster("scontrol", dir.path()).args(["show", "job", &job]));
    let shown = String::from_utf8_lossy(&array_job.stdout).into_owned();
    assert!(shown.contains("Comment=sweep #1 \"50%\""), "the comment arrives whole: {shown}");

    std::fs::write(dir.path().join("fixed"), "").unwrap();
    let retry = array(&["--resume", "--retry-failed"]);
    let stderr = stderr_of(&retry);
    assert!(retry.status.success(), "{stderr}");
    assert!(stderr.contains("3 tasks (24 combos) as --array=5,10,16%4"), "{stderr}");
    assert_eq!(take_log(dir.path()), [5, 10, 16], "only the non-ok combos ran again");
    let clean = command_dir();
    std::fs::write(clean.path().join("fixed"), "").unwrap();
    let run = output_of(sweeprun(clean.path()).args(["run", "sweep.toml", "-np", "2", "--top", "0", "--out", out]));
    assert!(run.status.success(), "{}", stderr_of(&run));
    assert!(
        std::fs::read(&table).unwrap() == std::fs::read(clean.path().join(out)).unwrap(),
        "after the retry: the table of a clean run"
    );

    // Only a command sweep runs as an array.
    let spec = goog(dir.path());
    let sma = output_of(slurm_sweeprun(dir.path()).arg("run").arg(&spec).args(["--backend", "slurm", "--slurm-array"]));
    assert_eq!(sma.status.code(), Some(2));
    assert!(
        stderr_of(&sma).starts_with("sweeprun: error: --slurm-array: only a [command] sweep"),
        "{}",
        stderr_of(&sma)
    );
}

#[test]
fn a_sweeprun_without_mpi_runs_local_ranks_on_one_node_of_the_job() {
    let _turn = take_turn();
    let dir = tempfile::tempdir().unwrap();
    let spec = goog(dir.path());
    let (local, _) = local_table(dir.path(), &spec, "local.csv", "0");
    let plain = |args: &[&str]| {
        let mut command = sweeprun(dir.path());
        command.envs(slurm_env()).arg("run").arg(&spec).args(["--backend", "slurm", "--top", "0"]).args(args);
        output_of(&mut command)
    };
    // A path sbatch would misread unquoted (a blank, `%`, `#`), as in the array test.
    let out = dir.path().join("plain dir/50% #2.csv");
    let run = plain(&["--ntasks-per-node", "3", "--out", out.to_str().unwrap()]);
    assert!(run.status.success(), "{}", stderr_of(&run));
    assert!(std::fs::read(&out).unwrap() == local, "the one-node table differs");
    let meta = sidecar(&out);
    assert_eq!((meta["backend"].as_str(), meta["ranks"].as_u64()), (Some("local"), Some(3)));
    let log = std::fs::read_to_string(suffixed(&out, &format!(".slurm-{}.err", job_of(&out)))).unwrap();
    assert!(log.starts_with(&format!("sweeprun: job {} (restart 0) on node", job_of(&out))), "{log}");
    let script = std::fs::read_to_string(suffixed(&out, ".sbatch")).unwrap();
    assert!(script.contains(" --backend local ") && script.contains(" -np 3 "), "{script}");
    let two = plain(&["--nodes", "2", "--out", "two.csv"]);
    assert_eq!(two.status.code(), Some(2));
    assert!(
        stderr_of(&two).starts_with("sweeprun: error: --nodes 2: this sweeprun was built without MPI"),
        "{}",
        stderr_of(&two)
    );
}

/// Where `program` is on `PATH` (the first directory that has it).
fn on_path(program: &str) -> PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").unwrap())
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
        .unwrap_or_else(|| panic!("{program} is not on PATH (apt-get install slurm-client)"))
}

#[test]
fn a_controller_out_of_reach_for_a_while_does_not_end_the_follower() {
    let _turn = take_turn();
    let dir = tempfile::tempdir().unwrap();
    let spec = goog(dir.path());
    let (local, _) = local_table(dir.path(), &spec, "local.csv", "0");
    // scontrol as it answers while slurmctld restarts, as long as `down` exists.
    let fake = dir.path().join("bin");
    std::fs::create_dir(&fake).unwrap();
    let down = dir.path().join("down");
    let script = format!(
        "#!/bin/sh\nif [ -e '{}' ]; then\n  echo 'slurm_load_jobs error: Socket timed out on send/recv operation' >&2\n  \
         exit 1\nfi\nexec '{}' \"$@\"\n",
        down.display(),
        on_path("scontrol").display()
    );
    std::fs::write(fake.join("scontrol"), script).unwrap();
    std::fs::set_permissions(fake.join("scontrol"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let submit = output_of(
        slurm_sweeprun(dir.path())
            .arg("run")
            .arg(&spec)
            .args(["--backend", "slurm", "--top", "0", "--no-wait"])
            .args(["--nodes", "2", "--out", "t.csv"]),
    );
    assert!(submit.status.success(), "{}", stderr_of(&submit));
    std::fs::write(&down, "").unwrap();
    let path = std::env::join_paths(
        [fake.clone()].into_iter().chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
    )
    .unwrap();
    let child = slurm_sweeprun(dir.path())
        .env("PATH", path)
        .env("SWEEPRUN_SLURM_POLL_MS", "100")
        .args(["collect", "t.csv"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let collect = KillOnDrop(Some(child));
    std::thread::sleep(Duration::from_secs(3));
    std::fs::remove_file(&down).unwrap();
    let run = collect.finish(Duration::from_secs(120));
    let stderr = stderr_of(&run);
    assert!(run.status.success(), "{stderr}");
    assert_eq!(
        stderr.matches("sweeprun: cannot reach SLURM (Socket timed out on send/recv operation); still trying").count(),
        1,
        "said once: {stderr}"
    );
    assert!(stderr.contains("sweeprun: SLURM answers again"), "{stderr}");
    assert!(std::fs::read(dir.path().join("t.csv")).unwrap() == local, "the table differs");
}
