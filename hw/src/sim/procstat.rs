//! The simulated board's load: which managed processes are running.

use std::fs;
use std::path::Path;

/// How many of `pids` are running, read from `<proc_root>/<pid>/stat`,
/// capped at `cores`: the number of busy cores the simulated board sees.
///
/// A process counts unless it is stopped (`T`, `t`), a zombie or dead
/// (`Z`, `X`), or gone (its `stat` is missing or unreadable). Sleeping
/// counts as running: managed processes are CPU-bound workers, and the
/// board must see what the agent did to them (paused or not), never the
/// test machine's own busyness. A pid listed twice counts once.
pub fn managed_busy_cores(proc_root: &Path, pids: &[u32], cores: u32) -> u32 {
    let mut pids = pids.to_vec();
    pids.sort_unstable();
    pids.dedup();
    let running = pids.iter().filter(|&&pid| is_running(proc_root, pid)).count();
    u32::try_from(running).unwrap_or(u32::MAX).min(cores)
}

fn is_running(proc_root: &Path, pid: u32) -> bool {
    let Ok(stat) = fs::read_to_string(proc_root.join(pid.to_string()).join("stat")) else {
        return false;
    };
    matches!(process_state(&stat), Some(state) if !matches!(state, 'T' | 't' | 'Z' | 'X' | 'x'))
}

/// The state letter of a `/proc/<pid>/stat` line: the first field after the
/// *last* `)`, since the command name in parentheses may itself hold spaces
/// and parentheses.
fn process_state(stat: &str) -> Option<char> {
    let (_, after_comm) = stat.rsplit_once(')')?;
    after_comm.split_whitespace().next()?.chars().next()
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;
    use std::process::Command;
    use std::thread;
    use std::time::{Duration, Instant};

    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;

    fn fake_proc(states: &[(u32, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (pid, line) in states {
            let pid_dir = dir.path().join(pid.to_string());
            fs::create_dir_all(&pid_dir).unwrap();
            fs::write(pid_dir.join("stat"), line).unwrap();
        }
        dir
    }

    #[test]
    fn state_is_read_after_the_last_parenthesis() {
        assert_eq!(process_state("12 (worker) R 1 12 12 0"), Some('R'));
        assert_eq!(process_state("12 (a) T (b)) S 1 12"), Some('S'));
        assert_eq!(process_state("12 (x y) t 1"), Some('t'));
        assert_eq!(process_state("12 (no state)"), None);
        assert_eq!(process_state("garbage"), None);
    }

    #[test]
    fn counts_running_and_sleeping_not_stopped_or_gone() {
        let proc_root = fake_proc(&[
            (10, "10 (sweep) R 1 10 10 0 -1\n"),
            (11, "11 (sweep) S 1 11 11 0 -1\n"),
            (12, "12 (sweep) T 1 12 12 0 -1\n"),
            (13, "13 (sweep) t 1 13 13 0 -1\n"),
            (14, "14 (sweep) Z 1 14 14 0 -1\n"),
            (15, "15 (odd) name) D 1 15 15 0 -1\n"),
            (16, "16 (truncated\n"),
        ]);
        let root = proc_root.path();
        assert_eq!(managed_busy_cores(root, &[10, 11, 12, 13, 14, 15, 16, 99], 4), 3);
        assert_eq!(managed_busy_cores(root, &[10, 10, 10], 4), 1, "a pid counts once");
        assert_eq!(managed_busy_cores(root, &[10, 11, 15], 2), 2, "capped at the cores");
        assert_eq!(managed_busy_cores(root, &[], 4), 0);
    }

    /// Waits until `pid`'s state satisfies `wanted` (signals arrive
    /// asynchronously).
    fn wait_for_state(pid: u32, wanted: impl Fn(Option<char>) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let state = fs::read_to_string(format!("/proc/{pid}/stat")).ok().and_then(|s| process_state(&s));
            if wanted(state) {
                return;
            }
            assert!(Instant::now() < deadline, "pid {pid} stuck in state {state:?}");
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Kills and reaps the child even when an assertion fails first.
    struct KillOnDrop(std::process::Child);

    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    #[test]
    fn a_real_stopped_child_is_not_busy() {
        // Its own process group, so no terminal signal meant for the test
        // runner reaches it (and it does not stop the runner's group).
        let child = Command::new("sleep").arg("30").process_group(0).spawn().expect("spawn sleep");
        let mut child = KillOnDrop(child);
        let pid = child.0.id();
        let proc_root = Path::new("/proc");
        let nix_pid = Pid::from_raw(i32::try_from(pid).unwrap());

        wait_for_state(pid, |state| state.is_some());
        assert_eq!(managed_busy_cores(proc_root, &[pid], 4), 1);

        kill(nix_pid, Signal::SIGSTOP).unwrap();
        wait_for_state(pid, |state| state == Some('T'));
        assert_eq!(managed_busy_cores(proc_root, &[pid], 4), 0);

        kill(nix_pid, Signal::SIGCONT).unwrap();
        wait_for_state(pid, |state| state != Some('T'));
        assert_eq!(managed_busy_cores(proc_root, &[pid], 4), 1);

        child.0.kill().unwrap();
        child.0.wait().unwrap();
        assert_eq!(managed_busy_cores(proc_root, &[pid], 4), 0, "reaped: gone");
    }
}
