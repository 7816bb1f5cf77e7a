//! The chunk scheduler shared by every backend: which chunk of combo ids goes to which
//! rank, what is in flight, which ranks are alive, and what happens when one dies.
//!
//! It moves [`ToRank`]/[`FromRank`] messages through a [`Transport`] (local pipes, MPI, or
//! the mock in the tests below), hands each finished chunk's rows to the caller (the
//! ledger, which knows nothing of how rows travel), and reports progress through
//! [`Observer`] (it knows no terminal and no CLI).
//!
//! Each rank keeps up to two chunks in flight so it never idles waiting for the next one.
//! When a rank dies, its unfinished chunks go back to the front of the queue and the other
//! ranks run them; only complete chunks are ever accepted, so every combo id is reported
//! exactly once. A chunk whose ranks died [`MAX_CHUNK_FAILURES`] times aborts the sweep (it
//! probably kills ranks).

use crate::error::{Failure, Result};
use crate::protocol::{ChunkBlocks, FromRank, ToRank};
use crate::table::RawRows;
use std::collections::{HashMap, VecDeque};
use std::ops::Range;
use std::time::Duration;

/// Chunks a rank may hold at once.
const IN_FLIGHT_PER_RANK: usize = 2;
/// A chunk whose ranks died this many times aborts the sweep.
pub const MAX_CHUNK_FAILURES: u32 = 3;
/// How long the scheduler waits for an event before it looks at [`Observer::interrupted`].
const POLL: Duration = Duration::from_millis(100);

/// Something that happened at a rank.
#[derive(Debug)]
pub enum Event {
    /// Rank `.0` sent a message.
    Message(usize, FromRank),
    /// Rank `.0` (a thread of this process) sent the rows of combos `.1` as values, for
    /// the scheduler's thread to format ([`RawRows::format`]), and their block sums.
    Unformatted(usize, Range<u64>, Box<RawRows>, ChunkBlocks),
    /// Rank `.0` is gone (its connection closed or broke), for the reason given.
    Gone(usize, String),
}

impl Event {
    /// The event with unformatted rows formatted (in the calling thread): an
    /// [`Event::Unformatted`] becomes the [`FromRank::Rows`] message a rank process sends.
    pub fn formatted(self) -> Event {
        match self {
            Event::Unformatted(rank, ids, raw, blocks) => {
                let (rows, best) = raw.format();
                Event::Message(rank, FromRank::Rows { start: ids.start, end: ids.end, rows, best, blocks })
            }
            other => other,
        }
    }
}

/// Moves messages between the scheduler and its ranks. Ranks are numbered `0..ranks()`.
pub trait Transport {
    /// How many ranks there are.
    fn ranks(&self) -> usize;
    /// Sends `message` to `rank`; `false` if the rank cannot be reached (it is gone; the
    /// transport reports that as an [`Event::Gone`] too, or the scheduler treats the rank
    /// as dead at its next event).
    fn send(&mut self, rank: usize, message: &ToRank) -> bool;
    /// The next event, or `None` if none came within `timeout`. An error means no event can
    /// ever come again (every rank's connection is gone).
    fn next_event(&mut self, timeout: Duration) -> Result<Option<Event>>;
    /// Makes sure a rank reported gone is stopped, and says how it ended (e.g. `exit code 1`).
    fn retire(&mut self, rank: usize) -> String;
    /// How to name the rank in a message, e.g. `rank 3 (pid 1234)`.
    fn describe(&self, rank: usize) -> String;
    /// Only the first `n` ranks are needed (the grid is small): the others may be sent away.
    fn keep(&mut self, n: usize) -> Result<()>;
    /// Tells every rank there is no more work, without waiting: they finish and exit.
    fn close(&mut self);
    /// Waits until every rank has exited (after [`Transport::close`]).
    fn wait(&mut self);
    /// The spec passed its first checks and is about to be sent to the ranks; `commands`:
    /// whether the sweep runs a `[command]`. A transport that chooses how its ranks run by
    /// the sweep (`backend::local::SoloRank`) starts them now.
    fn spec_known(&mut self, _commands: bool) {}
    /// The process groups of the ranks on this node (what a node agent may pause).
    fn process_groups(&self) -> Vec<u32> {
        Vec::new()
    }
}

/// Sends `message` to every rank (a rank that cannot be reached is noticed later, by the
/// scheduler).
pub fn broadcast(transport: &mut dyn Transport, message: &ToRank) {
    for rank in 0..transport.ranks() {
        transport.send(rank, message);
    }
}

