//! Talking to SLURM through its commands (`sbatch`, `scontrol`, `sacct`, `sinfo`,
//! `scancel`), as a user would: no libslurm binding, so any SLURM the user's shell can
//! reach works, and every call can be repeated by hand.

use crate::error::{Failure, Result};
use std::io::Write;
use std::process::{Command, Stdio};

/// The SLURM commands the backend runs, checked up front so a missing one is one line
/// (exit 2) before anything is written or submitted.
pub const NEEDED: [&str; 4] = ["sbatch", "scontrol", "scancel", "sinfo"];

/// Refuses to go on when a SLURM command is not on `PATH`.
pub fn check_commands() -> Result<()> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let missing: Vec<&str> = NEEDED
        .iter()
        .copied()
        .filter(|name| !std::env::split_paths(&path).any(|dir| dir.join(name).is_file()))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Failure::usage(format!(
            "--backend slurm: {} not on PATH; run this on a SLURM login node (apt-get install slurm-client), \
             or use --backend local or mpi",
            missing.join(", ")
        )))
    }
}

/// Runs a SLURM command; its stdout, or its stderr's first `error:` line as the failure.
fn slurm(program: &str, args: &[&str], stdin: Option<&str>) -> std::result::Result<String, String> {
    let mut command = Command::new(program);
    command.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    command.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    let mut child = command.spawn().map_err(|e| format!("cannot run {program}: {e}"))?;
    if let Some(text) = stdin {
        let mut input = child.stdin.take().expect("piped stdin");
        input.write_all(text.as_bytes()).map_err(|e| format!("cannot write to {program}: {e}"))?;
    }
    let output = child.wait_with_output().map_err(|e| format!("cannot run {program}: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(error_text(&String::from_utf8_lossy(&output.stderr)))
    }
}

/// SLURM's reason from a command's stderr: its `error:` lines, the most specific first
/// (sbatch says "invalid partition specified: x", then "Batch job submission failed: ...").
fn error_text(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| l.split_once("error: ").map_or(l, |(_, rest)| rest))
        .collect();
    match lines.first() {
        Some(first) => first.to_string(),
        None => "failed without a message".to_string(),
    }
}

/// Whether SLURM's message means the controller could not be asked (a runtime failure,
/// not the user's input).
fn unreachable(message: &str) -> bool {
    ["Unable to contact", "Socket timed out", "Connection refused", "Zero Bytes were transmitted"]
        .iter()
        .any(|s| message.contains(s))
}

/// Submits `script` (on sbatch's stdin; the script says everything in `#SBATCH` lines,
/// `extra` adds options such as a dependency) and returns the job id. A job SLURM refuses
/// is bad input (exit 2): nothing was submitted.
pub fn submit(script: &str, extra: &[&str]) -> Result<String> {
    let mut args = vec!["--parsable"];
    args.extend_from_slice(extra);
    match slurm("sbatch", &args, Some(script)) {
        // `--parsable`: "ID" or "ID;CLUSTER".
        Ok(out) => {
            let id = out.trim().split(';').next().unwrap_or("").to_string();
            if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
                return Err(Failure::runtime(format!("sbatch printed `{}`, expected a job id", out.trim())));
            }
            Ok(id)
        }
        Err(message) => Err(refused(message)),
    }
}

/// Asks sbatch whether it would take `script` (`--test-only`: nothing is submitted).
pub fn test_only(script: &str) -> Result<()> {
    slurm("sbatch", &["--test-only"], Some(script)).map(|_| ()).map_err(refused)
}

fn refused(message: String) -> Failure {
    if unreachable(&message) {
        Failure::runtime(format!("sbatch: {message}"))
    } else {
        Failure::usage(format!("--backend slurm: sbatch refused the job: {message}"))
    }
}

/// The cluster's `MaxArraySize` (array task ids must stay below it), if it says.
pub fn max_array_size() -> Result<Option<u64>> {
    let text = slurm("scontrol", &["show", "config"], None)
        .map_err(|e| Failure::runtime(format!("scontrol show config: {e}")))?;
    Ok(text.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        (key.trim() == "MaxArraySize").then(|| value.trim().parse().ok()).flatten()
    }))
}

/// `scancel ID`.
pub fn cancel(job: &str) -> Result<()> {
    slurm("scancel", &[job], None).map(|_| ()).map_err(|e| Failure::runtime(format!("scancel {job}: {e}")))
}

/// One partition as `sinfo` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// Its name (without sinfo's `*` for the default one).
    pub name: String,
    /// Whether jobs go there when none is named.
    pub default: bool,
    /// Its nodes.
    pub nodes: u64,
    /// The fewest CPUs any of its nodes has.
    pub cpus_per_node: u64,
}

