//! The pipe protocol between the launcher and its local rank processes.
//!
//! Text headers, length-prefixed payloads, so a rank that dies mid-message leaves a
//! frame the launcher can recognise as incomplete and discard:
//!
//! ```text
//! launcher -> rank (stdin)    SPEC <format> <nbytes> [<metric> <k>] [blocks=<S>]\n<effective spec TOML>
//!                             DATA <nbytes> <blake3>\n<price data, sweeprun_kernel::wire>
//!                             CHUNK <start> <end>\n          combo ids start..end
//!                             (end of input: finish and exit)
//! rank -> launcher (stdout)   READY\n
//!                             ROWS <start> <end> <nbytes> [<offset>,<offset>,..] [sums=<n>]\n
//!                                  <formatted rows><n little-endian f64: block sums>
//!                             ERROR <one line>\n
//! ```
//!
//! The launcher parses the data once and sends it to every rank in binary form; the rank
//! checks the payload against its BLAKE3 digest before using it (a rank never computes on
//! data other than what the launcher checked and fingerprinted).
//!
//! With `<metric> <k>` the launcher asks each rank to preselect the `k` best rows of every
//! chunk by that metric; `ROWS` then lists their byte offsets in the payload, and the
//! launcher ranks only those (the top `k` of the sweep is among them), instead of parsing
//! a column of every row.
//!
//! With `blocks=<S>` each rank also sends, with every chunk's rows, each combo's sums of
//! returns and of squared returns over `S` blocks of the return series (the inputs of the
//! overfitting statistics, [`crate::overfitting`]): `sums=<n>` values, `2·S` per combo, as
//! [`ChunkBlocks`] lays them out.

use std::io::{self, BufRead, Read, Write};
use std::sync::Arc;

/// A message from the launcher to a rank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToRank {
    /// The sweep to run: output format name and effective spec text.
    Spec {
        /// `csv` or `jsonl`.
        format: String,
        /// Effective spec (TOML).
        spec: String,
        /// Preselect the best `k` rows of each chunk by this metric.
        preselect: Option<(String, usize)>,
        /// Send each combo's sums over this many CSCV blocks (0: none).
        cscv_blocks: usize,
    },
    /// The sweep's price data, parsed by the launcher ([`sweeprun_kernel::wire`]).
    Data {
        /// BLAKE3 of `bytes`, hex.
        digest: String,
        /// The encoded price set (shared: the same bytes go to every rank).
        bytes: Arc<Vec<u8>>,
    },
    /// Evaluate combos `start..end`.
    Chunk {
        /// First combo id.
        start: u64,
        /// One past the last combo id.
        end: u64,
    },
}

/// A message from a rank to the launcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FromRank {
    /// Data loaded, ready for chunks.
    Ready,
    /// The rows of one finished chunk.
    Rows {
        /// First combo id of the chunk.
        start: u64,
        /// One past the last combo id.
        end: u64,
        /// One line per combo, in the output format.
        rows: String,
        /// Byte offsets in `rows` of the preselected best rows, when asked for.
        best: Option<Vec<usize>>,
        /// The combos' block sums, when asked for (empty otherwise).
        blocks: ChunkBlocks,
    },
    /// The rank cannot continue.
    Error(String),
}

/// The block sums of one chunk's combos: combo `c`'s `S` sums of returns, then its `S` sums
/// of squared returns, at `2·S·c` (empty when the sweep computes none).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChunkBlocks(pub Vec<f64>);

impl Eq for ChunkBlocks {}

/// Largest payload accepted (a spec, or one chunk's rows: 4096 rows of a few hundred bytes).
const MAX_PAYLOAD: usize = 1 << 30;

