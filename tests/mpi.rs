//! `--backend mpi` end to end, on real MPI: OpenMPI's mpirun and MPICH's mpiexec on this
//! host, and 16 ranks over the 4 emulated nodes of `scripts/cluster/` (network and UTS
//! namespaces, orted started through the `rsh` agent). Every table must equal the local
//! backend's byte for byte; faults must leave a journal that `--resume` completes.
//!
//! Needs OpenMPI, MPICH and libclang (to build sweeprun with `--features mpi`) and, for the
//! cluster tests, `bash scripts/cluster/up.sh` (as root). `scripts/test-all.sh` installs
//! and starts all of it; run alone without them, these tests fail saying what is missing.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use sweeprun_tests::{agent_bin, goog_spec, output_of, sweeprun, workspace_root, write_spec};

/// The MPI implementations sweeprun is built against here.
#[derive(Clone, Copy, Debug)]
enum Mpi {
    OpenMpi,
    Mpich,
}

/// `sweeprun` built with `--features mpi` against `mpi`, in its own target directory (the
/// mpi-sys build does not notice a change of MPI, and the default build must stay MPI-free).
fn mpi_bin(mpi: Mpi) -> PathBuf {
    static OPENMPI: OnceLock<PathBuf> = OnceLock::new();
    static MPICH: OnceLock<PathBuf> = OnceLock::new();
    let (cell, dir, mpicc) = match mpi {
        Mpi::OpenMpi => (&OPENMPI, "mpi-openmpi", "mpicc.openmpi"),
        Mpi::Mpich => (&MPICH, "mpi-mpich", "mpicc.mpich"),
    };
    cell.get_or_init(|| sweeprun_tests::mpi_build(dir, mpicc)).clone()
}

/// A command of the MPI build, run in `dir`, allowed to run mpirun as root.
fn mpi_sweeprun(mpi: Mpi, dir: &Path) -> Command {
    let mut command = Command::new(mpi_bin(mpi));
    command
        .current_dir(dir)
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env_remove("SWEEPRUN_DEBUG_CHUNK_DELAY_MS");
    command
}

/// The local backend's table and sidecar for `spec` (the reference every MPI run must equal).
fn local_table(dir: &Path, spec: &Path, out: &str) -> (Vec<u8>, serde_json::Value) {
    let run = output_of(sweeprun(dir).arg("run").arg(spec).args(["--top", "0", "--out", out]));
    assert!(run.status.success(), "local run: {}", String::from_utf8_lossy(&run.stderr));
    (std::fs::read(dir.join(out)).unwrap(), sidecar(&dir.join(out)))
}

fn sidecar(table: &Path) -> serde_json::Value {
    let mut path = table.as_os_str().to_owned();
    path.push(".meta.json");
    serde_json::from_str(&std::fs::read_to_string(PathBuf::from(path)).unwrap()).unwrap()
}

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts an MPI run succeeded and wrote the same table (bytes and sidecar digest) as local.
fn assert_same_table(run: &Output, dir: &Path, out: &str, local: &(Vec<u8>, serde_json::Value)) {
    assert!(run.status.success(), "MPI run failed: {}", stderr_of(run));
    let table = std::fs::read(dir.join(out)).unwrap();
    assert!(table == local.0, "{out}: the MPI table differs from the local one");
    let meta = sidecar(&dir.join(out));
    assert_eq!(meta["output"]["blake3"], local.1["output"]["blake3"]);
    assert_eq!(meta["backend"], "mpi");
    assert_eq!(meta["fingerprint"], local.1["fingerprint"], "the same sweep, so --resume works across backends");
    assert_eq!(meta["overfitting"], local.1["overfitting"], "{out}: the same overfitting statistics");
}

/// `sweeprun run SPEC --backend mpi --top 0 ARGS...` of the `mpi` build, in `dir`.
fn mpi_run(mpi: Mpi, dir: &Path, spec: &Path, args: &[&str]) -> Output {
    output_of(mpi_sweeprun(mpi, dir).arg("run").arg(spec).args(["--backend", "mpi", "--top", "0"]).args(args))
}

fn goog(dir: &Path) -> PathBuf {
    write_spec(dir, "goog.toml", &goog_spec("unused.csv", ""))
}

