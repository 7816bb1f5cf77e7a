//! The local backend: N rank processes on this machine, fed chunks of combo ids
//! dynamically over pipes.
//!
//! Each rank is `sweeprun __rank` (this same executable), pinned to one CPU when there are
//! enough, in its own process group (so a terminal's Ctrl-C reaches only the launcher,
//! which then stops the ranks in order), and killed by the kernel if the launcher dies
//! (`PR_SET_PDEATHSIG`). Each rank keeps up to two chunks in flight so it never idles
//! waiting for the next one. When a rank dies, its unfinished chunks go back to the front
//! of the queue and the other ranks run them; only complete chunks are ever accepted, so
//! every combo id is reported exactly once.

use crate::error::{Failure, Result};
use crate::progress::Progress;
use crate::protocol::{FromRank, ToRank};
use crate::signals;
use std::collections::VecDeque;
use std::io::BufReader;
use std::ops::Range;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Chunks a rank may hold at once.
const IN_FLIGHT_PER_RANK: usize = 2;
/// A chunk whose ranks died this many times aborts the sweep (it probably kills ranks).
const MAX_CHUNK_FAILURES: u32 = 3;

/// What the local backend needs to run a sweep.
pub struct LocalJob<'a> {
    /// Output format name for the ranks (`csv`/`jsonl`).
    pub format: &'a str,
    /// The effective spec text the ranks load.
    pub spec: &'a str,
    /// The price data (a [`ToRank::Data`] message), unless [`Ranks::send_data`] sent it.
    pub data: &'a ToRank,
    /// Chunks of combo ids still to do.
    pub chunks: VecDeque<Range<u64>>,
    /// Ask ranks to preselect each chunk's best `k` rows by this metric.
    pub preselect: Option<(String, usize)>,
}

/// What the backend hands over for each finished chunk: its ids, its rows, and the byte
/// offsets of the rows the rank preselected (when asked to).
pub type OnRows<'a> = dyn FnMut(Range<u64>, String, Option<Vec<usize>>) -> Result<()> + 'a;

enum Event {
    Message(usize, FromRank),
    Gone(usize, String),
}

struct Rank {
    child: Child,
    stdin: Option<ChildStdin>,
    in_flight: VecDeque<Range<u64>>,
    alive: bool,
}

/// Started rank processes, waiting for their sweep. Ranks start before the launcher has
/// checked the spec (they only wait for it on their input), so that their exec and
/// start-up overlap the launcher's own; dropped unused, they see their input close and exit.
pub struct Ranks {
    ranks: Vec<Rank>,
    /// Ranks still being spawned (each by its own reader thread), in rank order.
    starting: Vec<mpsc::Receiver<Result<Rank>>>,
    events: mpsc::Receiver<Event>,
    /// The sweep sent to every rank so far, if any.
    sent: Option<ToRank>,
    /// Whether the price data went out too.
    data_sent: bool,
    /// Chunks not yet handed out.
    pending: VecDeque<Range<u64>>,
}

