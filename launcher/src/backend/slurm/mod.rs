//! `--backend slurm`: a sweep as a SLURM batch job.
//!
//! `sweeprun run SPEC --backend slurm` checks the sweep as a local run would, writes a
//! batch script (`<out>.sbatch`) that runs the sweep with `srun --mpi=pmix ...
//! --backend mpi` (or local ranks on one node when built without MPI), submits it with
//! `sbatch --parsable`, records the job in `<out>.slurm.json` and follows it:
//! its state from `scontrol`/`sacct`, its progress from the ledger's files on the shared
//! file system. The job itself is an ordinary MPI sweep: its rank 0 writes the journal and
//! the table, so cancellation, a lost node (the script asks for `--requeue`; the rerun
//! resumes) or a time limit leave a ledger that `--resume` finishes.
//!
//! `sweeprun status|collect|cancel OUT` find the job again through `<out>.slurm.json`.

mod array_job;
mod follow;
mod job;
mod script;

pub use array_job::gather_script_path;
pub use script::{script_path, stderr_path, stdout_path};

use crate::cli::{RunArgs, SlurmArgs};
use crate::error::{Failure, Result};
use crate::ledger;
use crate::report::counted;
use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// `<out>.slurm.json`: the job computing `<out>`.
pub fn record_path(out: &Path) -> PathBuf {
    let mut name = out.as_os_str().to_owned();
    name.push(".slurm.json");
    PathBuf::from(name)
}

/// What `<out>.slurm.json` holds: enough to follow, collect or cancel the job later.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobRecord {
    /// SLURM's job id (of an array sweep: its gather job).
    pub job_id: String,
    /// An array sweep's array job (`--slurm-array`).
    #[serde(default)]
    pub array_job: Option<String>,
    /// The results table.
    pub out: PathBuf,
    /// The batch script.
    pub script: PathBuf,
    /// The job's stdout (the summary) and stderr (progress, messages).
    pub stdout: PathBuf,
    /// See `stdout`.
    pub stderr: PathBuf,
    /// Combos in the sweep.
    pub combos: u64,
    /// `csv` or `jsonl`.
    pub format: String,
    /// Whether it is a `[command]` sweep (its journal holds JSON records).
    pub command_sweep: bool,
    /// Ranks (`--nodes` x `--ntasks-per-node`).
    pub ranks: u64,
    /// When it was submitted (RFC 3339).
    pub submitted_at: String,
    /// The command that submits the sweep again to finish it.
    pub resume_command: String,
}

impl JobRecord {
    /// Writes `<out>.slurm.json` (atomically).
    fn save(&self) -> Result<()> {
        let json = serde_json::to_string_pretty(self).expect("a job record serialises") + "\n";
        ledger::write_atomically(&record_path(&self.out), json.as_bytes())
    }

    /// The jobs of the sweep: the array (if any), then the job followed.
    fn jobs(&self) -> Vec<&str> {
        self.array_job.iter().map(String::as_str).chain([self.job_id.as_str()]).collect()
    }

    /// Reads the record of the sweep writing `out`; a usage error when there is none.
    pub fn load(out: &Path) -> Result<JobRecord> {
        let path = record_path(out);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Failure::usage(format!(
                    "{}: no SLURM job writes this table (no {}); submit one with `sweeprun run SPEC --backend slurm`",
                    out.display(),
                    path.display()
                ))
            } else {
                Failure::usage(format!("{}: {e}", path.display()))
            }
        })?;
        serde_json::from_str(&text)
            .map_err(|e| Failure::usage(format!("{}: not a sweeprun job record: {e}", path.display())))
    }
}

