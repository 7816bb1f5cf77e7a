//! Following a submitted sweep: the job's state from SLURM, its progress from the ledger's
//! files on the shared file system (rank 0 appends every row it receives, fsynced at
//! least every 0.5 s), shown with the same bar or lines as a local sweep.

use super::job::{self, JobInfo};
use super::JobRecord;
use crate::error::{Failure, Result};
use crate::ledger;
use crate::progress::Progress;
use crate::signals;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How often SLURM and the files are looked at.
fn poll_interval() -> Duration {
    let ms = std::env::var("SWEEPRUN_SLURM_POLL_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(500);
    Duration::from_millis(ms)
}

/// How long a job SLURM no longer knows may stay unknown before the follower gives up
/// (scontrol forgets a finished job after MinJobAge; without accounting, that is all).
const UNKNOWN_GRACE: Duration = Duration::from_secs(10);

/// How long the controller may stay out of reach (restarting, failing over, overloaded)
/// before the follower stops asking; the job itself is not affected either way.
const UNREACHABLE_LIMIT: Duration = Duration::from_secs(600);

/// The longest wait between two tries while the controller is out of reach.
const UNREACHABLE_BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Counts the newlines of a growing file, reading only what was appended since the last
/// look (starting over when the file was replaced or cut).
#[derive(Debug)]
struct LineCounter {
    path: PathBuf,
    identity: Option<(u64, u64)>,
    offset: u64,
    lines: u64,
}

impl LineCounter {
    fn new(path: PathBuf) -> LineCounter {
        LineCounter { path, identity: None, offset: 0, lines: 0 }
    }

    /// Lines now in the file (0 when there is none).
    fn count(&mut self) -> u64 {
        use std::os::unix::fs::MetadataExt;
        let Ok(mut file) = std::fs::File::open(&self.path) else {
            *self = LineCounter::new(std::mem::take(&mut self.path));
            return 0;
        };
        let Ok(meta) = file.metadata() else { return self.lines };
        let identity = Some((meta.dev(), meta.ino()));
        if identity != self.identity || meta.len() < self.offset {
            self.identity = identity;
            self.offset = 0;
            self.lines = 0;
        }
        if file.seek(SeekFrom::Start(self.offset)).is_err() {
            return self.lines;
        }
        let mut buffer = vec![0u8; 1 << 16];
        loop {
            match file.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    self.offset += n as u64;
                    self.lines += memchr::memchr_iter(b'\n', &buffer[..n]).count() as u64;
                }
            }
        }
        self.lines
    }
}

/// Rows of a running sweep on disk: the in-order table being written (a fresh sweep) or
/// the journal (everything of a resumed or command sweep; a fresh sweep's early chunks).
/// A command sweep's journal may hold a retried combo twice: the count is capped at the
/// total.
pub struct RowsOnDisk {
    /// An array sweep: its records are counted instead.
    records_of: Option<PathBuf>,
    journal: LineCounter,
    table: LineCounter,
    headers: bool,
    total: u64,
}

impl RowsOnDisk {
    /// For the sweep writing `out`.
    pub fn new(record: &JobRecord) -> RowsOnDisk {
        RowsOnDisk {
            records_of: record.array_job.as_ref().map(|_| record.out.clone()),
            journal: LineCounter::new(ledger::journal_path(&record.out)),
            table: LineCounter::new(ledger::table_stream_path(&record.out)),
            // A CSV table and a built-in strategy's CSV journal start with a header.
            headers: record.format == "csv" && !record.command_sweep,
            total: record.combos,
        }
    }

    /// Rows finished so far, by the files.
    pub fn count(&mut self) -> u64 {
        if let Some(out) = &self.records_of {
            return super::array_job::records_on_disk(out).min(self.total);
        }
        let minus_header = |lines: u64, headers: bool| if headers { lines.saturating_sub(1) } else { lines };
        let journal = minus_header(self.journal.count(), self.headers);
        let table = minus_header(self.table.count(), self.headers);
        // A chunk that came early is journaled at a sync and written to the table when its
        // turn comes: the two files overlap, so the larger count is the (lower) estimate.
        journal.max(table).min(self.total)
    }
}

