//! MPI ranks (cargo feature `mpi`, rsmpi): one process per rank, started by `mpirun` or
//! `srun --mpi=pmix`, all running `sweeprun run SPEC --backend mpi`.
//!
//! Rank 0 is the launcher: it checks the spec, reads and parses the data, runs the shared
//! scheduler ([`crate::sched`]) over [`MpiRanks`] and writes the table with the shared
//! ledger. It also computes, in a thread ([`super::inproc`]): its scheduling is a few
//! messages per chunk, so on 16 cores 16 ranks leave none idle. Every other rank serves
//! chunks ([`crate::worker::serve`]) in a thread too, its main thread moving the frames
//! (rows travel while the next chunk is computed), so the spec and data files
//! need to exist on rank 0's node only: the ranks get the effective spec and the parsed
//! data from rank 0 (checked against its BLAKE3 digest), never a stale copy of their own.
//!
//! Messages are the [`crate::protocol`] frames, one frame per MPI message (tag
//! `FRAME`, 0x5357); an empty message means "no more work" (rank 0 to a rank) and "done"
//! (the rank's answer), after which the rank finalizes MPI and exits 0. Only rank 0's
//! main thread calls MPI (`MPI_THREAD_FUNNELED`). Waiting ranks poll with short sleeps
//! rather than block in `MPI_Recv`, which in OpenMPI spins a core at 100 %.

use crate::backend::{inproc, Backend};
use crate::cli::RunArgs;
use crate::error::{Failure, Result};
use crate::protocol::{FromRank, ToRank};
use crate::sched::{Event, Transport};
use crate::worker;
use mpi::point_to_point::MatchedReceiveVec;
use mpi::topology::{Communicator, SimpleCommunicator};
use mpi::traits::{Destination, Source};
use mpi::Threading;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The tag of every sweeprun message.
const FRAME: mpi::Tag = 0x5357;
/// Longest sleep between polls while waiting for a message.
const MAX_POLL_SLEEP: Duration = Duration::from_millis(1);
/// How long rank 0 waits for the ranks' goodbyes after a failed sweep.
const FAILED_GOODBYE_WAIT: Duration = Duration::from_secs(3);

/// Runs this process's part of an MPI sweep; on rank 0 returns the summary (or the
/// failure) like a local sweep, on the others an empty summary.
pub fn run_in_world(args: &RunArgs) -> Result<String> {
    let Some((universe, _threading)) = mpi::initialize_with_threading(Threading::Funneled) else {
        return Err(Failure::runtime("MPI was already initialized"));
    };
    let world = universe.world();
    let size = usize::try_from(world.size()).unwrap_or(1);
    let rank = usize::try_from(world.rank()).unwrap_or(0);
    if let Some(expected) = super::mpirun::launcher_world_size() {
        if size == 1 && expected > 1 {
            // Every process is a world of its own; the one the launcher calls rank 0 says why.
            if super::mpirun::launcher_rank().is_some_and(|r| r != 0) {
                return Err(Failure::Usage(String::new()));
            }
            return Err(Failure::usage(format!(
                "--backend mpi: this sweeprun is built with {} but was started by another MPI's launcher \
                 ({expected} ranks were started, each sees a world of 1); start it with the matching mpirun, \
                 or let `sweeprun run ... --backend mpi` run it",
                super::mpirun::library_name()
            )));
        }
    }
    // mpirun bound this process already; the line is printed once the sweep arrives.
    let report = args.report_bindings.then(|| worker::binding_report(rank, &worker::whole_machine()));
    if rank == 0 {
        if let Some(report) = &report {
            say!("{report}");
        }
        let mut ranks = MpiRanks::new(&world, size);
        let result = crate::run::sweep(args, Backend::Mpi, &mut ranks, None);
        match result {
            Ok(summary) => Ok(summary),
            Err(failure) => {
                // Said now: mpirun may kill this process while the ranks say goodbye.
                crate::error::report(&failure);
                ranks.close();
                ranks.wait_at_most(FAILED_GOODBYE_WAIT);
                Err(failure.said())
            }
        }
    } else {
        // Registered with this node's agent while it serves; let go when it is done.
        let _guard = crate::thermal::RankGuard::start(&args.thermal, rank);
        serve_rank(&world, rank, report);
        Ok(String::new())
    }
}