impl Ranks {
    /// Starts one rank per entry of `pins` (its CPU, or `None`: unpinned). Returns at
    /// once: each rank is spawned by its own reader thread (spawning takes ~0.7 ms, and
    /// the launcher has its spec to read meanwhile).
    pub fn start(pins: &[Option<usize>]) -> Ranks {
        let (events_tx, events) = mpsc::channel();
        let starting = pins.iter().enumerate().map(|(index, pin)| spawn_rank(index, *pin, &events_tx)).collect();
        Ranks { ranks: Vec::new(), starting, events, sent: None, data_sent: false, pending: VecDeque::new() }
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

    /// How many ranks there are.
    pub fn len(&self) -> usize {
        self.ranks.len() + self.starting.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keeps the first `n` ranks and stops the others (they may already be loading data).
    pub fn truncate(&mut self, n: usize) -> Result<()> {
        self.started()?;
        let mut extra: Vec<Rank> = self.ranks.drain(n.min(self.ranks.len())..).collect();
        stop_all(&mut extra);
        Ok(())
    }

    /// Sends every rank the sweep (format, effective spec, preselection), so that they load
    /// the data while the launcher still checks it. [`Ranks::run`] sends it otherwise.
    pub fn send_sweep(&mut self, format: &str, spec: &str, preselect: Option<(String, usize)>) -> Result<()> {
        self.send_to_all(ToRank::Spec { format: format.to_string(), spec: spec.to_string(), preselect })
    }

    /// Sends every rank the price data now if the sweep went out already (so that they
    /// decode it while the launcher sets up its output); else [`Ranks::begin`] sends both.
    pub fn send_data(&mut self, data: &ToRank) -> Result<()> {
        if self.sent.is_some() && !self.data_sent {
            self.write_to_all(data)?;
            self.data_sent = true;
        }
        Ok(())
    }

    fn send_to_all(&mut self, message: ToRank) -> Result<()> {
        self.write_to_all(&message)?;
        self.sent = Some(message);
        Ok(())
    }

    fn write_to_all(&mut self, message: &ToRank) -> Result<()> {
        self.started()?;
        for rank in &mut self.ranks {
            rank.alive &= rank.stdin.as_mut().is_some_and(|stdin| message.write(stdin).is_ok());
        }
        Ok(())
    }

    /// Starts `job`: sends the sweep (unless [`Ranks::send_sweep`] did) and the first
    /// chunks, which wait in each rank's input until it has loaded the data. The caller
    /// can prepare its output meanwhile, then collect the rows with [`Ranks::run`].
    pub fn begin(&mut self, job: LocalJob) -> Result<()> {
        let spec =
            ToRank::Spec { format: job.format.to_string(), spec: job.spec.to_string(), preselect: job.preselect };
        match &self.sent {
            None => self.send_to_all(spec)?,
            Some(sent) if *sent == spec => {}
            Some(_) => return Err(Failure::runtime("internal error: the ranks were sent another sweep")),
        }
        self.send_data(job.data)?;
        self.pending = job.chunks;
        for rank in &mut self.ranks {
            feed(rank, &mut self.pending);
        }
        Ok(())
    }

    /// Runs the sweep started by [`Ranks::begin`], calling `on_rows` with each finished
    /// chunk's rows (in arrival order). On success the ranks are told to exit and returned
    /// for [`Exiting::reap`], so the caller can finish the table while they wind down.
    pub fn run(mut self, progress: &mut Progress, on_rows: &mut OnRows) -> Result<Exiting> {
        let pending = std::mem::take(&mut self.pending);
        let result = schedule(&mut self.ranks, pending, &self.events, progress, on_rows);
        match result {
            Ok(()) => {
                for rank in &mut self.ranks {
                    rank.stdin = None;
                }
                Ok(Exiting { ranks: std::mem::take(&mut self.ranks) })
            }
            Err(e) => {
                stop_all(&mut self.ranks);
                Err(e)
            }
        }
    }
}

impl Drop for Ranks {
    fn drop(&mut self) {
        // Unused or interrupted: close their input (idle ranks exit) and kill the rest.
        let _ = self.started();
        stop_all(&mut self.ranks);
    }
}

/// Ranks whose input has closed after a finished sweep, exiting.
pub struct Exiting {
    ranks: Vec<Rank>,
}

impl Exiting {
    /// Waits for every rank to exit.
    pub fn reap(mut self) {
        for rank in &mut self.ranks {
            let _ = rank.child.wait();
        }
    }
}

/// Spawns rank `index` from a new thread, which then reads the rank's messages into
/// `events` until its output closes. The rank (or the error) arrives on the returned
/// channel. The thread is the rank's parent for `PR_SET_PDEATHSIG`, so it outlives the
/// rank's useful life: it only ends when the rank's output closes or the launcher stops
/// listening.
fn spawn_rank(index: usize, pin: Option<usize>, events: &mpsc::Sender<Event>) -> mpsc::Receiver<Result<Rank>> {
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
        let rank = Rank { child, stdin: Some(stdin), in_flight: VecDeque::new(), alive: true };
        if started_tx.send(Ok(rank)).is_err() {
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

fn schedule(
    ranks: &mut [Rank],
    mut pending: VecDeque<Range<u64>>,
    events: &mpsc::Receiver<Event>,
    progress: &mut Progress,
    on_rows: &mut OnRows,
) -> Result<()> {
    let mut failures: std::collections::HashMap<u64, u32> = std::collections::HashMap::new();
    let in_flight = ranks.iter().flat_map(|r| r.in_flight.iter());
    let mut outstanding: u64 = pending.iter().chain(in_flight).map(|c| c.end - c.start).sum();
    while outstanding > 0 {
        if signals::interrupted() {
            return Err(Failure::Interrupted("interrupted".into()));
        }
        let event = match events.recv_timeout(Duration::from_millis(100)) {
            Ok(event) => event,
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(Failure::runtime("every rank has exited; the sweep cannot finish"));
            }
        };
        // Ranks sent away by `Ranks::truncate` may still report (READY, or their exit).
        let (Event::Message(r, _) | Event::Gone(r, _)) = event;
        if r >= ranks.len() {
            continue;
        }
        match event {
            Event::Message(r, FromRank::Ready) => feed(&mut ranks[r], &mut pending),
            Event::Message(r, FromRank::Rows { start, end, rows, best }) => {
                let Some(at) = ranks[r].in_flight.iter().position(|c| c.start == start && c.end == end) else {
                    return Err(Failure::runtime(format!("rank {r} sent rows {start}..{end} it was not given")));
                };
                if memchr::memchr_iter(b'\n', rows.as_bytes()).count() as u64 != end - start {
                    return Err(Failure::runtime(format!("rank {r} sent a wrong number of rows for {start}..{end}")));
                }
                ranks[r].in_flight.remove(at);
                on_rows(start..end, rows, best)?;
                outstanding -= end - start;
                progress.advance(end - start);
                feed(&mut ranks[r], &mut pending);
            }
            Event::Message(r, FromRank::Error(message)) => {
                return Err(Failure::runtime(format!("rank {r} failed: {message}")));
            }
            Event::Gone(r, why) => {
                let rank = &mut ranks[r];
                rank.alive = false;
                rank.stdin = None;
                // A rank that sent a broken frame may still be alive and blocked on a full pipe.
                let _ = rank.child.kill();
                let status = rank.child.wait().map(describe_exit).unwrap_or_else(|e| e.to_string());
                let lost: Vec<Range<u64>> = rank.in_flight.drain(..).collect();
                let lost_combos: u64 = lost.iter().map(|c| c.end - c.start).sum();
                for chunk in lost.into_iter().rev() {
                    let count = failures.entry(chunk.start).or_default();
                    *count += 1;
                    if *count >= MAX_CHUNK_FAILURES {
                        return Err(Failure::runtime(format!(
                            "combos {}..{} were running on {MAX_CHUNK_FAILURES} ranks that all died; giving up",
                            chunk.start, chunk.end
                        )));
                    }
                    pending.push_front(chunk);
                }
                let survivors = ranks.iter().filter(|r| r.alive).count();
                if outstanding > 0 {
                    progress.note(&format!(
                        "sweeprun: rank {r} (pid {}) {why} and exited ({status}); \
                         its {} {} to the {}",
                        ranks[r].child.id(),
                        crate::report::counted(lost_combos, "unfinished combo"),
                        if lost_combos == 1 { "goes" } else { "go" },
                        crate::report::counted(survivors as u64, "other rank")
                    ));
                }
                if survivors == 0 && outstanding > 0 {
                    return Err(Failure::runtime("every rank has exited; the sweep cannot finish"));
                }
                for rank in ranks.iter_mut().filter(|r| r.alive) {
                    feed(rank, &mut pending);
                }
            }
        }
    }
    Ok(())
}

/// Tops up a rank's in-flight chunks from the queue.
fn feed(rank: &mut Rank, pending: &mut VecDeque<Range<u64>>) {
    while rank.alive && rank.in_flight.len() < IN_FLIGHT_PER_RANK {
        let Some(chunk) = pending.pop_front() else { return };
        let sent = rank
            .stdin
            .as_mut()
            .is_some_and(|stdin| ToRank::Chunk { start: chunk.start, end: chunk.end }.write(stdin).is_ok());
        if sent {
            rank.in_flight.push_back(chunk);
        } else {
            // The rank is gone; its reader thread reports it and its chunks are requeued then.
            pending.push_front(chunk);
            rank.alive = false;
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

/// How the ids still to do are cut into chunks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chunking {
    /// At most this many consecutive ids per chunk (`--chunk-size`).
    Fixed(u64),
    /// Guided self-scheduling for this many ranks: each chunk takes 1/(4·ranks) of what
    /// remains, between 16 and 4096 ids. Big chunks first (few messages), small ones
    /// last, so the ranks finish within a small chunk of each other.
    Guided {
        /// Ranks sharing the chunks.
        ranks: usize,
    },
}

impl Chunking {
    fn size(self, remaining: u64) -> u64 {
        match self {
            Chunking::Fixed(size) => size.max(1),
            Chunking::Guided { ranks } => (remaining / (4 * ranks.max(1) as u64)).clamp(16, 4096),
        }
    }
}

/// Splits the ids not yet done into chunks of consecutive ids, sized by `chunking`.
pub fn chunks_of_remaining(done: &[bool], chunking: Chunking) -> VecDeque<Range<u64>> {
    let mut chunks = VecDeque::new();
    let mut remaining = done.iter().filter(|&&d| !d).count() as u64;
    let mut id = 0u64;
    let total = done.len() as u64;
    while id < total {
        if done[id as usize] {
            id += 1;
            continue;
        }
        let start = id;
        let size = chunking.size(remaining);
        while id < total && !done[id as usize] && id - start < size {
            id += 1;
        }
        remaining -= id - start;
        chunks.push_back(start..id);
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_exactly_the_remaining_ids() {
        let mut done = vec![false; 23];
        for id in [0, 5, 6, 7, 22] {
            done[id] = true;
        }
        let chunks = chunks_of_remaining(&done, Chunking::Fixed(4));
        let ids: Vec<u64> = chunks.iter().flat_map(|c| c.clone()).collect();
        let expected: Vec<u64> = (0..23).filter(|&i| !done[i as usize]).collect();
        assert_eq!(ids, expected);
        assert!(chunks.iter().all(|c| c.end - c.start <= 4 && c.start < c.end));
        assert_eq!(chunks.front(), Some(&(1..5)));
    }

    #[test]
    fn guided_chunks_shrink_to_small_ones_and_cover_every_id() {
        let mut done = vec![false; 100_000];
        done[50_000..50_010].fill(true);
        let chunks = chunks_of_remaining(&done, Chunking::Guided { ranks: 2 });
        let ids: Vec<u64> = chunks.iter().flat_map(|c| c.clone()).collect();
        let expected: Vec<u64> = (0..100_000).filter(|&i| !done[i as usize]).collect();
        assert_eq!(ids, expected);
        let sizes: Vec<u64> = chunks.iter().map(|c| c.end - c.start).collect();
        assert_eq!(sizes[0], 4096, "capped while much remains");
        assert!(sizes.iter().all(|&s| (1..=4096).contains(&s)));
        let last_four: u64 = sizes[sizes.len() - 4..].iter().sum();
        assert!(last_four <= 64, "the last chunks are small: {:?}", &sizes[sizes.len() - 8..]);
        assert!(sizes.len() < 100, "{} chunks", sizes.len());
        assert!(sizes.windows(2).filter(|w| w[1] > w[0]).count() <= 1, "sizes only shrink (but at the done gap)");
    }
}