/// How a followed job ended.
pub enum Ended {
    /// SLURM says COMPLETED.
    Completed,
    /// Any other final state (or SLURM forgot the job): the message says which.
    Failed(JobInfo),
    /// SLURM no longer knows the job and its table is not there.
    Unknown,
}

/// Follows job `record.job_id` until it ends (or Ctrl-C detaches): notes its state
/// changes, shows progress. Returns how it ended.
pub fn follow(record: &JobRecord) -> Result<Ended> {
    let mut rows = RowsOnDisk::new(record);
    let mut progress: Option<Progress> = None;
    let mut last: Option<JobInfo> = None;
    let mut unknown_since: Option<Instant> = None;
    let mut unreachable_since: Option<Instant> = None;
    let mut backoff = poll_interval();
    let note = |progress: &Option<Progress>, line: String| match progress {
        Some(p) => p.note(&line),
        None => say!("{line}"),
    };
    loop {
        if signals::interrupted() {
            if let Some(p) = progress.as_mut() {
                p.abandon();
            }
            return Err(Failure::Interrupted(format!(
                "detached; job {} goes on. Follow it again with `sweeprun collect {out}`, see its state with \
                 `sweeprun status {out}`, stop it with `sweeprun cancel {out}`",
                record.job_id,
                out = record.out.display()
            )));
        }
        let info = match job::ask(&record.job_id)? {
            job::Query::Known(info) => Some(info),
            job::Query::Unknown => None,
            job::Query::Unreachable(message) => {
                let since = match unreachable_since {
                    Some(since) => since,
                    None => {
                        note(
                            &progress,
                            format!("sweeprun: cannot reach SLURM ({message}); still trying, the job is not affected"),
                        );
                        *unreachable_since.insert(Instant::now())
                    }
                };
                if since.elapsed() >= UNREACHABLE_LIMIT {
                    if let Some(p) = progress.as_mut() {
                        p.abandon();
                    }
                    return Err(Failure::runtime(format!(
                        "SLURM has been out of reach for {} min ({message}); job {} may well go on: follow it again \
                         with `sweeprun collect {out}`",
                        UNREACHABLE_LIMIT.as_secs() / 60,
                        record.job_id,
                        out = record.out.display()
                    )));
                }
                sleep_unless_interrupted(backoff);
                backoff = (backoff * 2).min(UNREACHABLE_BACKOFF_MAX);
                continue;
            }
        };
        if unreachable_since.take().is_some() {
            note(&progress, "sweeprun: SLURM answers again".to_string());
            backoff = poll_interval();
        }
        let Some(info) = info else {
            // Forgotten long after it finished (MinJobAge): the files say how it went.
            let since = *unknown_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= UNKNOWN_GRACE || super::table_is_done(record) {
                if let Some(p) = progress.as_mut() {
                    p.abandon();
                }
                return Ok(Ended::Unknown);
            }
            std::thread::sleep(poll_interval());
            continue;
        };
        unknown_since = None;
        if last.as_ref().is_none_or(|l| l.state != info.state || l.restarts != info.restarts || l.held() != info.held())
        {
            note(&progress, describe(record, &info, last.as_ref()));
        }
        // An array sweep progresses while its gather job waits for it.
        if (info.state == "RUNNING" || record.array_job.is_some()) && progress.is_none() {
            let done = rows.count();
            progress = Some(Progress::new(record.combos, done));
        }
        if let Some(p) = progress.as_mut() {
            let done = rows.count();
            let shown = p.done();
            if done > shown {
                p.advance(done - shown);
            }
        }
        if info.finished() {
            if let Some(mut p) = progress.take() {
                p.abandon();
            }
            return Ok(if info.state == "COMPLETED" { Ended::Completed } else { Ended::Failed(info) });
        }
        last = Some(info);
        std::thread::sleep(poll_interval());
    }
}

