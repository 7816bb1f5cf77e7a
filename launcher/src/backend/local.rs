//! The local transport: N rank processes on this machine, talking over pipes.
//!
//! Each rank is `sweeprun __rank` (this same executable), pinned to one CPU when there are
//! enough, in its own process group (so a terminal's Ctrl-C reaches only the launcher,
//! which then stops the ranks in order), and killed by the kernel if the launcher dies
//! (`PR_SET_PDEATHSIG`). One reader thread per rank turns its output into [`Event`]s.

use crate::backend::inproc::ThreadRank;
use crate::error::{Failure, Result};
use crate::protocol::{FromRank, ToRank};
use crate::sched::{Event, Transport};
use crate::thermal::ThermalMode;
use std::io::BufReader;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

struct Rank {
    child: Child,
    stdin: Option<ChildStdin>,
}

/// Started rank processes. Ranks start before the launcher has checked the spec (they only
/// wait for it on their input), so that their exec and start-up overlap the launcher's
/// own; dropped, they see their input close (idle ranks exit) and are killed.
pub struct LocalRanks {
    ranks: Vec<Rank>,
    /// Ranks still being spawned (each by its own reader thread), in rank order.
    starting: Vec<mpsc::Receiver<Result<Rank>>>,
    events: mpsc::Receiver<Event>,
}

impl LocalRanks {
    /// Starts one rank per entry of `pins` (its CPU, or `None`: unpinned). Returns at
    /// once: each rank is spawned by its own reader thread (spawning takes ~0.7 ms, and
    /// the launcher has its spec to read meanwhile).
    /// With `report_bindings`, each rank prints its host and CPUs on stderr.
    pub fn start(pins: &[Option<usize>], report_bindings: bool) -> LocalRanks {
        let (events_tx, events) = mpsc::channel();
        let starting =
            pins.iter().enumerate().map(|(index, pin)| spawn_rank(index, *pin, report_bindings, &events_tx)).collect();
        LocalRanks { ranks: Vec::new(), starting, events }
    }

    /// Waits until every rank is spawned; fails (stopping the others) if one could not be.
    fn started(&mut self) -> Result<()> {
        let mut failure = None;
        for (index, started) in self.starting.drain(..).enumerate() {
            match started.recv() {
                Ok(Ok(rank)) => self.ranks.push(rank),
                Ok(Err(e)) => failure = failure.or(Some(e)),
                Err(_) => failure = failure.or(Some(Failure::runtime(format!("cannot start rank {index}")))),
            }
        }
        match failure {
            Some(e) => {
                stop_all(&mut self.ranks);
                Err(e)
            }
            None => Ok(()),
        }
    }
}

impl Transport for LocalRanks {
    fn ranks(&self) -> usize {
        self.ranks.len() + self.starting.len()
    }

    fn send(&mut self, rank: usize, message: &ToRank) -> bool {
        if self.started().is_err() {
            return false;
        }
        let Some(stdin) = self.ranks.get_mut(rank).and_then(|r| r.stdin.as_mut()) else { return false };
        message.write(stdin).is_ok()
    }

    fn next_event(&mut self, timeout: Duration) -> Result<Option<Event>> {
        match self.events.recv_timeout(timeout) {
            Ok(event) => Ok(Some(event)),
            Err(mpsc::RecvTimeoutError::Timeout) => Ok(None),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                Err(Failure::runtime("every rank has exited; the sweep cannot finish"))
            }
        }
    }

    fn retire(&mut self, rank: usize) -> String {
        let Some(rank) = self.ranks.get_mut(rank) else { return "never started".into() };
        rank.stdin = None;
        // A rank that sent a broken frame may still be alive and blocked on a full pipe.
        let _ = rank.child.kill();
        rank.child.wait().map(describe_exit).unwrap_or_else(|e| e.to_string())
    }

    fn describe(&self, rank: usize) -> String {
        match self.ranks.get(rank) {
            Some(r) => format!("rank {rank} (pid {})", r.child.id()),
            None => format!("rank {rank}"),
        }
    }

    fn keep(&mut self, n: usize) -> Result<()> {
        self.started()?;
        let mut extra: Vec<Rank> = self.ranks.drain(n.min(self.ranks.len())..).collect();
        stop_all(&mut extra);
        Ok(())
    }

    fn close(&mut self) {
        for rank in &mut self.ranks {
            rank.stdin = None;
        }
    }

    fn process_groups(&self) -> Vec<u32> {
        // Each rank leads its own process group (spawned with `process_group(0)`).
        self.ranks.iter().map(|rank| rank.child.id()).collect()
    }

    fn wait(&mut self) {
        for rank in &mut self.ranks {
            rank.stdin = None;
            let _ = rank.child.wait();
        }
        self.ranks.clear();
    }
}