/// Where the scheduler reports what it sees; it knows no terminal.
pub trait Observer {
    /// Whether the user asked to stop (checked between events).
    fn interrupted(&self) -> bool;
    /// `combos` more combos are finished.
    fn advanced(&mut self, combos: u64);
    /// A line worth telling the user (a rank died and its work was moved).
    fn note(&mut self, line: &str);
}

/// What the scheduler hands over for each finished chunk: its ids, its rows, the byte
/// offsets of the rows the rank preselected (when asked to), and its block sums.
pub type OnRows<'a> = dyn FnMut(Range<u64>, String, Option<Vec<usize>>, ChunkBlocks) -> Result<()> + 'a;

/// The chunks of one sweep and where they are.
pub struct Scheduler {
    pending: VecDeque<Range<u64>>,
    in_flight: Vec<VecDeque<Range<u64>>>,
    alive: Vec<bool>,
    failures: HashMap<u64, u32>,
    /// Block sums each combo's rows come with (`2·S`, or 0).
    sums_per_combo: usize,
}

impl Scheduler {
    /// A schedule of `chunks` over `ranks` ranks, all alive, nothing sent yet.
    pub fn new(chunks: VecDeque<Range<u64>>, ranks: usize) -> Scheduler {
        Scheduler {
            pending: chunks,
            in_flight: vec![VecDeque::new(); ranks],
            alive: vec![true; ranks],
            failures: HashMap::new(),
            sums_per_combo: 0,
        }
    }

    /// Rows come with `n` block sums per combo ([`ChunkBlocks`]); a rank that sends a
    /// different number is broken.
    pub fn expect_block_sums(mut self, n: usize) -> Scheduler {
        self.sums_per_combo = n;
        self
    }

    /// Sends every live rank its first chunks (they wait in its input until it is ready),
    /// so that ranks compute while the caller prepares its output.
    pub fn start(&mut self, transport: &mut dyn Transport) {
        for rank in 0..self.alive.len() {
            self.feed(rank, transport);
        }
    }

    /// Runs until every chunk's rows were handed to `on_rows`. Fails when a rank reports an
    /// error, sends rows it was not given, every rank is gone, a chunk keeps killing ranks,
    /// or the observer says the user interrupted (then: [`Failure::Interrupted`]).
    pub fn run(
        &mut self,
        transport: &mut dyn Transport,
        observer: &mut dyn Observer,
        on_rows: &mut OnRows,
    ) -> Result<()> {
        self.start(transport);
        while self.outstanding() > 0 {
            if observer.interrupted() {
                return Err(Failure::Interrupted("interrupted".into()));
            }
            let Some(event) = transport.next_event(POLL)? else { continue };
            let event = event.formatted();
            // Ranks sent away before the sweep (more than the grid needs) may still report.
            let (Event::Message(rank, _) | Event::Gone(rank, _) | Event::Unformatted(rank, ..)) = event;
            if rank >= self.alive.len() {
                continue;
            }
            match event {
                Event::Message(rank, FromRank::Ready) => self.feed(rank, transport),
                Event::Message(rank, FromRank::Rows { start, end, rows, best, blocks }) => {
                    let name = || transport.describe(rank);
                    let Some(at) = self.in_flight[rank].iter().position(|c| c.start == start && c.end == end) else {
                        return Err(Failure::runtime(format!("{} sent rows {start}..{end} it was not given", name())));
                    };
                    if memchr::memchr_iter(b'\n', rows.as_bytes()).count() as u64 != end - start {
                        return Err(Failure::runtime(format!(
                            "{} sent a wrong number of rows for {start}..{end}",
                            name()
                        )));
                    }
                    if blocks.0.len() as u64 != (end - start) * self.sums_per_combo as u64 {
                        return Err(Failure::runtime(format!(
                            "{} sent {} block sums for {start}..{end}, expected {} per combo",
                            name(),
                            blocks.0.len(),
                            self.sums_per_combo
                        )));
                    }
                    self.in_flight[rank].remove(at);
                    on_rows(start..end, rows, best, blocks)?;
                    observer.advanced(end - start);
                    self.feed(rank, transport);
                }
                Event::Message(rank, FromRank::Error(message)) => {
                    // A signal to the whole job (mpirun passes Ctrl-C on) stops ranks too.
                    if observer.interrupted() {
                        return Err(Failure::Interrupted("interrupted".into()));
                    }
                    return Err(Failure::runtime(format!("{} failed: {message}", transport.describe(rank))));
                }
                Event::Gone(rank, why) => self.lose(rank, &why, transport, observer)?,
                Event::Unformatted(..) => unreachable!("formatted above"),
            }
        }
        Ok(())
    }

