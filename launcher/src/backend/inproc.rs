//! A rank as a thread of the launcher's own process, linked by channels.
//!
//! Under MPI, rank 0 schedules and writes the table, which leaves most of its core idle;
//! a thread rank computes there too, so 16 ranks on 16 cores keep every core busy. Every
//! other MPI rank computes in such a thread as well, while its main thread moves the
//! frames, so a chunk's rows travel while the next chunk is computed. The
//! thread runs the same loop as every rank ([`crate::worker::serve`]); a panic in it is
//! reported as the rank being gone, like a crashed rank process.

use crate::protocol::{FromRank, ToRank};
use crate::sched::Event;
use crate::worker::{self, RankLink};
use std::sync::mpsc;

struct ChannelLink {
    index: usize,
    inbox: mpsc::Receiver<ToRank>,
    events: mpsc::Sender<Event>,
}

impl RankLink for ChannelLink {
    fn receive(&mut self) -> Result<Option<ToRank>, String> {
        // The sender dropped: no more work.
        Ok(self.inbox.recv().ok())
    }

    fn send(&mut self, message: FromRank) -> Result<(), String> {
        self.events.send(Event::Message(self.index, message)).map_err(|_| "the scheduler is gone".to_string())
    }
}

/// Starts rank `index` as a thread that reports to `events`; returns its inbox. Dropping
/// the inbox's sender ends the rank once its current chunk is done. `report` (the
/// `--report-bindings` line) is printed once the sweep arrives.
pub fn start(index: usize, events: mpsc::Sender<Event>, report: Option<String>) -> mpsc::Sender<ToRank> {
    let (inbox_tx, inbox) = mpsc::channel();
    std::thread::Builder::new()
        .name(format!("rank {index}"))
        .spawn(move || {
            let gone = events.clone();
            let mut link = ChannelLink { index, inbox, events };
            let served = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                worker::serve_reporting_errors(&mut link, report.as_deref())
            }));
            if served.is_err() {
                let _ = gone.send(Event::Gone(index, "panicked".into()));
            }
        })
        .expect("a thread can be started");
    inbox_tx
}