#[test]
fn openmpi_on_one_host_writes_the_local_table_for_sma_and_momentum() {
    let dir = tempfile::tempdir().unwrap();
    let spec = goog(dir.path());
    let local = local_table(dir.path(), &spec, "local.csv");
    let run = mpi_run(Mpi::OpenMpi, dir.path(), &spec, &["-np", "4", "--oversubscribe", "--out", "mpi.csv"]);
    assert_same_table(&run, dir.path(), "mpi.csv", &local);
    let stderr = stderr_of(&run);
    assert!(stderr.starts_with("sweeprun: running mpirun"), "the command is printed first: {stderr}");
    assert!(stderr.contains("on 4 ranks"), "{stderr}");

    let momentum = workspace_root().join("examples/momentum_etf5.toml");
    let local = local_table(dir.path(), &momentum, "m-local.jsonl");
    let args = ["-np", "3", "--oversubscribe", "--chunk-size", "7", "--out", "m-mpi.jsonl"];
    let run = mpi_run(Mpi::OpenMpi, dir.path(), &momentum, &args);
    assert_same_table(&run, dir.path(), "m-mpi.jsonl", &local);
}

/// A `[command]` sweep (tests/command.rs's Python fixture, with its failed, timed-out and
/// bad_output combos) under OpenMPI: the same table as the local backend. The two tables
/// sit in different directories under the same name, since a row names its kept stderr
/// file relative to the table (`results.csv.runs/5/stderr`).
#[test]
fn openmpi_runs_a_command_sweep_to_the_local_table() {
    let dir = tempfile::tempdir().unwrap();
    let script = workspace_root().join("tests/fixtures/command/backtest.py");
    std::fs::copy(script, dir.path().join("backtest.py")).unwrap();
    let spec = write_spec(
        dir.path(),
        "command.toml",
        r#"[command]
argv = ["python3", "{spec_dir}/backtest.py", "--a", "{a}", "--b", "{b}", "--dir", "{spec_dir}"]
timeout = "4s"
[grid]
a = { from = 1, to = 6 }
b = [10, 20, 30, 40]
"#,
    );
    let local = local_table(dir.path(), &spec, "local/results.csv");
    let table = String::from_utf8(local.0.clone()).unwrap();
    for status in [",failed,1,", ",timeout,,", ",bad_output,0,"] {
        assert!(table.contains(status), "the local table has a {status} row:\n{table}");
    }
    let run = mpi_run(Mpi::OpenMpi, dir.path(), &spec, &["-np", "3", "--oversubscribe", "--out", "mpi/results.csv"]);
    assert_same_table(&run, dir.path(), "mpi/results.csv", &local);
}

#[test]
fn mpich_on_one_host_writes_the_local_table() {
    let dir = tempfile::tempdir().unwrap();
    let spec = goog(dir.path());
    let local = local_table(dir.path(), &spec, "local.csv");
    let run = mpi_run(Mpi::Mpich, dir.path(), &spec, &["-np", "4", "--oversubscribe", "--out", "mpi.csv"]);
    assert_same_table(&run, dir.path(), "mpi.csv", &local);
    assert!(stderr_of(&run).starts_with("sweeprun: running mpiexec.mpich -n 4"), "{}", stderr_of(&run));
}

#[test]
fn a_binary_started_by_another_mpis_launcher_is_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let spec = goog(dir.path());
    let run = output_of(
        Command::new("mpiexec.mpich")
            .current_dir(dir.path())
            .args(["-n", "2"])
            .arg(mpi_bin(Mpi::OpenMpi))
            .arg("run")
            .arg(&spec)
            .args(["--backend", "mpi", "--out", "r.csv"]),
    );
    assert_eq!(run.status.code(), Some(2), "{}", stderr_of(&run));
    let stderr = stderr_of(&run);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("built with Open MPI but was started by another MPI's launcher"), "{stderr}");
    assert!(!dir.path().join("r.csv").exists() && !dir.path().join("r.csv.partial").exists());
}