    /// Combos not yet handed over (queued or in flight).
    pub fn outstanding(&self) -> u64 {
        self.pending.iter().chain(self.in_flight.iter().flatten()).map(|c| c.end - c.start).sum()
    }

    /// A rank is gone: its chunks go back to the front of the queue for the others.
    fn lose(
        &mut self,
        rank: usize,
        why: &str,
        transport: &mut dyn Transport,
        observer: &mut dyn Observer,
    ) -> Result<()> {
        if !self.alive[rank] && self.in_flight[rank].is_empty() {
            return Ok(());
        }
        self.alive[rank] = false;
        let name = transport.describe(rank);
        let status = transport.retire(rank);
        let lost: Vec<Range<u64>> = self.in_flight[rank].drain(..).collect();
        let lost_combos: u64 = lost.iter().map(|c| c.end - c.start).sum();
        for chunk in lost.into_iter().rev() {
            let count = self.failures.entry(chunk.start).or_default();
            *count += 1;
            if *count >= MAX_CHUNK_FAILURES {
                return Err(Failure::runtime(format!(
                    "combos {}..{} were running on {MAX_CHUNK_FAILURES} ranks that all died; giving up",
                    chunk.start, chunk.end
                )));
            }
            self.pending.push_front(chunk);
        }
        let survivors = self.alive.iter().filter(|&&a| a).count();
        if self.outstanding() > 0 {
            observer.note(&format!(
                "sweeprun: {name} {why} and exited ({status}); its {} {} to the {}",
                crate::report::counted(lost_combos, "unfinished combo"),
                if lost_combos == 1 { "goes" } else { "go" },
                crate::report::counted(survivors as u64, "other rank")
            ));
            if survivors == 0 {
                return Err(Failure::runtime("every rank has exited; the sweep cannot finish"));
            }
        }
        for other in 0..self.alive.len() {
            self.feed(other, transport);
        }
        Ok(())
    }