impl Drop for LocalRanks {
    fn drop(&mut self) {
        // Unused or interrupted: close their input (idle ranks exit) and kill the rest.
        let _ = self.started();
        stop_all(&mut self.ranks);
    }
}

/// Spawns rank `index` from a new thread, which then reads the rank's messages into
/// `events` until its output closes. The rank (or the error) arrives on the returned
/// channel. The thread is the rank's parent for `PR_SET_PDEATHSIG`, so it outlives the
/// rank's useful life: it only ends when the rank's output closes or the launcher stops
/// listening.
fn spawn_rank(
    index: usize,
    pin: Option<usize>,
    report_bindings: bool,
    events: &mpsc::Sender<Event>,
) -> mpsc::Receiver<Result<Rank>> {
    let (started_tx, started) = mpsc::channel();
    let sender = events.clone();
    std::thread::spawn(move || {
        let spawned = (|| {
            let exe =
                std::env::current_exe().map_err(|e| Failure::runtime(format!("cannot find my own executable: {e}")))?;
            let mut command = Command::new(exe);
            command.arg("__rank").stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit());
            if let Some(cpu) = pin {
                command.arg("--pin-cpu").arg(cpu.to_string());
            }
            command.arg("--index").arg(index.to_string());
            if report_bindings {
                command.arg("--report-bindings");
            }
            // The rank arms PR_SET_PDEATHSIG itself, first thing, and checks its parent is
            // still this process (race-free). Doing it here in a `pre_exec` hook would force
            // a fork of this whole process instead of posix_spawn: ~1.5 ms more per rank.
            command.arg("--parent").arg(std::process::id().to_string());
            command.process_group(0);
            command.spawn().map_err(|e| Failure::runtime(format!("cannot start rank {index}: {e}")))
        })();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => {
                let _ = started_tx.send(Err(e));
                return;
            }
        };
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        if started_tx.send(Ok(Rank { child, stdin: Some(stdin) })).is_err() {
            return;
        }
        // Small on purpose: a payload larger than the buffer is read straight into its own
        // allocation instead of being copied through the buffer.
        let mut reader = BufReader::with_capacity(16 << 10, stdout);
        // Whatever ends the loop (even a panic on a corrupt frame), the scheduler hears of it,
        // so the rank's chunks are requeued rather than waited for.
        let ended = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| loop {
            match FromRank::read(&mut reader) {
                Ok(Some(message)) => {
                    if sender.send(Event::Message(index, message)).is_err() {
                        return None;
                    }
                }
                Ok(None) => return Some("closed its output".to_string()),
                Err(e) => return Some(format!("broken message ({e})")),
            }
        }));
        let why = ended.unwrap_or_else(|_| Some("sent a frame the launcher could not read".into()));
        if let Some(why) = why {
            let _ = sender.send(Event::Gone(index, why));
        }
    });
    started
}

/// Forces `-np 1` on the local backend to start a rank process as at `-np 2` and more
/// (`SWEEPRUN_LOCAL_RANK=process`), instead of a thread: for comparisons and debugging.
pub const LOCAL_RANK_ENV: &str = "SWEEPRUN_LOCAL_RANK";

