//! Running one attempt of a combo's command: its working directory, stdout and stderr
//! files, the wait with a deadline, the kill of its process tree, and its row.

use super::record::{parse_object, Members, OrderedObject, Status};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;
use wait_timeout::ChildExt;

/// How long a timed-out command gets between SIGTERM and SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_secs(5);

/// How much of the end of stdout is read for the row: the last line must fit.
pub const STDOUT_TAIL_BYTES: u64 = 1 << 20;

/// The largest `output` file read.
pub const OUTPUT_FILE_BYTES: u64 = 64 << 20;

/// What the command's stdout and stderr are kept in, in its working directory.
pub const STDOUT_FILE: &str = "stdout";
/// See [`STDOUT_FILE`].
pub const STDERR_FILE: &str = "stderr";

/// How an attempt ended.
pub(super) struct Outcome {
    /// Its status.
    pub status: Status,
    /// Its exit code (minus the signal that ended it; none after a timeout).
    pub exit_code: Option<i32>,
    /// The row's members (empty unless `ok`).
    pub row: Members,
}

/// One attempt in a fresh `workdir`: the command `argv` with `env`, killed (with its
/// descendants) past `timeout`; the row from `output_file`, else from stdout's last line.
pub(super) fn attempt(
    workdir: &Path,
    argv: &[String],
    env: &[(String, String)],
    timeout: Option<Duration>,
    output_file: Option<&Path>,
) -> Result<Outcome, String> {
    let io_error = |what: &str, e: std::io::Error| format!("cannot {what} in {}: {e}", workdir.display());
    match std::fs::remove_dir_all(workdir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io_error("clear the working directory", e)),
        _ => {}
    }
    std::fs::create_dir_all(workdir).map_err(|e| io_error("create the working directory", e))?;
    let stdout_path = workdir.join(STDOUT_FILE);
    let stdout = File::create(&stdout_path).map_err(|e| io_error("create stdout", e))?;
    let stderr_path = workdir.join(STDERR_FILE);
    let stderr = File::create(&stderr_path).map_err(|e| io_error("create stderr", e))?;
    let mut command = Command::new(&argv[0]);
    command.args(&argv[1..]).envs(env.iter().cloned()).current_dir(workdir);
    command.stdin(Stdio::null()).stdout(stdout).stderr(stderr);
    // The command stays in the rank's process group, so whatever pauses the rank (the
    // node agent's SIGSTOP of the group) pauses its command too; it dies with the rank.
    sweeprun_hw::process::die_with_parent_on_exec(&mut command);
    let failed = |exit_code| Outcome { status: Status::Failed, exit_code, row: Vec::new() };
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            let message = format!("sweeprun: cannot start {}: {e}\n", argv[0]);
            std::fs::write(&stderr_path, message).map_err(|e| io_error("write stderr", e))?;
            return Ok(failed(None));
        }
    };
    let waited = match timeout {
        None => Some(child.wait()),
        Some(limit) => child.wait_timeout(limit).transpose(),
    };
    let status = match waited {
        Some(status) => status.map_err(|e| format!("cannot wait for {}: {e}", argv[0]))?,
        None => {
            kill_tree(&mut child);
            return Ok(Outcome { status: Status::Timeout, exit_code: None, row: Vec::new() });
        }
    };
    let Some(exit_code) = exit_code(status) else { return Ok(failed(None)) };
    if exit_code != 0 {
        return Ok(failed(Some(exit_code)));
    }
    let row = match output_file {
        None => last_line(&stdout_path).and_then(|line| parse_object(&line)),
        Some(path) => read_output_file(path),
    };
    Ok(match row {
        Some(row) => Outcome { status: Status::Ok, exit_code: Some(0), row },
        None => Outcome { status: Status::BadOutput, exit_code: Some(0), row: Vec::new() },
    })
}

/// The exit code, or minus the signal that ended the process (as Python's subprocess).
fn exit_code(status: ExitStatus) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    status.code().or_else(|| status.signal().map(|s| -s))
}