    /// Tops up a rank's in-flight chunks from the queue.
    fn feed(&mut self, rank: usize, transport: &mut dyn Transport) {
        while self.alive[rank] && self.in_flight[rank].len() < IN_FLIGHT_PER_RANK {
            let Some(chunk) = self.pending.pop_front() else { return };
            if transport.send(rank, &ToRank::Chunk { start: chunk.start, end: chunk.end }) {
                self.in_flight[rank].push_back(chunk);
            } else {
                // The rank is gone; its Gone event requeues what it held.
                self.pending.push_front(chunk);
                self.alive[rank] = false;
            }
        }
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

    /// How a mock rank behaves.
    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    enum Behaviour {
        /// Computes every chunk it is sent.
        Works,
        /// Dies (connection closes) after finishing this many chunks.
        DiesAfter(usize),
        /// Dies on any chunk that contains this id.
        DiesOn(u64),
        /// Sends one row too few.
        ShortRows,
        /// Reports an error on its first chunk.
        Fails,
    }

    /// Ranks simulated in memory: chunks sent are queued per rank; each call of
    /// `next_event` lets the ranks act in turn (round robin), one chunk each.
    struct MockTransport {
        behaviour: Vec<Behaviour>,
        inbox: Vec<VecDeque<Range<u64>>>,
        done: Vec<usize>,
        gone: Vec<bool>,
        events: VecDeque<Event>,
        turn: usize,
        retired: Vec<usize>,
    }

    impl MockTransport {
        fn new(behaviour: &[Behaviour]) -> MockTransport {
            let n = behaviour.len();
            MockTransport {
                behaviour: behaviour.to_vec(),
                inbox: vec![VecDeque::new(); n],
                done: vec![0; n],
                gone: vec![false; n],
                // Every rank says READY first, as real ranks do once they have the data.
                events: (0..n).map(|r| Event::Message(r, FromRank::Ready)).collect(),
                turn: 0,
                retired: Vec::new(),
            }
        }

        fn act(&mut self, rank: usize) {
            let Some(chunk) = self.inbox[rank].pop_front() else { return };
            let rows: String = chunk.clone().map(|id| format!("{id},row\n")).collect();
            let die = |gone: &mut bool, events: &mut VecDeque<Event>| {
                *gone = true;
                events.push_back(Event::Gone(rank, "closed its output".into()));
            };
            match self.behaviour[rank] {
                Behaviour::DiesAfter(n) if self.done[rank] == n => die(&mut self.gone[rank], &mut self.events),
                Behaviour::DiesOn(id) if chunk.contains(&id) => die(&mut self.gone[rank], &mut self.events),
                Behaviour::Fails => {
                    self.events.push_back(Event::Message(rank, FromRank::Error("no memory".into())));
                }
                Behaviour::ShortRows => {
                    let short = rows.split_inclusive('\n').skip(1).collect();
                    self.events.push_back(Event::Message(
                        rank,
                        FromRank::Rows {
                            start: chunk.start,
                            end: chunk.end,
                            rows: short,
                            best: None,
                            blocks: ChunkBlocks::default(),
                        },
                    ));
                }
                _ => {
                    self.done[rank] += 1;
                    self.events.push_back(Event::Message(
                        rank,
                        FromRank::Rows {
                            start: chunk.start,
                            end: chunk.end,
                            rows,
                            best: None,
                            blocks: ChunkBlocks::default(),
                        },
                    ));
                }
            }
        }
    }

    impl Transport for MockTransport {
        fn ranks(&self) -> usize {
            self.behaviour.len()
        }

        fn send(&mut self, rank: usize, message: &ToRank) -> bool {
            if self.gone[rank] {
                return false;
            }
            let ToRank::Chunk { start, end } = message else { panic!("the scheduler sends only chunks") };
            self.inbox[rank].push_back(*start..*end);
            true
        }

        fn next_event(&mut self, _timeout: Duration) -> Result<Option<Event>> {
            let n = self.behaviour.len();
            for _ in 0..n {
                if !self.events.is_empty() {
                    break;
                }
                let rank = self.turn % n;
                self.turn += 1;
                if !self.gone[rank] {
                    self.act(rank);
                }
            }
            match self.events.pop_front() {
                Some(event) => Ok(Some(event)),
                None if self.gone.iter().all(|&g| g) => Err(Failure::runtime("every connection is gone")),
                None => Ok(None),
            }
        }

        fn retire(&mut self, rank: usize) -> String {
            self.retired.push(rank);
            "killed by signal 9".into()
        }

        fn describe(&self, rank: usize) -> String {
            format!("mock rank {rank}")
        }

        fn keep(&mut self, n: usize) -> Result<()> {
            self.behaviour.truncate(n);
            Ok(())
        }

        fn close(&mut self) {}

        fn wait(&mut self) {}
    }

    #[derive(Default)]
    struct Recorder {
        advanced: u64,
        notes: Vec<String>,
        interrupt_after: Option<u64>,
    }

    impl Observer for Recorder {
        fn interrupted(&self) -> bool {
            self.interrupt_after.is_some_and(|n| self.advanced >= n)
        }
        fn advanced(&mut self, combos: u64) {
            self.advanced += combos;
        }
        fn note(&mut self, line: &str) {
            self.notes.push(line.to_string());
        }
    }

    /// Runs a sweep of `combos` ids in chunks of `chunk` over mock ranks; returns the
    /// result, the ids handed over (in order of arrival), the observer and the transport.
    fn sweep(
        combos: u64,
        chunk: u64,
        behaviour: &[Behaviour],
        observer: &mut Recorder,
    ) -> (Result<()>, Vec<u64>, MockTransport) {
        let chunks = chunks_of_remaining(&vec![false; combos as usize], Chunking::Fixed(chunk));
        let mut transport = MockTransport::new(behaviour);
        let mut scheduler = Scheduler::new(chunks, behaviour.len());
        let mut ids = Vec::new();
        let result = scheduler.run(&mut transport, observer, &mut |range, rows, _, _| {
            let listed: Vec<u64> = rows.lines().map(|l| l.split(',').next().unwrap().parse().unwrap()).collect();
            assert_eq!(listed, range.clone().collect::<Vec<_>>(), "rows belong to their chunk");
            ids.extend(range);
            Ok(())
        });
        (result, ids, transport)
    }

    fn exactly_once(ids: &[u64], combos: u64) -> bool {
        let mut sorted = ids.to_vec();
        sorted.sort_unstable();
        sorted == (0..combos).collect::<Vec<_>>()
    }

    #[test]
    fn every_id_is_handed_over_once_by_healthy_ranks() {
        let mut observer = Recorder::default();
        let (result, ids, _) = sweep(1000, 7, &[Behaviour::Works; 4], &mut observer);
        result.unwrap();
        assert!(exactly_once(&ids, 1000));
        assert_eq!(observer.advanced, 1000);
        assert!(observer.notes.is_empty());
    }

    #[test]
    fn a_dead_ranks_chunks_are_rerun_by_the_others_exactly_once() {
        let mut observer = Recorder::default();
        let behaviour = [Behaviour::Works, Behaviour::DiesAfter(3), Behaviour::Works, Behaviour::DiesAfter(0)];
        let (result, ids, transport) = sweep(500, 10, &behaviour, &mut observer);
        result.unwrap();
        assert!(exactly_once(&ids, 500), "no id lost or repeated");
        let mut retired = transport.retired.clone();
        retired.sort_unstable();
        assert_eq!(retired, vec![1, 3]);
        assert_eq!(observer.notes.len(), 2, "{:?}", observer.notes);
        assert!(
            observer.notes.iter().all(|n| n.contains("unfinished combos go to the 2 other ranks")
                || n.contains("unfinished combos go to the 3 other ranks")),
            "{:?}",
            observer.notes
        );
    }

    #[test]
    fn a_chunk_that_kills_every_rank_it_meets_aborts_the_sweep() {
        let mut observer = Recorder::default();
        let (result, _, _) = sweep(100, 10, &[Behaviour::DiesOn(42); 4], &mut observer);
        let message = result.unwrap_err().to_string();
        assert_eq!(message, "combos 40..50 were running on 3 ranks that all died; giving up");
    }

    #[test]
    fn the_last_rank_dying_ends_the_sweep_with_a_clear_error() {
        let mut observer = Recorder::default();
        let (result, ids, _) = sweep(100, 10, &[Behaviour::DiesAfter(2)], &mut observer);
        assert_eq!(result.unwrap_err(), Failure::runtime("every rank has exited; the sweep cannot finish"));
        assert_eq!(ids, (0..20).collect::<Vec<_>>(), "what arrived before is kept");
    }

    #[test]
    fn wrong_rows_and_rank_errors_fail_the_sweep_naming_the_rank() {
        let mut observer = Recorder::default();
        let (result, ..) = sweep(100, 10, &[Behaviour::ShortRows], &mut observer);
        assert_eq!(result.unwrap_err().to_string(), "mock rank 0 sent a wrong number of rows for 0..10");
        let (result, ..) = sweep(100, 10, &[Behaviour::Works, Behaviour::Fails], &mut observer);
        assert_eq!(result.unwrap_err().to_string(), "mock rank 1 failed: no memory");
    }

    #[test]
    fn an_interrupt_stops_the_sweep_between_events() {
        let mut observer = Recorder { interrupt_after: Some(30), ..Recorder::default() };
        let (result, ids, _) = sweep(1000, 10, &[Behaviour::Works; 2], &mut observer);
        assert!(matches!(result, Err(Failure::Interrupted(_))));
        assert_eq!(ids.len(), 30, "stopped at the first check after 30 combos");
    }

    #[test]
    fn rows_for_a_chunk_never_given_are_refused() {
        let mut transport = MockTransport::new(&[Behaviour::Works]);
        let rows = FromRank::Rows { start: 5, end: 6, rows: "5\n".into(), best: None, blocks: ChunkBlocks::default() };
        transport.events.push_back(Event::Message(0, rows));
        let mut scheduler = Scheduler::new(std::iter::once(0..5).collect(), 1);
        let error = scheduler.run(&mut transport, &mut Recorder::default(), &mut |_, _, _, _| Ok(())).unwrap_err();
        assert_eq!(error.to_string(), "mock rank 0 sent rows 5..6 it was not given");
    }

    #[test]
    fn rows_with_the_wrong_number_of_block_sums_are_refused() {
        for (blocks, expected) in
            [(vec![1.0; 8], None), (vec![1.0; 7], Some("sent 7 block sums")), (vec![], Some("sent 0"))]
        {
            let mut transport = MockTransport::new(&[Behaviour::Works]);
            let rows =
                FromRank::Rows { start: 0, end: 2, rows: "0\n1\n".into(), best: None, blocks: ChunkBlocks(blocks) };
            // Queued before the rank's READY is handled: the scheduler has sent 0..2 by then.
            transport.events.push_back(Event::Message(0, rows));
            let mut scheduler = Scheduler::new(std::iter::once(0..2).collect(), 1).expect_block_sums(4);
            let mut got = Vec::new();
            let result = scheduler.run(&mut transport, &mut Recorder::default(), &mut |ids, _, _, sums| {
                got.push((ids, sums.0.len()));
                Ok(())
            });
            match expected {
                None => assert_eq!((result.is_ok(), got), (true, vec![(0..2, 8)])),
                Some(text) => {
                    let error = result.unwrap_err().to_string();
                    assert!(error.starts_with(&format!("mock rank 0 {text}")), "{error}");
                    assert!(error.ends_with("for 0..2, expected 4 per combo"), "{error}");
                }
            }
        }
    }
}