/// Sleeps `total`, waking early on Ctrl-C (a long backoff must not delay the detach).
fn sleep_unless_interrupted(total: Duration) {
    let start = Instant::now();
    while start.elapsed() < total && !signals::interrupted() {
        std::thread::sleep(Duration::from_millis(100).min(total));
    }
}

/// A line for a state change of the job.
fn describe(record: &JobRecord, info: &JobInfo, before: Option<&JobInfo>) -> String {
    let id = &record.job_id;
    let requeued = before.is_some_and(|b| info.restarts > b.restarts);
    let reason =
        if info.reason.is_empty() || info.reason == "None" { String::new() } else { format!(" ({})", info.reason) };
    if requeued {
        return format!(
            "sweeprun: job {id} was requeued by SLURM (restart {}){reason}; when it runs again it resumes from the journal",
            info.restarts
        );
    }
    if info.held() {
        return format!(
            "sweeprun: job {id} is {}{reason}: it runs once released (`scontrol release {id}`)",
            info.state
        );
    }
    match info.state.as_str() {
        "RUNNING" => {
            format!("sweeprun: job {id} is running on {}", if info.nodes.is_empty() { "?" } else { &info.nodes })
        }
        state => format!("sweeprun: job {id} is {state}{reason}"),
    }
}

/// The last `sweeprun: error: ...` or `sweeprun: interrupted ...` line the job wrote.
pub fn last_sweeprun_failure(stderr: &Path) -> Option<String> {
    let text = std::fs::read_to_string(stderr).ok()?;
    text.lines()
        .rev()
        .find(|l| l.starts_with("sweeprun: error: ") || l.starts_with("sweeprun: interrupted"))
        .map(|l| l.trim_start_matches("sweeprun: error: ").trim_start_matches("sweeprun: ").to_string())
}

/// The last `count` non-blank lines of the job's stderr, indented, for a failure that did not
/// come from sweeprun (srun, OpenMPI start-up): the cause is usually in them.
pub fn stderr_tail(stderr: &Path, count: usize) -> Option<String> {
    let text = std::fs::read_to_string(stderr).ok()?;
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return None;
    }
    let tail = &lines[lines.len().saturating_sub(count)..];
    Some(tail.iter().map(|l| format!("  | {l}")).collect::<Vec<_>>().join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn the_stderr_tail_keeps_the_last_non_blank_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("err");
        assert_eq!(stderr_tail(&path, 3), None, "no file");
        std::fs::write(&path, "\n\n").unwrap();
        assert_eq!(stderr_tail(&path, 3), None, "only blank lines");
        std::fs::write(&path, "a\nb\n\nc\nd\n\n").unwrap();
        assert_eq!(stderr_tail(&path, 3).unwrap(), "  | b\n  | c\n  | d");
        assert_eq!(stderr_tail(&path, 9).unwrap(), "  | a\n  | b\n  | c\n  | d");
    }

    #[test]
    fn lines_are_counted_as_they_are_appended_and_again_when_the_file_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let mut counter = LineCounter::new(path.clone());
        assert_eq!(counter.count(), 0);
        let mut file = std::fs::File::create(&path).unwrap();
        file.write_all(b"a\nb\nc").unwrap();
        assert_eq!(counter.count(), 2);
        file.write_all(b"\nd\n").unwrap();
        assert_eq!(counter.count(), 4);
        std::fs::write(dir.path().join("k"), "x\n").unwrap();
        std::fs::rename(dir.path().join("k"), &path).unwrap();
        assert_eq!(counter.count(), 1, "a new file is counted from its start");
        std::fs::remove_file(&path).unwrap();
        assert_eq!(counter.count(), 0);
    }
}
