//! `<out>.partial.blocks`: every finished combo's CSCV block sums (the inputs of the
//! overfitting statistics, [`crate::overfitting`]), kept beside the journal so that a
//! resumed sweep computes the same statistics as an uninterrupted one.
//!
//! A fixed-size record per combo at a fixed offset (`combo_id · record size` after a
//! header), so a chunk is one positioned write, a combo received twice (a rank that died
//! after sending) writes the same bytes again, and no order is needed. Each record ends in
//! a check word over its id and values: a record that was never written (the file is
//! sparse) or was torn by a crash reads as missing, and is computed again at the end by
//! the launcher (so are the sums of a journal from a sweep run with other blocks). So the
//! store is written every half second ([`FLUSH_INTERVAL`]) and fsynced only when a sweep
//! stops short (an error, Ctrl-C), not with every batch of rows: a killed launcher loses
//! at most the last half second's sums, a crash of the machine what was not yet on disk,
//! and either costs their recomputation, never a wrong number. A sweep shorter than the
//! interval never writes its sums. (Writing and fsyncing 10 MiB of sums with the rows
//! cost the large grid's 0.1 s sweep a further ~15 %.)
//!
//! Everything is also held in memory (`16·S + 1` bytes per combo, 10 MiB for the large
//! SMA grid at S = 8): the statistics need all of it at the end.

use crate::error::{Failure, Result};
use crate::protocol::ChunkBlocks;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// First bytes of the file; the format's version is its last digit.
const MAGIC: &[u8; 8] = b"SWRBLKS2";
/// Magic, S, combos, the sweep's fingerprint (64 bits of its hash).
const HEADER: u64 = 32;

/// The block sums of a sweep's combos, in memory and on disk.
#[derive(Debug)]
pub struct BlockStore {
    file: File,
    path: PathBuf,
    /// `2·S` values per combo.
    per_combo: usize,
    /// The sweep's fingerprint (64 bits): in the header, and seeding every check word, so
    /// no record of another sweep is ever taken for this one's.
    owner: u64,
    /// What arrived, in memory.
    stored: StoredSums,
    /// Ids accepted but not yet written to the file.
    pending: Vec<Range<u64>>,
    unsynced: bool,
}

/// How often the ledger writes the accepted sums to the file ([`BlockStore::flush`]).
pub const FLUSH_INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);

/// What a finished sweep hands to the statistics: combo `c`'s block `b` at `c·S + b`, as
/// [`sweeprun_kernel::overfitting::BlockSums`] takes them.
#[derive(Debug)]
pub struct StoredSums {
    /// `S`.
    pub blocks: usize,
    /// Sums of returns.
    pub sums: Vec<f64>,
    /// Sums of squared returns.
    pub squares: Vec<f64>,
    /// Whether combo `c`'s sums arrived.
    pub present: Vec<bool>,
}

impl StoredSums {
    /// `combos` combos of `s` blocks, none present.
    pub fn empty(combos: u64, s: usize) -> StoredSums {
        let values = combos as usize * s;
        StoredSums {
            blocks: s,
            sums: vec![0.0; values],
            squares: vec![0.0; values],
            present: vec![false; combos as usize],
        }
    }

    /// The combo ids whose sums are missing, as ranges.
    pub fn missing(&self) -> Vec<Range<u64>> {
        let mut ranges: Vec<Range<u64>> = Vec::new();
        for (id, _) in self.present.iter().enumerate().filter(|(_, &p)| !p) {
            let id = id as u64;
            match ranges.last_mut() {
                Some(last) if last.end == id => last.end += 1,
                _ => ranges.push(id..id + 1),
            }
        }
        ranges
    }

    /// Puts the sums of combos `ids` (in [`ChunkBlocks`]' layout) in place.
    pub fn fill(&mut self, ids: Range<u64>, blocks: &ChunkBlocks) {
        let s = self.blocks;
        let at = ids.start as usize * s;
        for (c, record) in blocks.0.chunks_exact(2 * s).enumerate() {
            self.sums[at + c * s..at + (c + 1) * s].copy_from_slice(&record[..s]);
            self.squares[at + c * s..at + (c + 1) * s].copy_from_slice(&record[s..]);
        }
        self.present[ids.start as usize..ids.end as usize].fill(true);
    }

    /// The sums and squares of combos `ids`.
    pub fn slices(&self, ids: Range<u64>) -> (&[f64], &[f64]) {
        let range = ids.start as usize * self.blocks..ids.end as usize * self.blocks;
        (&self.sums[range.clone()], &self.squares[range])
    }
}