/// The cluster's partitions (`sinfo -h -o '%P %D %c'`, one line per partition and node
/// configuration: a partition of mixed nodes appears more than once).
pub fn partitions() -> Result<Vec<Partition>> {
    let out = slurm("sinfo", &["-h", "-o", "%P %D %c"], None).map_err(|e| Failure::runtime(format!("sinfo: {e}")))?;
    Ok(parse_partitions(&out))
}

fn parse_partitions(text: &str) -> Vec<Partition> {
    let mut partitions: Vec<Partition> = Vec::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let [name, nodes, cpus] = words[..] else { continue };
        let (Ok(nodes), Ok(cpus)) = (nodes.parse::<u64>(), cpus.trim_end_matches('+').parse::<u64>()) else {
            continue;
        };
        let default = name.ends_with('*');
        let name = name.trim_end_matches('*');
        match partitions.iter_mut().find(|p| p.name == name) {
            Some(p) => {
                p.nodes += nodes;
                p.cpus_per_node = p.cpus_per_node.min(cpus);
            }
            None => partitions.push(Partition { name: name.to_string(), default, nodes, cpus_per_node: cpus }),
        }
    }
    partitions
}

/// A job's state as SLURM reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JobInfo {
    /// `JobState` (`PENDING`, `RUNNING`, `COMPLETED`, `CANCELLED`, `TIMEOUT`, ...).
    pub state: String,
    /// `Reason` (why it waits or ended: `Resources`, `BeginTime`, `NodeDown`, ...).
    pub reason: String,
    /// How often SLURM requeued it (`Restarts`).
    pub restarts: u64,
    /// Where it runs (`NodeList`).
    pub nodes: String,
    /// `ExitCode` (`code:signal`).
    pub exit_code: String,
}

impl JobInfo {
    /// Whether the job will not run again (SLURM's final states).
    pub fn finished(&self) -> bool {
        matches!(
            self.state.as_str(),
            "COMPLETED"
                | "FAILED"
                | "CANCELLED"
                | "TIMEOUT"
                | "NODE_FAIL"
                | "PREEMPTED"
                | "OUT_OF_MEMORY"
                | "BOOT_FAIL"
                | "DEADLINE"
                | "REVOKED"
        )
    }

    /// Whether the job waits for someone to release it (`scontrol release`): held by a
    /// user or admin, or requeued on hold.
    pub fn held(&self) -> bool {
        matches!(self.state.as_str(), "REQUEUE_HOLD" | "SPECIAL_EXIT") || self.reason.starts_with("JobHeld")
    }

    /// The batch script's exit code, when SLURM says.
    pub fn exit_status(&self) -> Option<i32> {
        self.exit_code.split(':').next()?.parse().ok()
    }
}

/// What SLURM said about a job.
#[derive(Debug)]
pub enum Query {
    /// Its state (an array job's: see [`combined`]).
    Known(JobInfo),
    /// Neither `scontrol` nor `sacct` knows the job (long gone, or never was).
    Unknown,
    /// The controller could not be reached (down, restarting, overloaded): ask again later.
    Unreachable(String),
}

/// What SLURM knows of job `id`: `scontrol show job` while the controller remembers it
/// (MinJobAge, 5 minutes by default, after its end), then `sacct` if accounting is on.
pub fn ask(id: &str) -> Result<Query> {
    match slurm("scontrol", &["show", "job", "-o", id], None) {
        Ok(text) => Ok(combined(text.lines().filter(|l| !l.trim().is_empty()).map(parse_scontrol).collect())
            .map_or(Query::Unknown, Query::Known)),
        Err(message) if message.contains("Invalid job id") => Ok(query_sacct(id).map_or(Query::Unknown, Query::Known)),
        Err(message) if unreachable(&message) => Ok(Query::Unreachable(message)),
        Err(message) => Err(Failure::runtime(format!("scontrol show job {id}: {message}"))),
    }
}

/// [`ask`], with an unreachable controller as a failure (for one-shot commands).
pub fn query(id: &str) -> Result<Option<JobInfo>> {
    match ask(id)? {
        Query::Known(info) => Ok(Some(info)),
        Query::Unknown => Ok(None),
        Query::Unreachable(message) => Err(Failure::runtime(format!("scontrol show job {id}: {message}"))),
    }
}

/// One state for a job shown as several lines (an array job: one per task, pending ones
/// folded into one): it has ended only when every task has. While not, the state is a
/// running task's (else the first unfinished one's); once all ended, the first task that
/// did not complete speaks for the array, else the first.
fn combined(tasks: Vec<JobInfo>) -> Option<JobInfo> {
    let restarts = tasks.iter().map(|t| t.restarts).max()?;
    let pick = tasks
        .iter()
        .find(|t| t.state == "RUNNING")
        .or_else(|| tasks.iter().find(|t| !t.finished()))
        .or_else(|| tasks.iter().find(|t| t.state != "COMPLETED"))
        .unwrap_or(&tasks[0]);
    Some(JobInfo { restarts, ..pick.clone() })
}

