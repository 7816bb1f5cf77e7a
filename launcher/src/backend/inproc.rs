//! A rank as a thread of the launcher's own process, linked by channels.
//!
//! Under MPI, rank 0 schedules and writes the table, which leaves most of its core idle;
//! a thread rank computes there too, so 16 ranks on 16 cores keep every core busy. Every
//! other MPI rank computes in such a thread as well, while its main thread moves the
//! frames, so a chunk's rows travel while the next chunk is computed. The
//! thread runs the same loop as every rank ([`crate::worker::serve`]); a panic in it is
//! reported as the rank being gone, like a crashed rank process.

use crate::error::Failure;
use crate::protocol::{ChunkBlocks, FromRank, ToRank};
use crate::sched::{Event, Transport};
use crate::table::RowWriter;
use crate::worker::{self, RankLink};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

struct ChannelLink {
    index: usize,
    inbox: mpsc::Receiver<ToRank>,
    events: mpsc::Sender<Event>,
    /// Whether rows go to the scheduler as values ([`Event::Unformatted`]): when the
    /// scheduler runs in this process and has a core to spare.
    defer: bool,
}

impl RankLink for ChannelLink {
    fn receive(&mut self) -> Result<Option<ToRank>, String> {
        // The sender dropped: no more work.
        Ok(self.inbox.recv().ok())
    }

    fn send(&mut self, message: FromRank) -> Result<(), String> {
        self.events.send(Event::Message(self.index, message)).map_err(|_| "the scheduler is gone".to_string())
    }

    fn defers_formatting(&self) -> bool {
        self.defer
    }

    fn send_rows(&mut self, start: u64, end: u64, rows: &mut RowWriter, blocks: ChunkBlocks) -> Result<(), String> {
        let event = if rows.is_deferred() {
            Event::Unformatted(self.index, start..end, Box::new(rows.take_raw()), blocks)
        } else {
            let (rows, best) = rows.take();
            Event::Message(self.index, FromRank::Rows { start, end, rows, best, blocks })
        };
        self.events.send(event).map_err(|_| "the scheduler is gone".to_string())
    }
}

/// Starts rank `index` as a thread that reports to `events`; returns its inbox. Dropping
/// the inbox's sender ends the rank once its current chunk is done. `report` (the
/// `--report-bindings` line) is printed once the sweep arrives.
pub fn start(index: usize, events: mpsc::Sender<Event>, report: Option<String>) -> mpsc::Sender<ToRank> {
    spawn(index, events, false, move || report).0
}

/// [`start`], with `setup` run first in the new thread (it pins the thread, and returns
/// the `--report-bindings` line); also returns the thread's handle.
fn spawn(
    index: usize,
    events: mpsc::Sender<Event>,
    defer: bool,
    setup: impl FnOnce() -> Option<String> + Send + 'static,
) -> (mpsc::Sender<ToRank>, JoinHandle<()>) {
    let (inbox_tx, inbox) = mpsc::channel();
    let thread = std::thread::Builder::new()
        .name(format!("rank {index}"))
        // A rank process's main thread has 8 MB of stack; a rank thread gets as much.
        .stack_size(8 << 20)
        .spawn(move || {
            let gone = events.clone();
            let mut link = ChannelLink { index, inbox, events, defer };
            let served = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let report = setup();
                worker::serve_reporting_errors(&mut link, report.as_deref())
            }));
            if served.is_err() {
                let _ = gone.send(Event::Gone(index, "panicked".into()));
            }
        })
        .expect("a thread can be started");
    (inbox_tx, thread)
}

/// The local backend's single rank as a thread of the launcher (`-np 1`, see
/// `backend::local::SoloRank` for when): no process to start (on a small VM `fork`+`exec`
/// and the exit of a rank process cost a few ms, a large part of a short sweep), and its
/// rows reach the ledger without being framed, piped and parsed.
///
/// Pinned like a rank process (the thread alone: the launcher's other threads keep their
/// affinity). Unlike a rank process it cannot be paused by a node agent apart from the
/// launcher, which is why a sweep under an agent keeps a rank process.
pub struct ThreadRank {
    inbox: Option<mpsc::Sender<ToRank>>,
    events: mpsc::Receiver<Event>,
    thread: Option<JoinHandle<()>>,
}

impl ThreadRank {
    /// Starts the rank thread, pinned to `pin` if given; with `report_bindings` it prints
    /// its `--report-bindings` line (the launcher's pid, the thread's CPUs) once the sweep
    /// arrives.
    pub fn start(pin: Option<usize>, report_bindings: bool) -> ThreadRank {
        let (events_tx, events) = mpsc::channel();
        // The launcher's thread only waits for rows at -np 1: it formats them.
        let (inbox, thread) = spawn(0, events_tx, true, move || {
            // The machine as the launcher may use it, seen before pinning narrows the view.
            let machine = report_bindings.then(worker::machine_view);
            if let Some(cpu) = pin {
                if let Err(e) = sweeprun_hw::topology::pin_current_process(cpu) {
                    say!("sweeprun rank: cannot pin to CPU {cpu}: {e} (running unpinned)");
                }
            }
            machine.map(|machine| worker::binding_report(0, &machine))
        });
        ThreadRank { inbox: Some(inbox), events, thread: Some(thread) }
    }
}

impl Transport for ThreadRank {
    fn ranks(&self) -> usize {
        1
    }

    fn send(&mut self, rank: usize, message: &ToRank) -> bool {
        rank == 0 && self.inbox.as_ref().is_some_and(|inbox| inbox.send(message.clone()).is_ok())
    }

    fn next_event(&mut self, timeout: Duration) -> crate::error::Result<Option<Event>> {
        match self.events.recv_timeout(timeout) {
            Ok(event) => Ok(Some(event)),
            Err(mpsc::RecvTimeoutError::Timeout) => Ok(None),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                Err(Failure::runtime("every rank has exited; the sweep cannot finish"))
            }
        }
    }

    fn retire(&mut self, _rank: usize) -> String {
        // Gone means the thread panicked (and so has ended): nothing to stop.
        self.inbox = None;
        "a thread of the launcher".into()
    }

    fn describe(&self, rank: usize) -> String {
        format!("rank {rank} (a thread of the launcher)")
    }

    fn keep(&mut self, _n: usize) -> crate::error::Result<()> {
        Ok(())
    }

    fn close(&mut self) {
        self.inbox = None;
    }

    fn wait(&mut self) {
        self.inbox = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