/// 64 bits of the BLAKE3 of a sweep's fingerprint.
fn owner_of(fingerprint: &str) -> u64 {
    u64::from_le_bytes(blake3::hash(fingerprint.as_bytes()).as_bytes()[..8].try_into().expect("8 bytes"))
}

/// The check word of combo `id`'s record in the store of sweep `owner` (FNV-1a over 64-bit
/// words: a torn, unwritten or foreign record fails it; not a defence against deliberate
/// tampering).
fn check_word(owner: u64, id: u64, values: &[f64]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64 ^ owner ^ id.rotate_left(32);
    for value in values {
        hash = (hash ^ value.to_bits()).wrapping_mul(0x0000_0100_0000_01b3);
    }
    // Never zero: an unwritten record reads as zeros.
    hash | 1
}

impl BlockStore {
    /// A new, empty store at `path` (replacing any file there) for the sweep with this
    /// `fingerprint`, of `combos` combos of `s` blocks.
    pub fn create(path: &Path, fingerprint: &str, combos: u64, s: usize) -> Result<BlockStore> {
        let owner = owner_of(fingerprint);
        let failed = |e: std::io::Error| Failure::runtime(format!("cannot create {}: {e}", path.display()));
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(path).map_err(failed)?;
        let mut header = Vec::with_capacity(HEADER as usize);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&(s as u64).to_le_bytes());
        header.extend_from_slice(&combos.to_le_bytes());
        header.extend_from_slice(&owner.to_le_bytes());
        file.write_all_at(&header, 0).map_err(failed)?;
        Ok(BlockStore::empty(file, path, owner, combos, s))
    }

    fn empty(file: File, path: &Path, owner: u64, combos: u64, s: usize) -> BlockStore {
        BlockStore {
            file,
            path: path.to_path_buf(),
            per_combo: 2 * s,
            owner,
            stored: StoredSums::empty(combos, s),
            pending: Vec::new(),
            unsynced: true,
        }
    }

    /// The store of an interrupted sweep, with every intact record; a fresh one when there
    /// is none, or when it belongs to another sweep or holds another number of blocks or
    /// combos (its sums are then recomputed at the end: the statistics never mix sweeps or
    /// block layouts).
    pub fn reopen(path: &Path, fingerprint: &str, combos: u64, s: usize) -> Result<BlockStore> {
        let owner = owner_of(fingerprint);
        let mut bytes = Vec::new();
        match File::open(path) {
            Ok(mut file) => {
                file.read_to_end(&mut bytes)
                    .map_err(|e| Failure::runtime(format!("cannot read {}: {e}", path.display())))?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return BlockStore::create(path, fingerprint, combos, s)
            }
            Err(e) => return Err(Failure::runtime(format!("cannot open {}: {e}", path.display()))),
        }
        let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        let same_sweep = bytes.len() >= HEADER as usize
            && &bytes[..8] == MAGIC
            && word(8) == s as u64
            && word(16) == combos
            && word(24) == owner;
        if !same_sweep {
            return BlockStore::create(path, fingerprint, combos, s);
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| Failure::runtime(format!("cannot open {}: {e}", path.display())))?;
        let mut store = BlockStore::empty(file, path, owner, combos, s);
        let record = store.record_bytes();
        for id in 0..combos as usize {
            let at = HEADER as usize + id * record;
            let Some(raw) = bytes.get(at..at + record) else { break };
            let values: Vec<f64> =
                raw[..record - 8].chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes"))).collect();
            if u64::from_le_bytes(raw[record - 8..].try_into().expect("8 bytes"))
                == check_word(owner, id as u64, &values)
            {
                store.stored.fill(id as u64..id as u64 + 1, &ChunkBlocks(values));
            }
        }
        Ok(store)
    }

    fn record_bytes(&self) -> usize {
        8 * self.per_combo + 8
    }

    /// Records the sums of combos `ids` in memory (the caller checked their count); they
    /// go to the file at the next [`BlockStore::flush`].
    pub fn accept(&mut self, ids: Range<u64>, blocks: &ChunkBlocks) {
        debug_assert_eq!(blocks.0.len() as u64, (ids.end - ids.start) * self.per_combo as u64);
        self.stored.fill(ids.clone(), blocks);
        match self.pending.last_mut() {
            Some(last) if last.end == ids.start => last.end = ids.end,
            _ => self.pending.push(ids),
        }
    }

    /// Writes the records accepted since the last flush (one positioned write per run of
    /// ids), without waiting for the disk. Called every [`FLUSH_INTERVAL`] by the ledger:
    /// a sweep that ends sooner never writes its sums (they are not needed then).
    pub fn flush(&mut self) -> Result<()> {
        let s = self.per_combo / 2;
        for ids in std::mem::take(&mut self.pending) {
            let mut bytes = Vec::with_capacity((ids.end - ids.start) as usize * self.record_bytes());
            let mut record = vec![0.0; self.per_combo];
            for id in ids.clone() {
                let at = id as usize * s;
                record[..s].copy_from_slice(&self.stored.sums[at..at + s]);
                record[s..].copy_from_slice(&self.stored.squares[at..at + s]);
                for value in &record {
                    bytes.extend_from_slice(&value.to_le_bytes());
                }
                bytes.extend_from_slice(&check_word(self.owner, id, &record).to_le_bytes());
            }
            let at = HEADER + ids.start * self.record_bytes() as u64;
            self.file
                .write_all_at(&bytes, at)
                .map_err(|e| Failure::runtime(format!("cannot write {}: {e}", self.path.display())))?;
            self.unsynced = true;
        }
        Ok(())
    }

    /// Writes and makes durable every record accepted so far.
    pub fn sync(&mut self) -> Result<()> {
        self.flush()?;
        if self.unsynced {
            self.file.sync_data().map_err(|e| Failure::runtime(format!("cannot sync {}: {e}", self.path.display())))?;
            self.unsynced = false;
        }
        Ok(())
    }

    /// The sums, once the sweep has ended.
    pub fn into_sums(self) -> StoredSums {
        self.stored
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(ids: Range<u64>, s: usize) -> ChunkBlocks {
        ChunkBlocks(ids.flat_map(|id| (0..2 * s).map(move |b| id as f64 + b as f64 / 100.0)).collect())
    }

    #[test]
    fn records_survive_a_reopen_in_any_order_and_gaps_are_missing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv.partial.blocks");
        let mut store = BlockStore::create(&path, "sweep", 10, 2).unwrap();
        store.accept(6..9, &chunk(6..9, 2));
        store.flush().unwrap();
        store.accept(0..2, &chunk(0..2, 2));
        store.accept(6..9, &chunk(6..9, 2));
        store.sync().unwrap();
        store.accept(9..10, &chunk(9..10, 2));
        // Not flushed: lost with the process.
        drop(store);
        let sums = BlockStore::reopen(&path, "sweep", 10, 2).unwrap().into_sums();
        assert_eq!(sums.missing(), vec![2..6, 9..10]);
        let (s, q) = sums.slices(6..8);
        assert_eq!(s, [6.0, 6.01, 7.0, 7.01]);
        assert_eq!(q, [6.02, 6.03, 7.02, 7.03]);
    }

    #[test]
    fn a_torn_record_is_missing_and_another_layout_starts_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b");
        let mut store = BlockStore::create(&path, "sweep", 4, 2).unwrap();
        store.accept(0..4, &chunk(0..4, 2));
        store.flush().unwrap();
        drop(store);
        // Damage one value of combo 2 (record size 5 words: 4 values + check).
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.write_all_at(&[0xff], HEADER + 2 * 40 + 3).unwrap();
        let mut sums = BlockStore::reopen(&path, "sweep", 4, 2).unwrap().into_sums();
        assert_eq!(sums.missing(), vec![2..3]);
        sums.fill(2..3, &chunk(2..3, 2));
        assert!(sums.missing().is_empty());
        let mut whole = StoredSums::empty(4, 2);
        whole.fill(0..4, &chunk(0..4, 2));
        assert_eq!((&sums.sums, &sums.squares), (&whole.sums, &whole.squares));
        // Other S, other grid size, or not a store at all: nothing carried over.
        for (combos, s) in [(4, 4), (5, 2)] {
            assert_eq!(BlockStore::reopen(&path, "sweep", combos, s).unwrap().into_sums().missing(), vec![0..combos]);
        }
        // Another sweep's store, same shape: nothing carried over either.
        let mut other = BlockStore::create(&path, "another sweep", 4, 2).unwrap();
        other.accept(0..4, &chunk(0..4, 2));
        other.flush().unwrap();
        drop(other);
        assert_eq!(BlockStore::reopen(&path, "sweep", 4, 2).unwrap().into_sums().missing(), vec![0..4]);
        std::fs::write(&path, "x").unwrap();
        assert_eq!(BlockStore::reopen(&path, "sweep", 4, 2).unwrap().into_sums().missing(), vec![0..4]);
        // A file cut short: the records past its end are missing.
        let mut store = BlockStore::create(&path, "sweep", 4, 2).unwrap();
        store.accept(0..4, &chunk(0..4, 2));
        store.flush().unwrap();
        drop(store);
        OpenOptions::new().write(true).open(&path).unwrap().set_len(HEADER + 3 * 40 - 1).unwrap();
        assert_eq!(BlockStore::reopen(&path, "sweep", 4, 2).unwrap().into_sums().missing(), vec![2..4]);
    }
}