/// Runs `sweeprun run ... --backend slurm`.
pub fn run(args: &RunArgs) -> Result<String> {
    let slurm = &args.slurm;
    if args.np.is_some() {
        return Err(Failure::usage(
            "-np: with --backend slurm the ranks are --nodes x --ntasks-per-node (e.g. --nodes 4 --ntasks-per-node 4)",
        ));
    }
    if args.hostfile.is_some() || args.host.is_some() {
        return Err(Failure::usage(
            "--host/--hostfile: with --backend slurm, SLURM chooses the nodes (--nodes, --partition)",
        ));
    }
    for (flag, value) in [("--nodes", slurm.nodes), ("--ntasks-per-node", slurm.ntasks_per_node)] {
        if value == Some(0) {
            return Err(Failure::usage(format!("{flag}: expected at least 1, got 0")));
        }
    }
    check_sbatch_args(&slurm.sbatch_args)?;
    if let Some(plugin) = &slurm.slurm_mpi {
        if plugin.is_empty() || !plugin.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(Failure::usage(format!(
                "--slurm-mpi: expected one of `srun --mpi=list`'s plugin names (pmix, pmi2, ...), got `{plugin}`"
            )));
        }
    }
    job::check_commands()?;
    let exe = current_exe()?;
    let workdir = current_dir()?;
    script::check_path("sweeprun's executable", &exe)?;
    script::check_path("the current directory", &workdir)?;
    if slurm.slurm_array.is_some() {
        let out = crate::run::check(args)?;
        script::check_path("--out", &out)?;
        refuse_if_still_running(&out)?;
        let record = array_job::submit(args, &exe, &workdir)?;
        return follow_or_return(slurm, record);
    }
    let checked = crate::run::check_sweep(args)?;
    let out = checked.out.clone();
    script::check_path("--out", &out)?;
    // A job still writing the table is the first thing to say (its journal is expected).
    refuse_if_still_running(&out)?;
    let journal = ledger::journal_path(&out);
    if journal.exists() && !args.resume {
        return Err(Failure::usage(format!(
            "{} holds the results of an interrupted sweep; add --resume to finish it, or delete it to start over",
            journal.display()
        )));
    }
    let (nodes, ntasks_per_node) = shape(slurm)?;
    let launch = if cfg!(feature = "mpi") {
        script::Launch::Mpi { plugin: slurm.slurm_mpi.clone().unwrap_or_else(|| "pmix".to_string()) }
    } else if nodes == 1 {
        script::Launch::Local { ranks: ntasks_per_node }
    } else {
        return Err(Failure::usage(format!(
            "--nodes {nodes}: this sweeprun was built without MPI, so a job runs on one node; \
             rebuild it with `cargo build --release --features mpi` or use --nodes 1"
        )));
    };
    let backend = match launch {
        script::Launch::Mpi { .. } => crate::backend::Backend::Mpi,
        script::Launch::Local { .. } => crate::backend::Backend::Local,
    };
    let mut run_args = crate::backend::mpirun::forwarded_run_args_for(args, backend)?;
    run_args.retain(|a| a != "--resume");
    let script = script::Script {
        job_name: script::job_name(&out, ""),
        nodes,
        ntasks_per_node,
        partition: slurm.partition.clone(),
        time: slurm.time.clone(),
        account: slurm.account.clone(),
        extra: slurm.sbatch_args.clone(),
        workdir: workdir.clone(),
        out: out.clone(),
        exe,
        run_args,
        resume: args.resume,
        launch,
    };
    let text = script.text();
    // Submitted from stdin: the file is written only once SLURM took the job, so a refused
    // job leaves nothing behind. `sbatch <out>.sbatch` submits the same job.
    // The job's logs go next to the table: its directory must exist before SLURM opens them.
    let created = create_parents(&out)?;
    let job_id = job::submit(&text, &[]).inspect_err(|_| {
        if let Some(dir) = &created {
            let _ = std::fs::remove_dir_all(dir);
        }
    })?;
    let ranks = nodes * ntasks_per_node;
    say!(
        "sweeprun: submitted job {job_id}: {} on {} x {} (script {})",
        counted(checked.combos, "combo"),
        counted(nodes, "node"),
        counted(ntasks_per_node, "rank"),
        script::script_path(&out).display()
    );
    let record = JobRecord {
        job_id: job_id.clone(),
        array_job: None,
        out: out.clone(),
        script: script::script_path(&out),
        stdout: script::stdout_path(&out, &job_id),
        stderr: script::stderr_path(&out, &job_id),
        combos: checked.combos,
        format: checked.format.name().to_string(),
        command_sweep: checked.is_command,
        ranks,
        submitted_at: ledger::rfc3339(std::time::SystemTime::now()),
        resume_command: resume_command(&workdir),
    };
    let written = ledger::write_atomically(&record.script, text.as_bytes()).and_then(|()| record.save());
    if let Err(e) = written {
        // Without its record the job cannot be found again by this tool: say its id.
        return Err(Failure::runtime(format!(
            "job {job_id} was submitted, but {e}; follow it with squeue -j {job_id}"
        )));
    }
    follow_or_return(slurm, record)
}

/// After submitting: return the job id (`--no-wait`) or follow the job to its end.
fn follow_or_return(slurm: &SlurmArgs, record: JobRecord) -> Result<String> {
    if slurm.no_wait {
        say!(
            "sweeprun: not waiting; `sweeprun status {out}` shows its state, `sweeprun collect {out}` waits for the table",
            out = record.out.display()
        );
        return Ok(format!("{}\n", record.job_id));
    }
    collect_record(&record)
}