/// SIGTERM to the command and every descendant; then SIGKILL to whatever of them is left
/// (and to the command's descendants by then) once the command has exited or
/// [`KILL_GRACE`] has passed. Reaps the command. A pid is signalled only while it is the
/// process first seen (same start time), never a later process that reused the pid.
fn kill_tree(child: &mut std::process::Child) {
    use nix::sys::signal::{kill, Signal};
    let root = child.id();
    let snapshot = |pids: Vec<u32>| -> Vec<(u32, Option<u64>)> {
        pids.into_iter().map(|pid| (pid, sweeprun_hw::process::start_time(pid))).collect()
    };
    let signal_all = |doomed: &[(u32, Option<u64>)], signal: Signal| {
        for &(pid, started) in doomed {
            if started.is_some() && sweeprun_hw::process::start_time(pid) == started {
                let _ = kill(nix::unistd::Pid::from_raw(pid as i32), signal);
            }
        }
    };
    // The tree first: once the command dies its children are re-parented, out of reach.
    let mut doomed = snapshot(sweeprun_hw::process::descendants(root));
    // The command itself cannot be reused before it is reaped: signal it by its pid.
    let _ = kill(nix::unistd::Pid::from_raw(root as i32), Signal::SIGTERM);
    signal_all(&doomed, Signal::SIGTERM);
    let exited = matches!(child.wait_timeout(KILL_GRACE), Ok(Some(_)));
    if !exited {
        doomed.extend(snapshot(sweeprun_hw::process::descendants(root)));
        let _ = child.kill();
    }
    signal_all(&doomed, Signal::SIGKILL);
    let _ = child.wait();
}

/// The last non-empty line of the file (of its last [`STDOUT_TAIL_BYTES`]).
fn last_line(path: &Path) -> Option<String> {
    let mut file = File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(STDOUT_TAIL_BYTES))).ok()?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail).ok()?;
    let text = String::from_utf8_lossy(&tail);
    text.lines().rev().map(str::trim).find(|line| !line.is_empty()).map(str::to_string)
}
/// The row of an `output` file: a JSON object; QSTrader's JSONStatistics layout
/// (`{"strategy": {...}, "benchmark": {...}, "strategy_id", "strategy_name",
/// "benchmark_id", "benchmark_name"}`, qstrader 0.3.0's `to_file`) gives the scalar
/// statistics of its `strategy` object (its series are left out).
fn read_output_file(path: &Path) -> Option<Members> {
    let mut text = String::new();
    File::open(path).ok()?.take(OUTPUT_FILE_BYTES).read_to_string(&mut text).ok()?;
    let members = parse_object(&text)?;
    let qstrader = members.iter().any(|(k, v)| k == "strategy" && v.is_object())
        && members.iter().all(|(k, _)| {
            ["strategy", "strategy_id", "strategy_name", "benchmark", "benchmark_id", "benchmark_name"]
                .contains(&k.as_str())
        });
    if !qstrader {
        return Some(members);
    }
    let top: OrderedTop = serde_json::from_str(&text).ok()?;
    Some(top.strategy?.0.into_iter().filter(|(_, v)| !v.is_array() && !v.is_object()).collect())
}

/// The `strategy` member of a JSONStatistics file, in written order (other members ignored).
#[derive(serde::Deserialize)]
struct OrderedTop {
    strategy: Option<OrderedObject>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qstrader_json_statistics_give_their_scalar_statistics() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stats.json");
        std::fs::write(
            &path,
            r#"{"strategy": {"equity_curve": [[1, 2.0]], "tot_ret": 0.5, "sharpe": 1.25, "max_drawdown_duration": 3},
                "strategy_id": "s", "strategy_name": "n"}"#,
        )
        .unwrap();
        let row = read_output_file(&path).unwrap();
        assert_eq!(
            row.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            ["tot_ret", "sharpe", "max_drawdown_duration"]
        );
        std::fs::write(&path, r#"{"sharpe": 2, "strategy": {"a": 1}}"#).unwrap();
        assert_eq!(read_output_file(&path).unwrap().len(), 2, "not the JSONStatistics layout: the object as it is");
    }
}