/// The local backend's only rank (`-np 1`): a thread of the launcher
/// ([`ThreadRank`]), or a rank process when the sweep needs one:
///
/// - a node agent may pause the rank (`--thermal sim:MODEL`, or `--thermal auto` with an
///   agent socket on this node): the agent stops rank *process groups*, and a thread
///   cannot be stopped apart from the launcher;
/// - a `[command]` sweep: its commands run in the rank's process group, which the agent
///   pauses and which a terminal's Ctrl-C does not reach (the launcher stops the rank);
///   a command's seconds also dwarf a process start;
/// - `SWEEPRUN_LOCAL_RANK=process`.
///
/// The choice waits for the spec ([`Transport::spec_known`]): until then nothing runs.
pub enum SoloRank {
    /// The spec is not known yet.
    Waiting {
        /// Where the rank is pinned.
        pin: Option<usize>,
        /// `--report-bindings`.
        report_bindings: bool,
    },
    /// A thread of the launcher.
    Thread(ThreadRank),
    /// A rank process.
    Process(LocalRanks),
}

impl SoloRank {
    /// Whether a thread may be the rank under `--thermal` (no agent to pause ranks) and
    /// `SWEEPRUN_LOCAL_RANK`.
    pub fn may_use_thread(thermal: &ThermalMode) -> bool {
        let forced = std::env::var_os(LOCAL_RANK_ENV).is_some_and(|v| v == "process");
        let agent = match thermal {
            ThermalMode::Off => false,
            ThermalMode::Sim(_) => true,
            ThermalMode::Auto => crate::thermal::agent_socket().exists(),
        };
        !forced && !agent
    }

    /// The rank, to be pinned to `pin`; started once the spec is known.
    pub fn new(pin: Option<usize>, report_bindings: bool) -> SoloRank {
        SoloRank::Waiting { pin, report_bindings }
    }

    fn started(&mut self) -> Option<&mut dyn Transport> {
        match self {
            SoloRank::Waiting { .. } => None,
            SoloRank::Thread(rank) => Some(rank),
            SoloRank::Process(rank) => Some(rank),
        }
    }
}

impl Transport for SoloRank {
    fn ranks(&self) -> usize {
        1
    }

    fn spec_known(&mut self, commands: bool) {
        if let SoloRank::Waiting { pin, report_bindings } = *self {
            *self = if commands {
                SoloRank::Process(LocalRanks::start(&[pin], report_bindings))
            } else {
                SoloRank::Thread(ThreadRank::start(pin, report_bindings))
            };
        }
    }

    fn send(&mut self, rank: usize, message: &ToRank) -> bool {
        self.started().is_some_and(|t| t.send(rank, message))
    }

    fn next_event(&mut self, timeout: Duration) -> Result<Option<Event>> {
        match self.started() {
            Some(t) => t.next_event(timeout),
            None => Err(Failure::runtime("the rank was never started")),
        }
    }

    fn retire(&mut self, rank: usize) -> String {
        self.started().map_or_else(|| "never started".into(), |t| t.retire(rank))
    }

    fn describe(&self, rank: usize) -> String {
        match self {
            SoloRank::Waiting { .. } => format!("rank {rank}"),
            SoloRank::Thread(t) => t.describe(rank),
            SoloRank::Process(t) => t.describe(rank),
        }
    }

    fn keep(&mut self, n: usize) -> Result<()> {
        self.started().map_or(Ok(()), |t| t.keep(n))
    }

    fn close(&mut self) {
        if let Some(t) = self.started() {
            t.close();
        }
    }

    fn wait(&mut self) {
        if let Some(t) = self.started() {
            t.wait();
        }
    }

    fn process_groups(&self) -> Vec<u32> {
        match self {
            SoloRank::Process(t) => t.process_groups(),
            _ => Vec::new(),
        }
    }
}

fn describe_exit(status: std::process::ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        _ => status.to_string(),
    }
}

/// Kills and reaps every rank (on failure or interrupt).
fn stop_all(ranks: &mut [Rank]) {
    for rank in ranks.iter_mut() {
        rank.stdin = None;
        let _ = rank.child.kill();
    }
    for rank in ranks.iter_mut() {
        let _ = rank.child.wait();
    }
}