#[test]
fn bad_mpi_input_is_one_line_exit_2_and_nothing_written() {
    let dir = tempfile::tempdir().unwrap();
    let spec = goog(dir.path());
    std::fs::write(dir.path().join("empty"), "# no hosts\n").unwrap();
    std::fs::write(dir.path().join("bad"), "node1 slots=4\nnode2 slots=many\n").unwrap();
    std::fs::write(dir.path().join("four"), "node1 slots=2\nnode2 slots=2\n").unwrap();
    let before: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    for (args, expected) in [
        (&["--hostfile", "missing"][..], "--hostfile missing: No such file"),
        (&["--hostfile", "empty"], "--hostfile empty: names no host"),
        (&["--hostfile", "bad"], "--hostfile bad line 2: slots must be a whole number"),
        (
            &["--hostfile", "four", "-np", "5"],
            "-np 5: the hosts in four have only 4 slots; lower -np or add --oversubscribe",
        ),
        (&["--host", "a:2,b:2", "-np", "9"], "-np 9: --host a:2,b:2 has only 4 slots"),
        (&["--host", "a:x"], "--host: `a:x`: slots must be a whole number"),
        (&["--hostfile", "four", "--host", "a"], "--host and --hostfile: give one of them"),
        (&["--thermal", "sim:pi4-bare"], "--thermal sim:MODEL: the simulated board runs beside local ranks only"),
    ] {
        let run = output_of(
            mpi_sweeprun(Mpi::OpenMpi, dir.path())
                .arg("run")
                .arg(&spec)
                .args(["--backend", "mpi", "--out", "r.csv"])
                .args(args),
        );
        let stderr = stderr_of(&run);
        assert_eq!(run.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    // A bad spec is refused by the front end, before mpirun starts anything.
    std::fs::write(dir.path().join("broken.toml"), "[strategy]\nname = \"sma_cross\"\n").unwrap();
    let run =
        output_of(mpi_sweeprun(Mpi::OpenMpi, dir.path()).args(["run", "broken.toml", "--backend", "mpi", "-np", "2"]));
    assert_eq!(run.status.code(), Some(2), "{}", stderr_of(&run));
    assert_eq!(stderr_of(&run).lines().count(), 1, "{}", stderr_of(&run));
    assert!(!stderr_of(&run).contains("running mpirun"));
    let mut after: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    after.retain(|name| name != "broken.toml");
    assert_eq!(after.len(), before.len(), "nothing written: {after:?}");
}

/// Pids of the MPI ranks of the sweep writing `out` (their command line names it), with the
/// rank mpirun gave each (from its environment).
fn ranks_writing(out: &str) -> Vec<(i32, usize)> {
    let mut ranks = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let words: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
        let is_rank = words.contains(&&b"--backend"[..]) && words.contains(&out.as_bytes());
        let front_end = words.iter().any(|w| *w == b"--np" || *w == b"-np");
        if !is_rank || front_end {
            continue;
        }
        let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
        let rank = environ
            .split(|&b| b == 0)
            .find_map(|v| v.strip_prefix(b"OMPI_COMM_WORLD_RANK="))
            .and_then(|v| std::str::from_utf8(v).ok()?.parse().ok());
        if let Some(rank) = rank {
            ranks.push((pid, rank));
        }
    }
    ranks
}

/// Starts a slowed-down 4-rank OpenMPI sweep of the GOOG grid writing `out` in `dir`.
fn start_slow_sweep(dir: &Path, spec: &Path, out: &str) -> std::process::Child {
    mpi_sweeprun(Mpi::OpenMpi, dir)
        .arg("run")
        .arg(spec)
        .args(["--backend", "mpi", "-np", "4", "--oversubscribe", "--top", "0", "--chunk-size", "20", "--out"])
        .arg(dir.join(out))
        .env("SWEEPRUN_DEBUG_CHUNK_DELAY_MS", "40")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until the sweep's journal holds some rows and its 4 ranks are up; returns them.
fn wait_for_progress(dir: &Path, out: &str) -> Vec<(i32, usize)> {
    let journal = dir.join(format!("{out}.partial.table"));
    let started = Instant::now();
    loop {
        let ranks = ranks_writing(&dir.join(out).display().to_string());
        let rows = std::fs::read_to_string(&journal).map(|t| t.lines().count()).unwrap_or(0);
        if ranks.len() == 4 && rows > 200 {
            return ranks;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "the sweep made no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn finish(child: std::process::Child) -> Output {
    child.wait_with_output().unwrap()
}

#[test]
fn a_killed_rank_or_rank_0_leaves_a_journal_that_resume_completes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let spec = goog(dir.path());
    let local = local_table(dir.path(), &spec, "local.csv");
    for victim in [2usize, 0] {
        let out = format!("killed{victim}.csv");
        let child = start_slow_sweep(dir.path(), &spec, &out);
        let ranks = wait_for_progress(dir.path(), &out);
        let (pid, _) = ranks.iter().find(|(_, rank)| *rank == victim).copied().expect("the victim rank");
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).unwrap();
        let run = finish(child);
        let stderr = stderr_of(&run);
        assert_eq!(run.status.code(), Some(1), "{stderr}");
        let last = stderr.lines().last().unwrap_or_default();
        assert!(last.contains(&format!("MPI rank {victim} ")) && last.contains("signal 9"), "{stderr}");
        assert!(last.contains("--resume"), "says how to finish: {stderr}");
        assert!(!stderr.contains("-----"), "mpirun's banners are summed up, not shown: {stderr}");
        assert!(!dir.path().join(&out).exists(), "no table from a broken sweep");
        // Finish it: after rank 2 over MPI again, after rank 0 with the local backend.
        let resumed = if victim == 0 {
            output_of(sweeprun(dir.path()).arg("run").arg(&spec).args(["--resume", "--top", "0", "--out", &out]))
        } else {
            mpi_run(Mpi::OpenMpi, dir.path(), &spec, &["-np", "2", "--resume", "--out", &out])
        };
        assert!(resumed.status.success(), "{}", stderr_of(&resumed));
        assert!(stderr_of(&resumed).contains("from the journal"), "{}", stderr_of(&resumed));
        assert!(std::fs::read(dir.path().join(&out)).unwrap() == local.0, "resumed table equals an uninterrupted run");
        let statistics = sidecar(&dir.path().join(&out))["overfitting"].clone();
        assert!(statistics["pbo"].is_f64() && statistics == local.1["overfitting"], "{statistics}");
    }
}

#[test]
fn sigint_to_mpirun_exits_130_and_the_sweep_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let spec = goog(dir.path());
    let local = local_table(dir.path(), &spec, "local.csv");
    let child = start_slow_sweep(dir.path(), &spec, "int.csv");
    wait_for_progress(dir.path(), "int.csv");
    // mpirun is the front end's child; signal it alone, as a job controller would.
    let mpirun = std::fs::read_to_string(format!("/proc/{}/task/{}/children", child.id(), child.id())).unwrap();
    let mpirun: i32 = mpirun.split_whitespace().next().expect("mpirun is running").parse().unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(mpirun), nix::sys::signal::Signal::SIGINT).unwrap();
    let run = finish(child);
    let stderr = stderr_of(&run);
    assert_eq!(run.status.code(), Some(130), "{stderr}");
    assert!(run.status.signal().is_none());
    let last = stderr.lines().last().unwrap_or_default();
    assert!(last.starts_with("sweeprun: interrupted") && last.contains("--resume"), "{stderr}");
    let resumed = mpi_run(Mpi::OpenMpi, dir.path(), &spec, &["-np", "2", "--resume", "--out", "int.csv"]);
    assert!(resumed.status.success(), "{}", stderr_of(&resumed));
    assert!(std::fs::read(dir.path().join("int.csv")).unwrap() == local.0);
}

