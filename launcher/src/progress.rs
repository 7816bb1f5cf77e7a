//! Sweep progress on stderr: a bar with rate and ETA on a terminal, plain lines otherwise.

use crate::report::counted;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

const PLAIN_LINE_EVERY: Duration = Duration::from_secs(2);

/// Progress of one sweep.
pub struct Progress {
    total: u64,
    done: u64,
    resumed: u64,
    started: Instant,
    last_line: Instant,
    bar: Option<ProgressBar>,
    /// Shown after the counts (e.g. the board's temperature and clock cap).
    suffix: String,
}

impl Progress {
    /// Starts reporting a sweep of `total` combos, `resumed` of which were already done.
    pub fn new(total: u64, resumed: u64) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} combos  {rate} combos/s  ETA {eta}  {msg}",
                )
                .expect("valid template")
                .with_key("rate", |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{:.0}", state.per_sec());
                }),
            );
            bar.set_position(resumed);
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        let now = Instant::now();
        Progress { total, done: resumed, resumed, started: now, last_line: now, bar, suffix: String::new() }
    }

    /// Sets what is shown after the counts (the bar's message, the end of plain lines).
    pub fn set_suffix(&mut self, suffix: String) {
        if suffix != self.suffix {
            if let Some(bar) = &self.bar {
                bar.set_message(suffix.clone());
            }
            self.suffix = suffix;
        }
    }

    /// Combos finished so far (resumed ones included).
    pub fn done(&self) -> u64 {
        self.done
    }

    /// Records `count` more finished combos.
    pub fn advance(&mut self, count: u64) {
        self.done += count;
        match &self.bar {
            Some(bar) => bar.set_position(self.done),
            None if self.last_line.elapsed() >= PLAIN_LINE_EVERY => {
                self.last_line = Instant::now();
                say!("sweeprun: {}", self.summary());
            }
            None => {}
        }
    }

    fn rate(&self) -> f64 {
        (self.done - self.resumed) as f64 / self.started.elapsed().as_secs_f64().max(1e-9)
    }

    fn summary(&self) -> String {
        let rate = self.rate();
        let left = (self.total - self.done) as f64 / rate.max(1e-9);
        let suffix = if self.suffix.is_empty() { String::new() } else { format!("; {}", self.suffix) };
        format!(
            "{}/{} ({:.0}%), {:.0} combos/s, ETA {:.1} s{suffix}",
            self.done,
            counted(self.total, "combo"),
            100.0 * self.done as f64 / self.total.max(1) as f64,
            rate,
            left
        )
    }

    /// Prints a line on stderr without garbling the bar.
    pub fn note(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => say!("{line}"),
        }
    }

    /// Clears the bar (if any) and prints the closing line.
    pub fn finish(&mut self, ranks: usize) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        let computed = self.done - self.resumed;
        let secs = self.started.elapsed().as_secs_f64();
        let resumed = if self.resumed > 0 { format!(" ({} from the journal)", self.resumed) } else { String::new() };
        say!(
            "sweeprun: {}{resumed}; computed {computed} in {secs:.2} s ({:.0} combos/s) on {}",
            counted(self.total, "combo"),
            self.rate(),
            counted(ranks as u64, "rank")
        );
    }

    /// Clears the bar without a closing line (on failure).
    pub fn abandon(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.abandon();
        }
    }
}
