//! The ledger: the append-only journal that makes sweeps resumable, the table written in
//! id order while the ranks work, and the final atomic write. It takes each chunk's rows
//! as text and knows neither how they were computed nor how they travelled (the scheduler,
//! [`crate::sched`], hands them over); formatting them is [`crate::table`]'s.
//!
//! While a fresh sweep runs, rows go straight into the final table, `<out>.partial.table`,
//! in combo-id order; a chunk that arrives ahead of its turn waits in memory and, if it is
//! still waiting at the next sync, is appended to the journal `<out>.partial`. Every sync
//! (at most 0.5 s or 8 MiB apart) fsyncs both, so each row received before it is on disk
//! exactly where a resume looks: the table's in-order prefix or the journal. Next to them,
//! `<out>.partial.json` fingerprints the sweep. On completion the table is fsynced and
//! renamed over `<out>`; a reader never sees a half-written table. A resumed sweep folds
//! the table's prefix into the journal and assembles the table from the journal at the end.

use crate::block_store::BlockStore;
use crate::error::{Failure, Result};
use crate::protocol::ChunkBlocks;
use crate::table::{row_id, OutputFormat};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// `<out>.partial`: the journal of finished rows.
pub fn journal_path(out: &Path) -> PathBuf {
    suffixed(out, ".partial")
}

/// `<out>.partial.json`: the fingerprint of the sweep that owns the journal.
pub fn journal_meta_path(out: &Path) -> PathBuf {
    suffixed(out, ".partial.json")
}

/// `<out>.meta.json`: the sidecar of a finished table.
pub fn sidecar_path(out: &Path) -> PathBuf {
    suffixed(out, ".meta.json")
}

/// `<out>.tearsheets/`: per-combo tearsheets.
pub fn tearsheet_dir(out: &Path) -> PathBuf {
    suffixed(out, ".tearsheets")
}

/// `<out>.runs/`: a `[command]` sweep's working directories (`<combo_id>/`) and its
/// records (`rows.jsonl`).
pub fn runs_dir(out: &Path) -> PathBuf {
    suffixed(out, ".runs")
}

/// `<out>.runs/rows.jsonl`: every combo's record of a finished `[command]` sweep (what
/// `--retry-failed` starts from once the journal is gone).
pub fn records_path(out: &Path) -> PathBuf {
    runs_dir(out).join("rows.jsonl")
}

/// `<out>.runs/records/`: the per-combo records of a `[command]` sweep run one combo per
/// process (`sweeprun __combo`, e.g. a SLURM array task each); gone once gathered.
pub fn combo_records_dir(out: &Path) -> PathBuf {
    runs_dir(out).join("records")
}

/// `<out>.runs/records/<combo_id>.json`: combo `id`'s record, written by `sweeprun __combo`.
/// Not inside the combo's working directory: that is emptied before every attempt and
/// removed after an `ok` one.
pub fn combo_record_path(out: &Path, id: u64) -> PathBuf {
    combo_records_dir(out).join(format!("{id}.json"))
}

fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// `<out>.partial.blocks`: the block sums of the finished combos ([`crate::block_store`]).
pub fn block_store_path(out: &Path) -> PathBuf {
    suffixed(out, ".partial.blocks")
}

/// `<out>.partial.table`: the final table being written in combo-id order.
pub fn table_stream_path(out: &Path) -> PathBuf {
    suffixed(out, ".partial.table")
}

/// The append-only journal of a running sweep.
#[derive(Debug)]
pub struct Journal {
    file: File,
    path: PathBuf,
    unsynced: bool,
}

/// How often (at most) rows received are fsynced while a sweep runs.
const SYNC_INTERVAL: Duration = Duration::from_millis(500);
/// ... or after this many bytes, whichever comes first.
const SYNC_BYTES: usize = 8 << 20;

impl Journal {
    /// Creates a new journal (failing if one exists), locks it and writes the header.
    pub fn create(path: &Path, format: OutputFormat, columns: &[String]) -> Result<Journal> {
        let file = OpenOptions::new()
            .create_new(true)
            .read(true)
            .append(true)
            .open(path)
            .map_err(|e| Failure::runtime(format!("cannot create {}: {e}", path.display())))?;
        let mut journal = Journal::locked(file, path)?;
        journal.write_header(format, columns)?;
        journal.sync()?;
        Ok(journal)
    }