/// The emulated cluster's settings (`scripts/cluster/up.sh` writes them), as environment
/// variables for mpirun and mpiexec.
fn cluster_env() -> Vec<(String, String)> {
    sweeprun_tests::exported_vars(
        Path::new("/run/sweeprun-cluster/env.sh"),
        "the emulated cluster is not up: run `bash scripts/cluster/up.sh` as root",
    )
}

fn cluster_value(env: &[(String, String)], key: &str) -> String {
    env.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()).unwrap_or_else(|| panic!("{key} not in the cluster env"))
}

#[test]
fn sixteen_ranks_on_four_emulated_nodes_write_the_local_table_for_sma_and_momentum() {
    let env = cluster_env();
    let dir = tempfile::tempdir().unwrap();
    let spec = goog(dir.path());
    let local = local_table(dir.path(), &spec, "local.csv");
    let hostfile = cluster_value(&env, "SWR_CLUSTER_HOSTFILE");
    for (mpi, out) in [(Mpi::OpenMpi, "openmpi.csv"), (Mpi::Mpich, "mpich.csv")] {
        let run = output_of(
            mpi_sweeprun(mpi, dir.path())
                .envs(env.iter().map(|(k, v)| (k, v)))
                .arg("run")
                .arg(&spec)
                .args(["--backend", "mpi", "-np", "16", "--hostfile", &hostfile, "--report-bindings"])
                .args(["--top", "0", "--out", out]),
        );
        assert_same_table(&run, dir.path(), out, &local);
        let stderr = stderr_of(&run);
        assert!(stderr.contains("on 16 ranks"), "{mpi:?}: {stderr}");
        // One binding line per rank, from the node mpirun placed it on: ranks 4k..4k+3 on node k+1.
        let mut seen = [false; 16];
        for line in stderr.lines().filter(|l| l.contains("] MCW rank ")) {
            let host = &line[1..line.find(':').unwrap()];
            let rank: usize = line.split("MCW rank ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
            assert_eq!(host, format!("node{}", rank / 4 + 1), "{mpi:?}: {line}");
            assert!(!std::mem::replace(&mut seen[rank], true), "rank {rank} reported twice");
            if matches!(mpi, Mpi::OpenMpi) {
                assert!(line.contains(" bound to socket 0[core "), "OpenMPI binds each rank to a core: {line}");
            }
        }
        assert!(seen.iter().all(|&s| s), "{mpi:?}: every rank reports its binding: {stderr}");
    }
    // A momentum grid too (wide data, the qstrader statistics), in JSON lines.
    let momentum = workspace_root().join("examples/momentum_etf5.toml");
    let local = local_table(dir.path(), &momentum, "m-local.jsonl");
    for (mpi, out) in [(Mpi::OpenMpi, "m-openmpi.jsonl"), (Mpi::Mpich, "m-mpich.jsonl")] {
        let run = output_of(
            mpi_sweeprun(mpi, dir.path())
                .envs(env.iter().map(|(k, v)| (k, v)))
                .arg("run")
                .arg(&momentum)
                .args(["--backend", "mpi", "-np", "16", "--hostfile", &hostfile, "--chunk-size", "5"])
                .args(["--top", "0", "--out", out]),
        );
        assert_same_table(&run, dir.path(), out, &local);
    }
}

#[test]
fn a_hostfile_naming_an_unreachable_node_is_one_clear_line_and_nothing_written() {
    let env = cluster_env();
    let dir = tempfile::tempdir().unwrap();
    let spec = goog(dir.path());
    std::fs::write(dir.path().join("hosts"), "node1 slots=4\nnode5 slots=4\n").unwrap();
    let run = output_of(
        mpi_sweeprun(Mpi::OpenMpi, dir.path()).envs(env.iter().map(|(k, v)| (k, v))).arg("run").arg(&spec).args([
            "--backend",
            "mpi",
            "-np",
            "8",
            "--hostfile",
            "hosts",
            "--out",
            "r.csv",
        ]),
    );
    let stderr = stderr_of(&run);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "the command, then one line: {stderr}");
    assert!(lines[1].starts_with("sweeprun: error: mpirun failed") && lines[1].contains("node5"), "{stderr}");
    assert!(!dir.path().join("r.csv").exists() && !dir.path().join("r.csv.partial").exists());
    assert!(!dir.path().join("r.csv.partial.json").exists());
}