/// Rank 0's view of the world: rank 0 is its own computing thread, ranks 1.. are MPI ranks.
pub struct MpiRanks<'a> {
    world: &'a SimpleCommunicator,
    size: usize,
    own_inbox: Option<mpsc::Sender<ToRank>>,
    own_events: mpsc::Receiver<Event>,
    /// Ranks told there is no more work.
    ended: Vec<bool>,
    /// Ranks that said they are done.
    done: Vec<bool>,
}

impl<'a> MpiRanks<'a> {
    /// Starts rank 0's computing thread; the other ranks are already waiting.
    pub fn new(world: &'a SimpleCommunicator, size: usize) -> MpiRanks<'a> {
        let (events_tx, own_events) = mpsc::channel();
        let own_inbox = Some(inproc::start(0, events_tx, None));
        let mut done = vec![false; size];
        done[0] = true;
        MpiRanks { world, size, own_inbox, own_events, ended: vec![false; size], done }
    }

    fn end(&mut self, rank: usize) {
        if std::mem::replace(&mut self.ended[rank], true) {
            return;
        }
        if rank == 0 {
            self.own_inbox = None;
        } else {
            self.world.process_at_rank(rank as mpi::Rank).send_with_tag(&[0u8; 0][..], FRAME);
        }
    }

    /// One message from an MPI rank, if one is waiting: `Some(None)` for a goodbye.
    fn poll_mpi(&mut self) -> Option<Option<Event>> {
        let probed = self.world.any_process().immediate_matched_probe_with_tag(FRAME)?;
        let (bytes, status) = probed.matched_receive_vec::<u8>();
        let rank = usize::try_from(status.source_rank()).unwrap_or(0);
        if bytes.is_empty() {
            if let Some(done) = self.done.get_mut(rank) {
                *done = true;
            }
            return Some(None);
        }
        Some(Some(match FromRank::read(&mut std::io::Cursor::new(bytes)) {
            Ok(Some(message)) => Event::Message(rank, message),
            Ok(None) => Event::Gone(rank, "sent an empty frame".into()),
            Err(e) => Event::Gone(rank, format!("sent a broken message ({e})")),
        }))
    }

    /// Waits for every rank's goodbye, at most `limit` (rows still arriving are dropped:
    /// the sweep is over).
    fn wait_at_most(&mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        let mut sleep = Backoff::new();
        while self.done.iter().any(|d| !d) && Instant::now() < deadline {
            match self.poll_mpi() {
                Some(_) => sleep = Backoff::new(),
                None => sleep.wait(),
            }
        }
    }
}

impl Transport for MpiRanks<'_> {
    fn ranks(&self) -> usize {
        self.size
    }

    fn send(&mut self, rank: usize, message: &ToRank) -> bool {
        if self.ended[rank] {
            return false;
        }
        if rank == 0 {
            return self.own_inbox.as_ref().is_some_and(|inbox| inbox.send(message.clone()).is_ok());
        }
        let mut frame = Vec::new();
        message.write(&mut frame).expect("writing to a Vec cannot fail");
        self.world.process_at_rank(rank as mpi::Rank).send_with_tag(&frame[..], FRAME);
        true
    }

    fn next_event(&mut self, timeout: Duration) -> Result<Option<Event>> {
        let deadline = Instant::now() + timeout;
        let mut sleep = Backoff::new();
        loop {
            match self.own_events.try_recv() {
                Ok(event) => return Ok(Some(event)),
                Err(mpsc::TryRecvError::Disconnected) if !self.ended[0] => {
                    self.ended[0] = true;
                    return Ok(Some(Event::Gone(0, "(rank 0's computing thread) stopped".into())));
                }
                Err(_) => {}
            }
            match self.poll_mpi() {
                Some(Some(event)) => return Ok(Some(event)),
                Some(None) => continue,
                None if Instant::now() >= deadline => return Ok(None),
                None => sleep.wait(),
            }
        }
    }