    fn locked(file: File, path: &Path) -> Result<Journal> {
        match sweeprun_hw::process::try_lock_exclusive(&file) {
            Ok(true) => {}
            Ok(false) => {
                return Err(Failure::usage(format!(
                    "another sweeprun process is writing {}; wait for it or stop it first",
                    path.display()
                )))
            }
            // No locking on this platform: run on, as before locks existed.
            Err(_) => {}
        }
        Ok(Journal { file, path: path.to_path_buf(), unsynced: false })
    }

    fn write_header(&mut self, format: OutputFormat, columns: &[String]) -> Result<()> {
        if format == OutputFormat::Csv {
            self.append(&format!("{}\n", columns.join(",")))?;
        }
        Ok(())
    }

    /// Reopens (and locks) the journal of an interrupted sweep, folds in the rows of the
    /// interrupted table stream `table` (its in-order prefix; the file is then removed) and
    /// returns the journal with the ids it holds (`done[id]`) and their count. A torn last
    /// line (the launcher died mid-write) is cut off; a torn header is rewritten.
    pub fn reopen(
        path: &Path,
        table: &Path,
        format: OutputFormat,
        columns: &[String],
        combos: u64,
    ) -> Result<(Journal, Vec<bool>, u64)> {
        let shown = path.display();
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(path)
            .map_err(|e| Failure::usage(format!("cannot open {shown}: {e}")))?;
        let mut journal = Journal::locked(file, path)?;
        let mut text = String::new();
        journal.file.read_to_string(&mut text).map_err(|e| Failure::runtime(format!("cannot read {shown}: {e}")))?;
        let header = format!("{}\n", columns.join(","));
        let rows_start = match format {
            OutputFormat::Csv if text.starts_with(&header) => header.len(),
            // A header cut short: nothing after it can exist, start the file over.
            OutputFormat::Csv => 0,
            OutputFormat::JsonLines => 0,
        };
        let mut done = vec![false; combos as usize];
        let mut found = 0u64;
        let mut valid_end = rows_start;
        for line in text[rows_start..].split_inclusive('\n') {
            let id = line.strip_suffix('\n').and_then(|l| row_id(format, l)).filter(|&id| id < combos);
            let Some(id) = id else { break };
            if !done[id as usize] {
                done[id as usize] = true;
                found += 1;
            }
            valid_end += line.len();
        }
        if valid_end < text.len() || rows_start == 0 && format == OutputFormat::Csv {
            if valid_end < text.len() {
                say!(
                    "sweeprun: {shown}: dropping {} bytes of an incomplete last row (recomputed)",
                    text.len() - valid_end
                );
            }
            journal
                .file
                .set_len(valid_end as u64)
                .map_err(|e| Failure::runtime(format!("cannot truncate {shown}: {e}")))?;
            journal.file.seek(SeekFrom::End(0)).map_err(|e| Failure::runtime(format!("{shown}: {e}")))?;
            if valid_end == 0 {
                journal.write_header(format, columns)?;
            }
        }
        found += journal.fold_table(table, format, &header, &mut done)?;
        Ok((journal, done, found))
    }

    /// Appends the rows of an interrupted table stream that the journal lacks, syncs, and
    /// removes the stream. Returns how many rows were added.
    fn fold_table(&mut self, table: &Path, format: OutputFormat, header: &str, done: &mut [bool]) -> Result<u64> {
        let text = match std::fs::read(table) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(Failure::runtime(format!("cannot read {}: {e}", table.display()))),
        };
        let rows = match format {
            OutputFormat::Csv => text.strip_prefix(header).unwrap_or(""),
            OutputFormat::JsonLines => &text,
        };
        let mut added = String::new();
        let mut count = 0;
        // Only the prefix of complete rows in id order counts: the stream writes nothing else.
        for (expected, line) in (0u64..).zip(rows.split_inclusive('\n')) {
            let id = line.strip_suffix('\n').and_then(|l| row_id(format, l));
            if id != Some(expected) || expected as usize >= done.len() {
                break;
            }
            if !done[expected as usize] {
                done[expected as usize] = true;
                added.push_str(line);
                count += 1;
            }
        }
        self.append(&added)?;
        self.sync()?;
        std::fs::remove_file(table).map_err(|e| Failure::runtime(format!("cannot remove {}: {e}", table.display())))?;
        Ok(count)
    }

    /// Appends formatted rows (one write; durable at the next [`Journal::sync`]).
    pub fn append(&mut self, rows: &str) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        self.file
            .write_all(rows.as_bytes())
            .map_err(|e| Failure::runtime(format!("cannot write {}: {e}", self.path.display())))?;
        self.unsynced = true;
        Ok(())
    }

    /// Forces appended rows to disk.
    pub fn sync(&mut self) -> Result<()> {
        if self.unsynced {
            self.file.sync_data().map_err(|e| Failure::runtime(format!("cannot sync {}: {e}", self.path.display())))?;
            self.unsynced = false;
        }
        Ok(())
    }
}