fn invalid(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

fn read_payload(reader: &mut impl BufRead, len: &str) -> io::Result<String> {
    String::from_utf8(read_bytes(reader, len)?).map_err(|_| invalid("payload is not UTF-8".into()))
}

fn read_bytes(reader: &mut impl BufRead, len: &str) -> io::Result<Vec<u8>> {
    read_exactly(reader, len.parse().map_err(|_| invalid(format!("bad length `{len}`")))?)
}

fn read_exactly(reader: &mut impl BufRead, len: usize) -> io::Result<Vec<u8>> {
    if len > MAX_PAYLOAD {
        return Err(invalid(format!("payload of {len} bytes is over the limit of {MAX_PAYLOAD}")));
    }
    // Not `vec![0; len]` + `read_exact`: zeroing half a megabyte per chunk showed up in
    // the launcher's profile; `read_to_end` fills the spare capacity directly. The length
    // is the peer's word: allocate more only as bytes actually arrive.
    let mut bytes = Vec::with_capacity(len.min(4 << 20));
    reader.take(len as u64).read_to_end(&mut bytes)?;
    if bytes.len() < len {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(bytes)
}

fn read_header(reader: &mut impl BufRead) -> io::Result<Option<String>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    match line.strip_suffix('\n') {
        Some(header) => Ok(Some(header.to_string())),
        None => Err(io::ErrorKind::UnexpectedEof.into()),
    }
}

fn parse_id(text: Option<&str>) -> io::Result<u64> {
    text.and_then(|t| t.parse().ok()).ok_or_else(|| invalid("bad combo id".into()))
}

impl ToRank {
    /// The message's name, as on the wire (for errors: a data payload is not printed).
    pub fn kind(&self) -> &'static str {
        match self {
            ToRank::Spec { .. } => "SPEC",
            ToRank::Data { .. } => "DATA",
            ToRank::Chunk { .. } => "CHUNK",
        }
    }

    /// Writes the message.
    pub fn write(&self, writer: &mut impl Write) -> io::Result<()> {
        match self {
            ToRank::Spec { format, spec, preselect, cscv_blocks } => {
                write!(writer, "SPEC {format} {}", spec.len())?;
                if let Some((metric, k)) = preselect {
                    write!(writer, " {metric} {k}")?;
                }
                if *cscv_blocks > 0 {
                    write!(writer, " blocks={cscv_blocks}")?;
                }
                write!(writer, "\n{spec}")?;
            }
            ToRank::Data { digest, bytes } => {
                writeln!(writer, "DATA {} {digest}", bytes.len())?;
                writer.write_all(bytes)?;
            }
            ToRank::Chunk { start, end } => writeln!(writer, "CHUNK {start} {end}")?,
        }
        writer.flush()
    }

    /// Reads the next message; `None` at a clean end of input.
    pub fn read(reader: &mut impl BufRead) -> io::Result<Option<ToRank>> {
        let Some(header) = read_header(reader)? else { return Ok(None) };
        let mut words = header.split(' ');
        match words.next() {
            Some("SPEC") => {
                let format = words.next().ok_or_else(|| invalid("SPEC without format".into()))?.to_string();
                let len = words.next().unwrap_or("");
                let mut rest: Vec<&str> = words.collect();
                let cscv_blocks = match rest.last().and_then(|w| w.strip_prefix("blocks=")) {
                    Some(s) => {
                        let s = s.parse().map_err(|_| invalid(format!("bad block count `{s}`")))?;
                        rest.pop();
                        s
                    }
                    None => 0,
                };
                let preselect = match rest[..] {
                    [] => None,
                    [metric, k] => Some((metric.to_string(), k.parse().map_err(|_| invalid(format!("bad k `{k}`")))?)),
                    _ => return Err(invalid(format!("bad SPEC header `{header}`"))),
                };
                let spec = read_payload(reader, len)?;
                Ok(Some(ToRank::Spec { format, spec, preselect, cscv_blocks }))
            }
            Some("DATA") => {
                let len = words.next().unwrap_or("");
                let digest = words.next().ok_or_else(|| invalid("DATA without a digest".into()))?.to_string();
                let bytes = Arc::new(read_bytes(reader, len)?);
                Ok(Some(ToRank::Data { digest, bytes }))
            }
            Some("CHUNK") => Ok(Some(ToRank::Chunk { start: parse_id(words.next())?, end: parse_id(words.next())? })),
            _ => Err(invalid(format!("unknown message `{header}`"))),
        }
    }
}

impl FromRank {
    /// Writes the message.
    pub fn write(&self, writer: &mut impl Write) -> io::Result<()> {
        match self {
            FromRank::Ready => writer.write_all(b"READY\n")?,
            FromRank::Rows { start, end, rows, best, blocks } => {
                write!(writer, "ROWS {start} {end} {}", rows.len())?;
                if let Some(best) = best {
                    let offsets: Vec<String> = best.iter().map(usize::to_string).collect();
                    // An empty list is written as `-` so the field is never missing.
                    write!(writer, " {}", if offsets.is_empty() { "-".to_string() } else { offsets.join(",") })?;
                }
                if !blocks.0.is_empty() {
                    write!(writer, " sums={}", blocks.0.len())?;
                }
                write!(writer, "\n{rows}")?;
                let mut bytes = Vec::with_capacity(8 * blocks.0.len());
                for value in &blocks.0 {
                    bytes.extend_from_slice(&value.to_le_bytes());
                }
                writer.write_all(&bytes)?;
            }
            FromRank::Error(message) => writeln!(writer, "ERROR {}", message.replace('\n', " "))?,
        }
        writer.flush()
    }