fn query_sacct(id: &str) -> Option<JobInfo> {
    let text = slurm("sacct", &["-n", "-X", "-P", "-j", id, "-o", "State,ExitCode,NodeList,Restarts"], None).ok()?;
    let tasks = text
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split('|').collect();
            let [state, exit_code, nodes, restarts] = fields[..] else { return None };
            Some(JobInfo {
                // sacct says "CANCELLED by 0".
                state: state.split_whitespace().next().unwrap_or("").to_string(),
                reason: String::new(),
                restarts: restarts.parse().unwrap_or(0),
                nodes: nodes.to_string(),
                exit_code: exit_code.to_string(),
            })
        })
        .collect();
    combined(tasks)
}

/// Reads the fields the follower needs from `scontrol show job -o`'s `Key=Value` words.
fn parse_scontrol(line: &str) -> JobInfo {
    let mut info = JobInfo::default();
    let mut seen: Vec<&str> = Vec::new();
    for word in line.split_whitespace() {
        let Some((key, value)) = word.split_once('=') else { continue };
        // The job's own fields come first; a later `Key=` (inside a Comment, say) is not it.
        if seen.contains(&key) {
            continue;
        }
        seen.push(key);
        match key {
            "JobState" => info.state = value.to_string(),
            "Reason" => info.reason = value.to_string(),
            "Restarts" => info.restarts = value.parse().unwrap_or(0),
            "NodeList" if value != "(null)" => info.nodes = value.to_string(),
            "ExitCode" => info.exit_code = value.to_string(),
            _ => {}
        }
    }
    info
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scontrols_one_line_form_is_read() {
        let line = "JobId=7 JobName=sweeprun:goog UserId=root(0) GroupId=root(0) MCS_label=N/A Priority=1 \
                    Nice=0 Account=(null) QOS=(null) JobState=PENDING Reason=BeginTime Dependency=(null) \
                    Requeue=1 Restarts=1 BatchFlag=1 Reboot=0 ExitCode=0:0 RunTime=00:00:00 NodeList=(null) \
                    BatchHost=node2 NumNodes=4-4";
        let info = parse_scontrol(line);
        assert_eq!(info.state, "PENDING");
        assert_eq!(info.reason, "BeginTime");
        assert_eq!(info.restarts, 1);
        assert_eq!(info.nodes, "");
        assert!(!info.finished());
        let done =
            parse_scontrol("JobId=8 JobState=TIMEOUT Reason=TimeLimit Restarts=0 ExitCode=0:15 NodeList=node[1-4]");
        assert!(done.finished());
        assert_eq!((done.nodes.as_str(), done.exit_status()), ("node[1-4]", Some(0)));
    }

    #[test]
    fn an_array_job_has_ended_only_when_every_task_has() {
        let tasks = |states: &[&str]| -> Vec<JobInfo> {
            states
                .iter()
                .enumerate()
                .map(|(i, s)| JobInfo { state: s.to_string(), restarts: i as u64, ..JobInfo::default() })
                .collect()
        };
        let running = combined(tasks(&["COMPLETED", "PENDING", "RUNNING"])).unwrap();
        assert_eq!((running.state.as_str(), running.restarts), ("RUNNING", 2));
        assert!(!combined(tasks(&["COMPLETED", "PENDING"])).unwrap().finished());
        let failed = combined(tasks(&["COMPLETED", "FAILED", "COMPLETED"])).unwrap();
        assert_eq!(failed.state, "FAILED");
        assert_eq!(combined(tasks(&["COMPLETED", "COMPLETED"])).unwrap().state, "COMPLETED");
        assert!(combined(Vec::new()).is_none());
        let first = parse_scontrol("JobId=9 JobState=RUNNING Reason=None Comment=JobState=FAILED");
        assert_eq!(first.state, "RUNNING");
        let held = parse_scontrol("JobId=9 JobState=PENDING Reason=JobHeldUser");
        assert!(held.held() && !held.finished());
    }

    #[test]
    fn sinfo_lines_become_partitions() {
        let parts = parse_partitions("debug* 4 4\nbig 2 8\nbig 1 4+\n\ngarbage\n");
        assert_eq!(
            parts,
            vec![
                Partition { name: "debug".into(), default: true, nodes: 4, cpus_per_node: 4 },
                Partition { name: "big".into(), default: false, nodes: 3, cpus_per_node: 4 },
            ]
        );
    }

    #[test]
    fn slurm_errors_become_their_reason() {
        let stderr = "sbatch: error: invalid partition specified: nope\n\
                      sbatch: error: Batch job submission failed: Invalid partition name specified\n";
        assert_eq!(error_text(stderr), "invalid partition specified: nope");
        assert!(unreachable("Batch job submission failed: Unable to contact slurm controller (connect failure)"));
        assert!(!unreachable("invalid partition specified: nope"));
    }
}