/// Fsyncs the directory holding `path`, so that a name created or renamed there survives
/// a crash.
fn sync_parent_directory(path: &Path) -> std::io::Result<()> {
    match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

/// Writes `contents` to `path` atomically: temp file `<path>.tmp` in the same directory
/// (callers hold the journal lock, so the name is theirs), fsync, rename, fsync the directory.
pub fn write_atomically(path: &Path, contents: &[u8]) -> Result<()> {
    let temp = suffixed(path, ".tmp");
    let result = (|| -> std::io::Result<()> {
        let mut file = File::create(&temp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)?;
        sync_parent_directory(path)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        Failure::runtime(format!("cannot write {}: {e}", path.display()))
    })
}

/// Builds the final table from a complete journal: rows sorted by combo id, every id in
/// `0..combos` exactly once. Returns the table text (header included for CSV).
pub fn assemble_table(journal: &Path, format: OutputFormat, columns: &[String], combos: u64) -> Result<String> {
    let text = std::fs::read_to_string(journal)
        .map_err(|e| Failure::runtime(format!("cannot read {}: {e}", journal.display())))?;
    let mut rows: Vec<Option<&str>> = vec![None; combos as usize];
    for line in text.lines() {
        if format == OutputFormat::Csv && line.starts_with("combo_id") {
            continue;
        }
        let id = row_id(format, line)
            .filter(|&id| id < combos)
            .ok_or_else(|| Failure::runtime(format!("{}: malformed row `{line}`", journal.display())))?;
        match rows[id as usize] {
            None => rows[id as usize] = Some(line),
            // A chunk re-run after a crash gives the same bytes; anything else is a bug.
            Some(first) if first == line => {}
            Some(_) => {
                return Err(Failure::runtime(format!(
                    "{} holds two different rows for combo {id}; delete it and run the sweep again",
                    journal.display()
                )))
            }
        }
    }
    if let Some(missing) = rows.iter().position(Option::is_none) {
        return Err(Failure::runtime(format!("internal error: combo {missing} has no row in {}", journal.display())));
    }
    let mut table = String::with_capacity(text.len());
    if format == OutputFormat::Csv {
        table.push_str(&columns.join(","));
        table.push('\n');
    }
    for row in rows.into_iter().flatten() {
        table.push_str(row);
        table.push('\n');
    }
    Ok(table)
}

/// The final table, written while the sweep runs: rows go to `<out>.partial.table` in
/// combo-id order as soon as the chunk that continues the order arrives (chunks are handed
/// out in id order, so little waits), hashed and ranked on the way. What is left at the
/// end is an fsync and a rename.
pub struct TableStream {
    path: PathBuf,
    file: File,
    next: u64,
    combos: u64,
    /// Chunks that arrived ahead of their turn, by first id.
    waiting: std::collections::BTreeMap<u64, Waiting>,
    unsynced: bool,
    /// Bytes written so far.
    written: u64,
    /// Bytes written since the last early writeback was started.
    unstarted: u64,
    hasher: blake3::Hasher,
    ranker: crate::report::Ranker,
}

struct Waiting {
    end: u64,
    rows: String,
    best: Option<Vec<usize>>,
    journaled: bool,
}

impl TableStream {
    /// Starts `<out>.partial.table` (replacing a stale one) with the header.
    pub fn create(
        out: &Path,
        format: OutputFormat,
        columns: &[String],
        combos: u64,
        ranker: crate::report::Ranker,
    ) -> Result<TableStream> {
        let path = table_stream_path(out);
        let file =
            File::create(&path).map_err(|e| Failure::runtime(format!("cannot create {}: {e}", path.display())))?;
        let mut stream = TableStream {
            path,
            file,
            next: 0,
            combos,
            waiting: std::collections::BTreeMap::new(),
            unsynced: false,
            written: 0,
            unstarted: 0,
            hasher: blake3::Hasher::new(),
            ranker,
        };
        if format == OutputFormat::Csv {
            let header = format!("{}\n", columns.join(","));
            stream.hasher.update(header.as_bytes());
            stream.write(&header)?;
        }
        Ok(stream)
    }

    /// One unbuffered write per chunk: rows written survive the launcher being killed.
    /// Their writeback starts once a few MiB have gathered (each start is an I/O request,
    /// a VM exit on virtual disks), so the syncs, and the last one on the critical path,
    /// find little left to write.
    fn write(&mut self, text: &str) -> Result<()> {
        const WRITEBACK_BYTES: u64 = 2 << 20;
        self.unsynced = true;
        self.file
            .write_all(text.as_bytes())
            .map_err(|e| Failure::runtime(format!("cannot write {}: {e}", self.path.display())))?;
        self.written += text.len() as u64;
        self.unstarted += text.len() as u64;
        if self.unstarted >= WRITEBACK_BYTES {
            sweeprun_hw::process::start_writeback(&self.file, self.written - self.unstarted, self.unstarted);
            self.unstarted = 0;
        }
        Ok(())
    }

    /// Writes the rows of combos `self.next..end`.
    fn emit(&mut self, end: u64, rows: &str, best: Option<&[usize]>) -> Result<()> {
        self.hasher.update(rows.as_bytes());
        match best {
            Some(best) => self
                .ranker
                .push_preselected(self.next, rows, end - self.next, best)
                .map_err(|e| Failure::runtime(format!("combos {}..{end}: {e}", self.next)))?,
            None => self.ranker.push_rows(self.next, rows),
        }
        self.next = end;
        self.write(rows)
    }

    /// Takes the rows of the chunk of combos `ids` (with the offsets of its preselected
    /// best rows, if the rank was asked for them).
    pub fn accept(&mut self, ids: Range<u64>, rows: String, best: Option<Vec<usize>>) -> Result<()> {
        if ids.start != self.next {
            self.waiting.insert(ids.start, Waiting { end: ids.end, rows, best, journaled: false });
            return Ok(());
        }
        self.emit(ids.end, &rows, best.as_deref())?;
        while let Some(chunk) = self.waiting.remove(&self.next) {
            self.emit(chunk.end, &chunk.rows, chunk.best.as_deref())?;
        }
        Ok(())
    }

    /// Makes every row taken so far durable: waiting chunks go to `journal` (once), the
    /// table is fsynced. The caller syncs the journal.
    fn sync(&mut self, journal: &mut Journal) -> Result<()> {
        for chunk in self.waiting.values_mut().filter(|c| !c.journaled) {
            journal.append(&chunk.rows)?;
            chunk.journaled = true;
        }
        if self.unsynced {
            self.file.sync_data().map_err(|e| Failure::runtime(format!("cannot sync {}: {e}", self.path.display())))?;
            self.unsynced = false;
        }
        Ok(())
    }

    fn sync_directory(&self) -> Result<()> {
        sync_parent_directory(&self.path)
            .map_err(|e| Failure::runtime(format!("cannot sync the directory of {}: {e}", self.path.display())))
    }

    /// Checks every combo arrived exactly once, fsyncs and renames the table over `out`.
    /// Returns the table's BLAKE3 digest (hex) and the ranker.
    pub fn finish(self, out: &Path) -> Result<(String, crate::report::Ranker)> {
        let (digest, ranker, table) = self.complete()?;
        let finished = (|| -> std::io::Result<()> {
            table.file.sync_all()?;
            std::fs::rename(&table.path, out)?;
            sync_parent_directory(out)
        })();
        finished.map_err(|e| Failure::runtime(format!("cannot write {}: {e}", out.display())))?;
        Ok((digest, ranker))
    }

    /// [`TableStream::finish`] without the fsync and the rename: the digest and the ranker,
    /// and the written table, to publish with its sidecar ([`publish_with_sidecar`]).
    pub fn complete(self) -> Result<(String, crate::report::Ranker, Unpublished)> {
        if self.next != self.combos || !self.waiting.is_empty() {
            return Err(Failure::runtime(format!(
                "internal error: rows 0..{} are in order, {} chunks wait, {} combos expected",
                self.next,
                self.waiting.len(),
                self.combos
            )));
        }
        let table = Unpublished { path: self.path, file: self.file };
        Ok((self.hasher.finalize().to_hex().to_string(), self.ranker, table))
    }
}

/// A complete table stream, not yet synced nor renamed into place.
pub struct Unpublished {
    path: PathBuf,
    file: File,
}

/// Publishes a complete table at `out` and its sidecar at `sidecar`: both files' data are
/// synced at once (the table's in another thread), then the table is renamed into place,
/// then the sidecar, and one fsync of the directory makes both renames durable: one disk
/// wait at the end of a sweep instead of four ([`TableStream::finish`] then
/// [`write_atomically`]).
///
/// A crash in between leaves at worst a sidecar without its table (or beside an older
/// table): the sidecar names the table's BLAKE3, so it vouches for nothing else, and the
/// journal, removed only after this returns, still lets `--resume` finish.
pub fn publish_with_sidecar(table: Unpublished, out: &Path, sidecar: &Path, text: &[u8]) -> Result<()> {
    let temp = suffixed(sidecar, ".tmp");
    let sidecar_error = |e: std::io::Error| Failure::runtime(format!("cannot write {}: {e}", sidecar.display()));
    let table_error = |e: std::io::Error| Failure::runtime(format!("cannot write {}: {e}", out.display()));
    let (table_synced, sidecar_written) = std::thread::scope(|scope| {
        let synced = scope.spawn(|| table.file.sync_all());
        let written = (|| -> std::io::Result<()> {
            let mut file = File::create(&temp)?;
            file.write_all(text)?;
            file.sync_all()
        })();
        (synced.join().unwrap_or_else(|_| Err(std::io::Error::other("the sync thread panicked"))), written)
    });
    let published = table_synced.map_err(table_error).and_then(|()| {
        sidecar_written.map_err(sidecar_error)?;
        std::fs::rename(&table.path, out).map_err(table_error)?;
        std::fs::rename(&temp, sidecar).map_err(sidecar_error)?;
        sync_parent_directory(out).map_err(table_error)
    });
    if published.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    published
}

/// Where a running sweep's rows go: the table stream on a fresh sweep (with the journal
/// for chunks that wait), the journal alone on a resumed one; and when they are fsynced.
pub struct RowSink {
    journal: Journal,
    stream: Option<TableStream>,
    blocks: Option<BlockStore>,
    last_block_flush: Instant,
    unsynced_bytes: usize,
    last_sync: Instant,
    /// Whether the directory holding the table stream has been fsynced since it was created.
    directory_synced: bool,
}

impl RowSink {
    /// A sink over an open journal and, on a fresh sweep, the table stream; `blocks` keeps
    /// the combos' block sums when the sweep computes them.
    pub fn new(journal: Journal, stream: Option<TableStream>, blocks: Option<BlockStore>) -> RowSink {
        RowSink {
            journal,
            stream,
            blocks,
            last_block_flush: Instant::now(),
            unsynced_bytes: 0,
            last_sync: Instant::now(),
            directory_synced: false,
        }
    }

    /// Records the rows of the chunk of combos `ids` and their block sums; syncs when
    /// enough time or bytes have accumulated.
    pub fn accept(&mut self, ids: Range<u64>, rows: String, best: Option<Vec<usize>>, sums: ChunkBlocks) -> Result<()> {
        if let Some(store) = self.blocks.as_mut() {
            store.accept(ids.clone(), &sums);
            if self.last_block_flush.elapsed() >= crate::block_store::FLUSH_INTERVAL {
                store.flush()?;
                self.last_block_flush = Instant::now();
            }
        }
        self.unsynced_bytes += rows.len();
        match self.stream.as_mut() {
            Some(stream) => stream.accept(ids, rows, best)?,
            None => self.journal.append(&rows)?,
        }
        if self.unsynced_bytes >= SYNC_BYTES || self.last_sync.elapsed() >= SYNC_INTERVAL {
            self.sync_rows()?;
        }
        Ok(())
    }

    /// Makes every row and block sum recorded so far durable (when the sweep stops short).
    pub fn sync(&mut self) -> Result<()> {
        if let Some(store) = self.blocks.as_mut() {
            store.sync()?;
        }
        self.sync_rows()
    }

    /// Makes every row recorded so far durable. Not the block sums: a record a crash of
    /// the machine loses or tears fails its check word and is computed again at the end
    /// ([`crate::block_store`]), so they need no fsync of their own on the sweep's path.
    fn sync_rows(&mut self) -> Result<()> {
        if let Some(stream) = self.stream.as_mut() {
            stream.sync(&mut self.journal)?;
            if !self.directory_synced {
                // The new file's name must survive a crash too, not only its bytes.
                stream.sync_directory()?;
                self.directory_synced = true;
            }
        }
        self.journal.sync()?;
        self.unsynced_bytes = 0;
        self.last_sync = Instant::now();
        Ok(())
    }

    /// The journal, the table stream and the block sums, once the sweep has ended.
    pub fn into_parts(self) -> (Journal, Option<TableStream>, Option<BlockStore>) {
        (self.journal, self.stream, self.blocks)
    }
}

/// Seconds since the Unix epoch as an RFC 3339 UTC timestamp.
pub fn rfc3339(time: std::time::SystemTime) -> String {
    let secs = time.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let date = sweeprun_kernel::date::Date::from_days((secs / 86_400) as i32);
    let rem = secs % 86_400;
    format!("{date}T{:02}:{:02}:{:02}Z", rem / 3600, rem / 60 % 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::columns;

    #[test]
    fn journal_reopen_cuts_a_torn_row_and_assembles_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv.partial");
        let cols = columns(&["fast"], &[]);
        let mut journal = Journal::create(&path, OutputFormat::Csv, &cols).unwrap();
        journal.append("2,1,0,0,0,0,0,0,0,0\n0,1,0,0,0,0,0,0,0,0\n1,1,0,0").unwrap();
        drop(journal);
        let (mut journal, done, found) =
            Journal::reopen(&path, &dir.path().join("none"), OutputFormat::Csv, &cols, 3).unwrap();
        assert_eq!((done, found), (vec![true, false, true], 2));
        journal.append("1,1,0,0,0,0,0,0,0,0\n").unwrap();
        let table = assemble_table(&path, OutputFormat::Csv, &cols, 3).unwrap();
        let ids: Vec<&str> = table.lines().skip(1).map(|l| &l[..1]).collect();
        assert_eq!(ids, vec!["0", "1", "2"]);
    }

    #[test]
    fn reopen_folds_in_the_in_order_prefix_of_an_interrupted_table() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv.partial");
        let table = dir.path().join("t.csv.partial.table");
        let cols = columns(&["fast"], &[]);
        let mut journal = Journal::create(&path, OutputFormat::Csv, &cols).unwrap();
        // A chunk that had to wait (ids 4..6) went to the journal; the table holds 0..3,
        // a row of the journal's chunk again, and a torn row.
        journal.append("4,1,0,0,0,0,0,0,0,0\n5,1,0,0,0,0,0,0,0,0\n").unwrap();
        drop(journal);
        let header = format!("{}\n", cols.join(","));
        let rows = "0,1,0,0,0,0,0,0,0,0\n1,1,0,0,0,0,0,0,0,0\n2,1,0,0,0,0,0,0,0,0\n3,1,0,0";
        std::fs::write(&table, format!("{header}{rows}")).unwrap();
        let (_journal, done, found) = Journal::reopen(&path, &table, OutputFormat::Csv, &cols, 7).unwrap();
        assert_eq!(done, vec![true, true, true, false, true, true, false]);
        assert_eq!(found, 5);
        assert!(!table.exists(), "the folded table is removed");
        let journal_rows = std::fs::read_to_string(&path).unwrap();
        assert_eq!(journal_rows.lines().count(), 1 + 5, "header and five distinct rows: {journal_rows}");

        // A table whose rows do not start at id 0 (or whose header differs) adds nothing.
        std::fs::write(&table, format!("{header}1,1,0,0,0,0,0,0,0,0\n")).unwrap();
        drop(_journal);
        let (_journal, _, found) = Journal::reopen(&path, &table, OutputFormat::Csv, &cols, 7).unwrap();
        assert_eq!(found, 5);
    }

    #[test]
    fn a_torn_header_is_rewritten_and_a_second_writer_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv.partial");
        let cols = columns(&["fast"], &[]);
        std::fs::write(&path, "combo_id,fa").unwrap();
        let (journal, done, found) =
            Journal::reopen(&path, &dir.path().join("none"), OutputFormat::Csv, &cols, 2).unwrap();
        assert_eq!((done, found), (vec![false, false], 0));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{}\n", cols.join(",")));
        match Journal::reopen(&path, &dir.path().join("none"), OutputFormat::Csv, &cols, 2) {
            Err(Failure::Usage(m)) => assert!(m.contains("another sweeprun process"), "{m}"),
            other => panic!("expected a lock refusal, got {other:?}"),
        }
        drop(journal);
        assert!(
            Journal::reopen(&path, &dir.path().join("none"), OutputFormat::Csv, &cols, 2).is_ok(),
            "free again once closed"
        );
    }

    #[test]
    fn assemble_refuses_conflicting_duplicates_but_accepts_identical_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv.partial");
        let cols = columns(&["fast"], &[]);
        let mut journal = Journal::create(&path, OutputFormat::Csv, &cols).unwrap();
        journal.append("0,1,0,0,0,0,0,0,0,0\n0,1,0,0,0,0,0,0,0,0\n").unwrap();
        assert!(assemble_table(&path, OutputFormat::Csv, &cols, 1).is_ok());
        journal.append("0,1,0.5,0,0,0,0,0,0,0\n").unwrap();
        assert!(assemble_table(&path, OutputFormat::Csv, &cols, 1).is_err());
    }

    #[test]
    fn the_stream_writes_in_id_order_whatever_the_arrival_order() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("t.csv");
        let cols = columns(&["fast"], &[]);
        let ranker = crate::report::Ranker::new(OutputFormat::Csv, &cols, "total_return", 2);
        let mut stream = TableStream::create(&out, OutputFormat::Csv, &cols, 3, ranker).unwrap();
        stream.accept(2..3, "2,1,0.7,0,0,0,0,0,0,0\n".into(), None).unwrap();
        stream.accept(0..2, "0,1,0.5,0,0,0,0,0,0,0\n1,1,0.9,0,0,0,0,0,0,0\n".into(), None).unwrap();
        let (sha, ranker) = stream.finish(&out).unwrap();
        let table = std::fs::read_to_string(&out).unwrap();
        let ids: Vec<&str> = table.lines().skip(1).map(|l| &l[..1]).collect();
        assert_eq!(ids, ["0", "1", "2"]);
        assert_eq!(sha, blake3::hash(table.as_bytes()).to_hex().as_str());
        let (best, total) = ranker.finish(&cols);
        assert_eq!((best[0][0].as_str(), best[1][0].as_str(), total), ("1", "2", 3));
        assert!(!dir.path().join("t.csv.partial.table").exists());
    }

    #[test]
    fn an_incomplete_stream_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("t.csv");
        let cols = columns(&["fast"], &[]);
        let ranker = crate::report::Ranker::new(OutputFormat::Csv, &cols, "sharpe", 1);
        let mut stream = TableStream::create(&out, OutputFormat::Csv, &cols, 3, ranker).unwrap();
        stream.accept(1..2, "1,1,0,0,0,0,0,0,0,0\n".into(), None).unwrap();
        assert!(stream.finish(&out).is_err());
        assert!(!out.exists());
    }

    #[test]
    fn assemble_refuses_gaps() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv.partial");
        let cols = columns(&["fast"], &[]);
        let mut journal = Journal::create(&path, OutputFormat::Csv, &cols).unwrap();
        journal.append("0,1,0,0,0,0,0,0,0,0\n").unwrap();
        assert!(assemble_table(&path, OutputFormat::Csv, &cols, 2).is_err());
    }

    #[test]
    fn timestamps() {
        let t = std::time::UNIX_EPOCH + Duration::from_secs(86_400 * 365 + 3661);
        assert_eq!(rfc3339(t), "1971-01-01T01:01:01Z");
    }
}