/// Creates the table's directory if missing; returns the outermost directory it created
/// (removed again if SLURM refuses the job: bad input writes nothing).
pub(super) fn create_parents(out: &Path) -> Result<Option<PathBuf>> {
    let Some(parent) = out.parent() else { return Ok(None) };
    let outermost = parent.ancestors().take_while(|dir| !dir.exists()).last().map(Path::to_path_buf);
    std::fs::create_dir_all(parent)
        .map_err(|e| Failure::runtime(format!("cannot create {}: {e}", parent.display())))?;
    Ok(outermost)
}

fn current_exe() -> Result<PathBuf> {
    std::env::current_exe().map_err(|e| Failure::runtime(format!("cannot find my own executable: {e}")))
}

fn current_dir() -> Result<PathBuf> {
    std::env::current_dir().map_err(|e| Failure::runtime(format!("cannot read the current directory: {e}")))
}

/// sbatch options the script sets itself and the follower relies on, with what to use
/// instead.
const OWN_SBATCH_OPTIONS: [(&str, &str); 13] = [
    ("--nodes", "use --nodes"),
    ("--ntasks", "use --ntasks-per-node"),
    ("--ntasks-per-node", "use --ntasks-per-node"),
    ("--partition", "use --partition"),
    ("--time", "use --time"),
    ("--account", "use --account"),
    ("--array", "use --slurm-array"),
    ("--output", "the job's stdout goes to <out>.slurm-<job>.out, where the follower reads it"),
    ("--error", "the job's stderr goes to <out>.slurm-<job>.err, where the follower reads it"),
    ("--open-mode", "a requeued job appends to its logs"),
    ("--chdir", "the job runs where sweeprun was started; cd there first"),
    ("--wrap", "the script runs the sweep"),
    ("--parsable", "sweeprun reads the job id itself"),
];

/// Checks `--sbatch-arg`s: each one option in its `--opt` or `--opt=value` form (written as
/// one `#SBATCH` line), none that sweeprun's script sets itself.
fn check_sbatch_args(sbatch_args: &[String]) -> Result<()> {
    for arg in sbatch_args {
        let name = arg.split_once('=').map_or(arg.as_str(), |(name, _)| name);
        if !arg.starts_with("--") || name.len() < 3 || name.contains(char::is_whitespace) {
            return Err(Failure::usage(format!(
                "--sbatch-arg: expected one sbatch option in the --opt or --opt=value form \
                 (e.g. --sbatch-arg=--exclusive, --sbatch-arg=--mem=2G), got `{arg}`"
            )));
        }
        if arg.contains(['\n', '\r']) {
            return Err(Failure::usage(format!("--sbatch-arg: `{}` holds a line break", arg.escape_debug())));
        }
        if let Some((own, instead)) = OWN_SBATCH_OPTIONS.iter().find(|(own, _)| *own == name) {
            return Err(Failure::usage(format!("--sbatch-arg={arg}: sweeprun sets {own} itself ({instead})")));
        }
    }
    Ok(())
}

/// Refuses a partition the cluster does not have; returns the one jobs go to. A list
/// (`--partition a,b`: SLURM picks the first that can start the job) is checked name by
/// name and read as its largest node count and smallest node size.
fn check_partition(names: Option<&str>) -> Result<job::Partition> {
    let partitions = job::partitions()?;
    let Some(names) = names else {
        let default = partitions.iter().find(|p| p.default).ok_or_else(|| {
            Failure::usage("--backend slurm: the cluster has no default partition; name one with --partition")
        })?;
        return Ok(default.clone());
    };
    let mut chosen: Option<job::Partition> = None;
    for name in names.split(',') {
        let found = partitions.iter().find(|p| p.name == name).ok_or_else(|| {
            let known: Vec<&str> = partitions.iter().map(|p| p.name.as_str()).collect();
            Failure::usage(format!(
                "--partition {name}: no such partition (this cluster has: {})",
                if known.is_empty() { "none".to_string() } else { known.join(", ") }
            ))
        })?;
        chosen = Some(match chosen {
            None => found.clone(),
            Some(so_far) => job::Partition {
                name: format!("{},{}", so_far.name, found.name),
                default: false,
                nodes: so_far.nodes.max(found.nodes),
                cpus_per_node: so_far.cpus_per_node.min(found.cpus_per_node),
            },
        });
    }
    chosen.ok_or_else(|| Failure::usage("--partition: expected a partition name"))
}