/// Kills a child when dropped (a failed assertion must not leave agents or frozen ranks).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The emulated node a process runs in (the node whose UTS namespace it shares), if any.
fn node_of(pid: i32) -> Option<usize> {
    use std::os::unix::fs::MetadataExt;
    let link = std::fs::read_link(format!("/proc/{pid}/ns/uts")).ok()?;
    let inode: u64 = link.to_str()?.strip_prefix("uts:[")?.strip_suffix(']')?.parse().ok()?;
    (1..=4).find(|n| std::fs::metadata(format!("/run/sweeprun-cluster/uts/node{n}")).is_ok_and(|m| m.ino() == inode))
}

/// A process's state letter from /proc (`T`: stopped).
fn state_of(pid: i32) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rfind(')').and_then(|at| stat[at + 2..].chars().next()).unwrap_or('?')
}

#[test]
fn each_nodes_ranks_register_with_that_nodes_agent_and_run_again_when_it_is_killed() {
    let env = cluster_env();
    let dir = tempfile::tempdir().unwrap();
    let spec = goog(dir.path());
    let local = local_table(dir.path(), &spec, "local.csv");
    let hostfile = cluster_value(&env, "SWR_CLUSTER_HOSTFILE");
    // One agent per node, in that node's namespaces, on a fake board reading 90 C (it
    // freezes what registers); one socket path template names each node's own socket.
    let template = dir.path().join("agent-%h.sock");
    let mut agents = Vec::new();
    for n in 1..=4 {
        let zone = dir.path().join(format!("node{n}/sys/class/thermal/thermal_zone0"));
        std::fs::create_dir_all(&zone).unwrap();
        std::fs::write(zone.join("type"), "cpu-thermal\n").unwrap();
        std::fs::write(zone.join("temp"), "90000\n").unwrap();
        let agent = Command::new("nsenter")
            .arg(format!("--net=/run/netns/swr-node{n}"))
            .arg(format!("--uts=/run/sweeprun-cluster/uts/node{n}"))
            .arg("--")
            .arg(agent_bin())
            .args(["run", "--listen", "", "--sys-root"])
            .arg(dir.path().join(format!("node{n}/sys")))
            .arg("--socket")
            .arg(&template)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        agents.push(KillOnDrop(agent));
    }
    let started = Instant::now();
    while !(1..=4).all(|n| dir.path().join(format!("agent-node{n}.sock")).exists()) {
        assert!(started.elapsed() < Duration::from_secs(10), "the agents did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    // 8 ranks, 2 per node (round robin), slowed down so the sweep outlasts the test's steps.
    let out = dir.path().join("agents.csv").display().to_string();
    let sweep = mpi_sweeprun(Mpi::OpenMpi, dir.path())
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("SWEEPRUN_AGENT_SOCKET", &template)
        .env("SWEEPRUN_DEBUG_CHUNK_DELAY_MS", "20")
        .arg("run")
        .arg(&spec)
        .args(["--backend", "mpi", "-np", "8", "--hostfile", &hostfile, "--map-by", "node"])
        .args(["--chunk-size", "4", "--top", "0", "--out", &out])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut sweep = KillOnDrop(sweep);
    // Every rank but rank 0 (it schedules the sweep) is frozen by its own node's agent.
    let started = Instant::now();
    let ranks = loop {
        let ranks: Vec<(i32, usize, Option<usize>)> =
            ranks_writing(&out).into_iter().map(|(pid, rank)| (pid, rank, node_of(pid))).collect();
        let frozen = ranks.iter().filter(|&&(pid, rank, _)| rank != 0 && state_of(pid) == 'T').count();
        if ranks.len() == 8 && frozen == 7 {
            break ranks;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "the agents never froze the ranks: {ranks:?}");
        std::thread::sleep(Duration::from_millis(20));
    };
    for &(_, rank, node) in &ranks {
        assert_eq!(node, Some(rank % 4 + 1), "rank {rank} runs on its node: {ranks:?}");
    }
    // kill -9 of node 2's agent: node 2's ranks (1 and 5) run again within 1 s, no others.
    agents[1].0.kill().unwrap();
    let killed = Instant::now();
    loop {
        let states: Vec<(usize, char)> = ranks.iter().map(|&(pid, rank, _)| (rank, state_of(pid))).collect();
        let running_on_2 = states.iter().filter(|&&(rank, state)| rank % 4 == 1 && state != 'T').count();
        if running_on_2 == 2 {
            let others = states.iter().filter(|&&(rank, state)| rank % 4 != 1 && rank != 0 && state == 'T').count();
            assert_eq!(others, 5, "only node 2's ranks were let go: {states:?}");
            break;
        }
        assert!(killed.elapsed() < Duration::from_secs(1), "node 2's ranks stayed stopped: {states:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
    // The other agents too: every rank runs within 1 s, and the sweep completes exactly.
    for agent in [0, 2, 3] {
        agents[agent].0.kill().unwrap();
    }
    let killed = Instant::now();
    loop {
        let stopped: Vec<usize> =
            ranks.iter().filter(|&&(pid, _, _)| state_of(pid) == 'T').map(|&(_, rank, _)| rank).collect();
        if stopped.is_empty() {
            break;
        }
        assert!(killed.elapsed() < Duration::from_secs(1), "ranks {stopped:?} stayed stopped");
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut stderr = String::new();
    std::io::Read::read_to_string(sweep.0.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    let status = sweep.0.wait().unwrap();
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("rank 1 on node2: the node agent went away"), "{stderr}");
    assert!(std::fs::read(&out).unwrap() == local.0, "the table equals the local one");
}