    fn retire(&mut self, rank: usize) -> String {
        // An MPI rank cannot be stopped from here; it is told there is no more work.
        self.end(rank);
        "no longer used".into()
    }

    fn describe(&self, rank: usize) -> String {
        format!("MPI rank {rank}")
    }

    fn keep(&mut self, n: usize) -> Result<()> {
        for rank in n..self.size {
            self.end(rank);
        }
        Ok(())
    }

    fn close(&mut self) {
        for rank in 0..self.size {
            self.end(rank);
        }
    }

    fn wait(&mut self) {
        self.close();
        self.wait_at_most(Duration::MAX / 4);
    }
}

/// A rank other than 0: computes in a thread ([`inproc`]) while this thread moves frames
/// between it and rank 0, so a chunk's rows travel (a large MPI send waits until rank 0
/// takes it) while the next chunk is computed. A failure is reported to rank 0 (an ERROR
/// frame), which tells the user and ends the sweep; this rank then exits 0 like the others,
/// so that mpirun's exit code is rank 0's.
fn serve_rank(world: &SimpleCommunicator, rank: usize, report: Option<String>) {
    let root = world.process_at_rank(0);
    let (events_tx, events) = mpsc::channel();
    let mut inbox = Some(inproc::start(rank, events_tx, report));
    let mut ended = false;
    let mut computing = true;
    let mut said_interrupted = false;
    let mut sleep = Backoff::new();
    let send = |message: FromRank| {
        let mut frame = Vec::new();
        message.write(&mut frame).expect("writing to a Vec cannot fail");
        root.send_with_tag(&frame[..], FRAME);
    };
    while !ended || computing {
        let mut busy = false;
        loop {
            match events.try_recv().map(Event::formatted) {
                Ok(Event::Message(_, message)) => {
                    send(message);
                    busy = true;
                }
                Ok(Event::Gone(_, why)) => send(FromRank::Error(format!("its computing thread {why}"))),
                Ok(Event::Unformatted(..)) => unreachable!("formatted above"),
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => {
                    computing = false;
                    break;
                }
            }
        }
        if !ended {
            if let Some(probed) = root.immediate_matched_probe_with_tag(FRAME) {
                let (bytes, _) = probed.matched_receive_vec::<u8>();
                busy = true;
                if bytes.is_empty() {
                    // No more work: the computing thread finishes and stops.
                    ended = true;
                    inbox = None;
                } else {
                    match ToRank::read(&mut std::io::Cursor::new(bytes)) {
                        Ok(Some(message)) => {
                            if let Some(inbox) = &inbox {
                                let _ = inbox.send(message);
                            }
                        }
                        _ => send(FromRank::Error("rank 0 sent a broken message".into())),
                    }
                }
            } else if crate::signals::interrupted() && !said_interrupted {
                // mpirun passes a Ctrl-C on as SIGTERM to every rank: rank 0 ends the sweep.
                said_interrupted = true;
                send(FromRank::Error("interrupted".into()));
            }
        }
        if busy {
            sleep = Backoff::new();
        } else {
            sleep.wait();
        }
    }
    drop(inbox);
    // Done: an empty message tells rank 0 this rank will not send again.
    root.send_with_tag(&[0u8; 0][..], FRAME);
}

/// Sleeps that grow from 20 us to [`MAX_POLL_SLEEP`] while nothing arrives: quick answers
/// when messages flow, little CPU when they do not.
struct Backoff(Duration);

impl Backoff {
    fn new() -> Backoff {
        Backoff(Duration::from_micros(20))
    }

    fn wait(&mut self) {
        std::thread::sleep(self.0);
        self.0 = (self.0 * 2).min(MAX_POLL_SLEEP);
    }
}