/// The nodes and tasks per node: as asked, else one node and as many tasks as the
/// partition's nodes have CPUs. Checked against the partition (exists, has the nodes).
fn shape(slurm: &SlurmArgs) -> Result<(u64, u64)> {
    let partition = check_partition(slurm.partition.as_deref())?;
    let nodes = slurm.nodes.unwrap_or(1);
    if nodes > partition.nodes {
        return Err(Failure::usage(format!(
            "--nodes {nodes}: partition {} has only {}",
            partition.name,
            counted(partition.nodes, "node")
        )));
    }
    Ok((nodes, slurm.ntasks_per_node.unwrap_or(partition.cpus_per_node.max(1))))
}

/// Refuses to submit a second job for a table a job of ours is still computing.
fn refuse_if_still_running(out: &Path) -> Result<()> {
    let Ok(record) = JobRecord::load(out) else { return Ok(()) };
    for id in record.jobs() {
        if let Some(info) = job::query(id)?.filter(|info| !info.finished()) {
            return Err(Failure::usage(format!(
                "job {id} is still {} writing {out}; follow it with `sweeprun collect {out}` or stop it with \
                 `sweeprun cancel {out}`",
                info.state,
                out = out.display()
            )));
        }
    }
    Ok(())
}

/// This command line with `--resume` (and without `--no-wait`), from the directory it ran
/// in (its paths may be relative): what finishes the sweep.
pub(super) fn resume_command(workdir: &Path) -> String {
    let mut words: Vec<OsString> = std::env::args_os().skip(1).filter(|a| a != "--no-wait").collect();
    if !words.iter().any(|a| a == "--resume") {
        words.push("--resume".into());
    }
    format!(
        "cd {} && {}",
        crate::backend::mpirun::shell_line(&workdir.display().to_string(), &[]),
        crate::backend::mpirun::shell_line("sweeprun", &words)
    )
}

/// `sweeprun collect OUT`: follows the job to its end; the summary on success.
pub fn collect(out: &Path) -> Result<String> {
    let out = std::path::absolute(out).map_err(|e| Failure::usage(format!("{}: {e}", out.display())))?;
    collect_record(&JobRecord::load(&out)?)
}

fn collect_record(record: &JobRecord) -> Result<String> {
    let ended = follow::follow(record)?;
    let kept = || {
        let kept_in = if record.array_job.is_some() {
            ledger::combo_records_dir(&record.out).display().to_string() + "/"
        } else {
            ledger::journal_path(&record.out).display().to_string() + "*"
        };
        if ledger::journal_path(&record.out).exists() || ledger::combo_records_dir(&record.out).exists() {
            format!("; results so far are kept in {kept_in} (finish them with `{}`)", record.resume_command)
        } else {
            String::new()
        }
    };
    match ended {
        follow::Ended::Completed if table_shows_up(record) => {
            say!(
                "sweeprun: job {} finished; wrote {} ({})",
                record.job_id,
                record.out.display(),
                counted(record.combos, "row")
            );
            // The job's stdout is rank 0's summary.
            Ok(std::fs::read_to_string(&record.stdout).unwrap_or_default())
        }
        follow::Ended::Completed => Err(Failure::runtime(format!(
            "job {} COMPLETED but {} has no finished table (see {}){}",
            record.job_id,
            record.out.display(),
            record.stderr.display(),
            kept()
        ))),
        follow::Ended::Failed(info) => {
            let sweeprun_said = follow::last_sweeprun_failure(&record.stderr);
            if sweeprun_said.is_none() && info.state == "FAILED" {
                // Not sweeprun's own error (srun, MPI start-up): its cause is usually in the
                // job's last lines. Shown before the error, which stays the last line.
                if let Some(tail) = follow::stderr_tail(&record.stderr, 12) {
                    say!("sweeprun: job {} failed; its stderr ends with:\n{tail}", record.job_id);
                }
            }
            // Rank 0's own note on the results kept names its command line, not the one to
            // run here: replaced by the follower's.
            let sweeprun_said =
                sweeprun_said.map(|m| m.split("; results so far are kept").next().unwrap_or_default().to_string());
            let why = sweeprun_said
                .map(|m| format!(": {m}"))
                .unwrap_or_else(|| format!(" (see {})", record.stderr.display()));
            let reason = if info.reason.is_empty() || info.reason == "None" {
                String::new()
            } else {
                format!(" ({})", info.reason)
            };
            // A rank 0 that refused its input exits 2, as it would here.
            if info.state == "FAILED" && info.exit_status() == Some(2) {
                return Err(Failure::usage(format!("job {} FAILED{why}", record.job_id)));
            }
            Err(Failure::runtime(format!("job {} ended {}{reason}{why}{}", record.job_id, info.state, kept())))
        }
        follow::Ended::Unknown if table_is_done(record) => {
            Ok(std::fs::read_to_string(&record.stdout).unwrap_or_default())
        }
        follow::Ended::Unknown => Err(Failure::runtime(format!(
            "SLURM no longer knows job {} and {} is not finished (see {}){}",
            record.job_id,
            record.out.display(),
            record.stderr.display(),
            kept()
        ))),
    }
}