    /// Reads the next message; `None` at a clean end of input (the rank exited).
    pub fn read(reader: &mut impl BufRead) -> io::Result<Option<FromRank>> {
        let Some(header) = read_header(reader)? else { return Ok(None) };
        if let Some(message) = header.strip_prefix("ERROR ") {
            return Ok(Some(FromRank::Error(message.to_string())));
        }
        let mut words = header.split(' ');
        match words.next() {
            Some("READY") => Ok(Some(FromRank::Ready)),
            Some("ROWS") => {
                let start = parse_id(words.next())?;
                let end = parse_id(words.next())?;
                let len = words.next().unwrap_or("");
                let mut rest: Vec<&str> = words.collect();
                let sums = match rest.last().and_then(|w| w.strip_prefix("sums=")) {
                    Some(n) => {
                        let n: usize = n.parse().map_err(|_| invalid(format!("bad sum count `{n}`")))?;
                        rest.pop();
                        n
                    }
                    None => 0,
                };
                let best = match rest[..] {
                    [] => None,
                    ["-"] => Some(Vec::new()),
                    [list] => Some(
                        list.split(',')
                            .map(|o| o.parse().map_err(|_| invalid(format!("bad offset `{o}`"))))
                            .collect::<io::Result<Vec<usize>>>()?,
                    ),
                    _ => return Err(invalid(format!("bad ROWS header `{header}`"))),
                };
                let rows = read_payload(reader, len)?;
                let bytes = read_exactly(reader, sums.saturating_mul(8))?;
                let values =
                    bytes.chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes"))).collect();
                Ok(Some(FromRank::Rows { start, end, rows, best, blocks: ChunkBlocks(values) }))
            }
            _ => Err(invalid(format!("unknown message `{header}`"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_detects_torn_frames() {
        let mut buf = Vec::new();
        let specs = [
            ToRank::Spec { format: "csv".into(), spec: "a = 1\n".into(), preselect: None, cscv_blocks: 0 },
            ToRank::Spec {
                format: "jsonl".into(),
                spec: "b = 2\n".into(),
                preselect: Some(("sharpe".into(), 10)),
                cscv_blocks: 0,
            },
            ToRank::Spec { format: "csv".into(), spec: "c = 3\n".into(), preselect: None, cscv_blocks: 8 },
            ToRank::Spec {
                format: "csv".into(),
                spec: "d = 4\n".into(),
                preselect: Some(("sortino".into(), 3)),
                cscv_blocks: 16,
            },
        ];
        for spec in &specs {
            spec.write(&mut buf).unwrap();
        }
        let data = ToRank::Data { digest: "ab12".into(), bytes: Arc::new(vec![0, 255, b'\n', 7]) };
        data.write(&mut buf).unwrap();
        ToRank::Chunk { start: 3, end: 9 }.write(&mut buf).unwrap();
        let mut reader = io::Cursor::new(buf);
        for spec in specs {
            assert_eq!(ToRank::read(&mut reader).unwrap(), Some(spec));
        }
        assert_eq!(ToRank::read(&mut reader).unwrap(), Some(data));
        assert_eq!(ToRank::read(&mut reader).unwrap(), Some(ToRank::Chunk { start: 3, end: 9 }));
        assert_eq!(ToRank::read(&mut reader).unwrap(), None);

        let mut buf = Vec::new();
        let sums = ChunkBlocks(vec![0.5, -1e-300, f64::MIN_POSITIVE, 3.25]);
        for best in [None, Some(vec![]), Some(vec![0, 4])] {
            for blocks in [ChunkBlocks::default(), sums.clone()] {
                let rows = FromRank::Rows { start: 0, end: 2, rows: "0,a\n1,b\n".into(), best: best.clone(), blocks };
                let mut buf = Vec::new();
                rows.write(&mut buf).unwrap();
                assert_eq!(FromRank::read(&mut io::Cursor::new(buf)).unwrap(), Some(rows));
            }
        }
        let mut with_sums = Vec::new();
        FromRank::Rows { start: 0, end: 2, rows: "0,a\n1,b\n".into(), best: None, blocks: sums }
            .write(&mut with_sums)
            .unwrap();
        with_sums.pop();
        assert!(FromRank::read(&mut io::Cursor::new(with_sums)).is_err(), "torn block sums are an error");
        FromRank::Rows { start: 0, end: 2, rows: "0,a\n1,b\n".into(), best: None, blocks: ChunkBlocks::default() }
            .write(&mut buf)
            .unwrap();
        let whole = buf.clone();
        assert!(matches!(FromRank::read(&mut io::Cursor::new(whole)).unwrap(), Some(FromRank::Rows { end: 2, .. })));
        buf.truncate(buf.len() - 3);
        assert!(FromRank::read(&mut io::Cursor::new(buf)).is_err(), "a torn payload is an error, not rows");
    }

    #[test]
    fn absurd_lengths_and_offsets_are_errors_not_panics() {
        for frame in [
            "ROWS 0 1 18446744073709551615\nx",
            "ROWS 0 1 4294967296\nx",
            "ROWS 0 1 2 1,x\n0\n",
            "ROWS 0 1 2 sums=2305843009213693952\n0\n",
            "ROWS 0 1 2 sums=x\n0\n",
            "ROWS 0 1 2 - 3 sums=1\n0\n",
        ] {
            assert!(FromRank::read(&mut io::Cursor::new(frame.as_bytes())).is_err(), "{frame:?}");
        }
        // A length the peer does not deliver is a torn frame.
        assert!(FromRank::read(&mut io::Cursor::new(&b"ROWS 0 1 1000000\n0,a\n"[..])).is_err());
    }
}