/// How long a COMPLETED job's table may take to show up here: a shared file system's
/// attribute cache (NFS `actimeo`, 3-60 s by default) may hide the job's last renames.
fn table_wait() -> std::time::Duration {
    let seconds = std::env::var("SWEEPRUN_SLURM_TABLE_WAIT_S").ok().and_then(|v| v.parse().ok()).unwrap_or(60);
    std::time::Duration::from_secs(seconds)
}

/// Whether the finished table is (or within [`table_wait`] becomes) visible here.
fn table_shows_up(record: &JobRecord) -> bool {
    let start = std::time::Instant::now();
    let mut said = false;
    loop {
        if table_is_done(record) {
            return true;
        }
        if start.elapsed() >= table_wait() || crate::signals::interrupted() {
            return false;
        }
        if !said {
            say!(
                "sweeprun: job {} COMPLETED; waiting for {} to show up on this file system",
                record.job_id,
                record.out.display()
            );
            said = true;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

/// Whether the table is finished: there, with its sidecar vouching for it, no journal.
pub(super) fn table_is_done(record: &JobRecord) -> bool {
    record.out.is_file() && ledger::sidecar_path(&record.out).is_file() && !ledger::journal_path(&record.out).exists()
}

/// `sweeprun status OUT`: the job's state and progress, on stdout.
pub fn status(out: &Path) -> Result<String> {
    let out = std::path::absolute(out).map_err(|e| Failure::usage(format!("{}: {e}", out.display())))?;
    let record = JobRecord::load(&out)?;
    let info = job::query(&record.job_id)?;
    let done = follow::RowsOnDisk::new(&record).count();
    let array = match &record.array_job {
        Some(id) => match job::query(id)? {
            Some(info) => format!("array job {id}: {}\n", info.state),
            None => format!("array job {id}: no longer known to SLURM\n"),
        },
        None => String::new(),
    };
    let state = match &info {
        Some(info) => {
            let mut state = info.state.clone();
            if !info.nodes.is_empty() {
                state += &format!(" on {}", info.nodes);
            }
            if !info.reason.is_empty() && info.reason != "None" {
                state += &format!(" ({})", info.reason);
            }
            if info.restarts > 0 {
                state += &format!(", requeued {}", counted(info.restarts, "time"));
            }
            state
        }
        None => "no longer known to SLURM".to_string(),
    };
    let progress = if table_is_done(&record) {
        format!("table: {} is complete ({})", out.display(), counted(record.combos, "row"))
    } else {
        format!(
            "progress: {done}/{} on disk ({:.0}%)",
            counted(record.combos, "combo"),
            100.0 * done as f64 / record.combos.max(1) as f64
        )
    };
    Ok(format!(
        "{array}job {}: {state}\n{progress}\nscript: {}\nlog: {}\nsubmitted: {}\n",
        record.job_id,
        record.script.display(),
        record.stderr.display(),
        record.submitted_at
    ))
}

/// `sweeprun cancel OUT`: `scancel` of the job; the journal stays for `--resume`.
pub fn cancel(out: &Path) -> Result<String> {
    let out = std::path::absolute(out).map_err(|e| Failure::usage(format!("{}: {e}", out.display())))?;
    let record = JobRecord::load(&out)?;
    let mut cancelled = Vec::new();
    for id in record.jobs() {
        match job::query(id)? {
            Some(info) if !info.finished() => {
                job::cancel(id)?;
                cancelled.push(id);
            }
            Some(info) => say!("sweeprun: job {id} already ended ({}); nothing to cancel", info.state),
            None => say!("sweeprun: SLURM no longer knows job {id}; nothing to cancel"),
        }
    }
    if !cancelled.is_empty() {
        say!(
            "sweeprun: cancelled job {}; finish the sweep later with `{}`",
            cancelled.join(" and "),
            record.resume_command
        );
    }
    Ok(String::new())
}
