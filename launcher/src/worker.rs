//! A rank: receives the sweep and its price data (parsed once, by the launcher), then
//! evaluates the chunks of combo ids the launcher sends, until it says there is no more.
//!
//! The same loop ([`serve`]) runs in a local rank process (`sweeprun __rank`, over
//! stdin/stdout in the [`crate::protocol`] framing), in a thread of the launcher (the MPI
//! rank 0 computes too), and in every other MPI rank; only the [`RankLink`] differs.

use crate::protocol::{ChunkBlocks, FromRank, ToRank};
use crate::spec::Spec;
use crate::table::{OutputFormat, RowWriter};
use std::io::{self, BufReader, BufWriter};
use std::path::Path;
use std::time::Duration;

/// Debugging aid: sleep this many milliseconds before reporting each chunk, so that tests
/// (and people) can watch, pause or kill ranks mid-sweep.
pub const CHUNK_DELAY_ENV: &str = "SWEEPRUN_DEBUG_CHUNK_DELAY_MS";

/// Where a rank gets its messages from and sends its replies to: pipes to the launcher
/// ([`StreamLink`]), channels to the launcher's own thread (`backend::inproc`), or MPI
/// messages to rank 0.
pub trait RankLink {
    /// The next message; `None` when the launcher has no more work (or is gone).
    fn receive(&mut self) -> Result<Option<ToRank>, String>;
    /// Sends a reply; an error means the launcher cannot be reached any more.
    fn send(&mut self, message: FromRank) -> Result<(), String>;

    /// Whether the launcher formats this rank's rows itself (a rank thread of the
    /// launcher's own process: see [`RowWriter::defer`]).
    fn defers_formatting(&self) -> bool {
        false
    }

    /// Sends the rows of combos `start..end` that `rows` holds, with their block sums.
    fn send_rows(&mut self, start: u64, end: u64, rows: &mut RowWriter, blocks: ChunkBlocks) -> Result<(), String> {
        let (rows, best) = rows.take();
        self.send(FromRank::Rows { start, end, rows, best, blocks })
    }
}

/// A link over byte streams in the [`crate::protocol`] framing (a rank process's stdin
/// and stdout).
pub struct StreamLink<R, W> {
    /// Where messages come from.
    pub input: R,
    /// Where replies go.
    pub output: W,
}

impl<R: io::BufRead, W: io::Write> RankLink for StreamLink<R, W> {
    fn receive(&mut self) -> Result<Option<ToRank>, String> {
        ToRank::read(&mut self.input).map_err(|e| format!("launcher connection lost: {e}"))
    }

    fn send(&mut self, message: FromRank) -> Result<(), String> {
        message.write(&mut self.output).map_err(|e| format!("launcher connection lost: {e}"))
    }
}

/// Runs the rank loop on stdin/stdout. Returns the process exit code.
pub fn run_rank(pin_cpu: Option<usize>, index: usize, report_bindings: bool, parent: Option<u32>) -> u8 {
    if let Some(parent) = parent {
        // Exits with 1 if the launcher is already gone; otherwise we die when it does.
        if let Err(e) = sweeprun_hw::process::die_with_parent(parent) {
            say!("sweeprun rank: cannot follow launcher pid {parent}: {e}");
            return 1;
        }
    }
    // The machine as this rank may use it, seen before pinning narrows the view.
    let machine = report_bindings.then(machine_view);
    if let Some(cpu) = pin_cpu {
        if let Err(e) = sweeprun_hw::topology::pin_current_process(cpu) {
            say!("sweeprun rank: cannot pin to CPU {cpu}: {e} (running unpinned)");
        }
    }
    let report = machine.map(|machine| binding_report(index, &machine));
    let mut link = StreamLink {
        input: BufReader::new(io::stdin().lock()),
        output: BufWriter::with_capacity(1 << 20, io::stdout().lock()),
    };
    serve_reporting_errors(&mut link, report.as_deref())
}

/// The machine's cores and CPUs, as a process already bound by its launcher (an MPI rank)
/// reports against (its own affinity says only where it is bound).
pub fn whole_machine() -> sweeprun_hw::topology::Topology {
    use sweeprun_hw::topology::{usable_cpus, Topology};
    Topology::current().unwrap_or_else(|_| Topology::flat(&usable_cpus().unwrap_or_default()))
}

/// The cores and CPUs this process may use (its topology restricted to its affinity):
/// take it before pinning, which narrows the affinity to one CPU.
pub fn machine_view() -> sweeprun_hw::topology::Topology {
    use sweeprun_hw::topology::{usable_cpus, Topology};
    let usable = usable_cpus().unwrap_or_default();
    Topology::current().unwrap_or_else(|_| Topology::flat(&usable)).restricted_to(&usable)
}

/// This process's `--report-bindings` line as rank `index`, in mpirun's format, e.g.
/// `[node1:01234] MCW rank 3 bound to socket 0[core 3[hwt 0]]: [./././B]`.
pub fn binding_report(index: usize, machine: &sweeprun_hw::topology::Topology) -> String {
    let host = nix::unistd::gethostname().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default();
    let bound = sweeprun_hw::topology::current_binding().unwrap_or_default();
    sweeprun_hw::placement::report_binding(&host, std::process::id(), index, machine, &bound)
}

/// Serves `link` and turns a failure into an `ERROR` reply. Returns the exit code.
/// `report` (the `--report-bindings` line) is printed once the sweep has arrived, that is
/// once the launcher has accepted its input (bad input gets one line, the launcher's).
pub fn serve_reporting_errors(link: &mut dyn RankLink, report: Option<&str>) -> u8 {
    match serve(link, report) {
        Ok(()) => 0,
        Err(message) => {
            // The launcher reports it (ranks say nothing on stderr: they may be loading the
            // data while the launcher still checks it, and bad input gets one line, the
            // launcher's). If the launcher is gone, so is whoever would read it.
            let _ = link.send(FromRank::Error(message));
            1
        }
    }
}

/// The rank loop: the sweep, its data, then chunks until the launcher says no more.
/// `report` is printed on stderr when the data has arrived.
pub fn serve(link: &mut dyn RankLink, report: Option<&str>) -> Result<(), String> {
    let (format, spec_text, preselect, cscv_blocks) = match link.receive()? {
        Some(ToRank::Spec { format, spec, preselect, cscv_blocks }) => (format, spec, preselect, cscv_blocks),
        None => return Ok(()),
        Some(other) => return Err(format!("expected the spec first, got {}", other.kind())),
    };
    let format = OutputFormat::from_name(&format).ok_or_else(|| format!("unknown output format `{format}`"))?;
    let mut spec = Spec::parse("(spec from launcher)", &spec_text, Path::new("/"), &[]).map_err(|e| e.to_string())?;
    let data = match link.receive()? {
        Some(ToRank::Data { digest, bytes }) => {
            if blake3::hash(&bytes).to_hex().as_str() != digest {
                return Err("the price data arrived damaged (BLAKE3 digest mismatch)".into());
            }
            sweeprun_kernel::wire::decode(&bytes).map_err(|e| format!("price data from the launcher: {e}"))?
        }
        None => return Ok(()),
        Some(other) => return Err(format!("expected the price data, got {}", other.kind())),
    };
    if let Some(report) = report {
        say!("{report}");
    }
    // `symbol = "*"` becomes the data's assets (the launcher checked the same data).
    spec.grid.bind_symbols(&data.symbols())?;
    let mut evaluator = match (spec.strategy.command(), &spec.output) {
        (None, _) => spec.strategy.evaluator(&data, spec.symbol.as_deref(), &spec.grid, cscv_blocks)?,
        (Some(_), Some(out)) => spec.strategy.command_evaluator(&spec.grid, out)?,
        (Some(_), None) => return Err("a command sweep arrived without its output path".into()),
    };
    let mut rows = RowWriter::for_grid(format, &spec.grid, spec.strategy.extra_columns());
    if let Some((metric, k)) = preselect {
        rows.preselect(&metric, k)?;
    }
    if link.defers_formatting() && spec.strategy.command().is_none() {
        rows.defer();
    }
    let delay = std::env::var(CHUNK_DELAY_ENV).ok().and_then(|v| v.parse().ok()).map(Duration::from_millis);
    link.send(FromRank::Ready)?;
    loop {
        match link.receive()? {
            Some(ToRank::Chunk { start, end }) => {
                if start >= end || end > spec.grid.len() {
                    return Err(format!("chunk {start}..{end} is outside the grid of {} combos", spec.grid.len()));
                }
                let mut blocks = ChunkBlocks::default();
                evaluator.evaluate(start..end, &mut rows, &mut blocks)?;
                if let Some(delay) = delay {
                    std::thread::sleep(delay);
                }
                link.send_rows(start, end, &mut rows, blocks)?;
            }
            Some(other) => return Err(format!("unexpected message {}", other.kind())),
            // The launcher has no more work (or is gone).
            None => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn sweep_input(data: &ToRank) -> Vec<u8> {
        let goog = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/data/GOOG.csv");
        let spec = format!(
            "[data]\npath = \"{goog}\"\n[strategy]\nname = \"sma_cross\"\n[grid]\nfast = [5, 10]\nslow = [20]\n"
        );
        let mut input = Vec::new();
        ToRank::Spec { format: "csv".into(), spec, preselect: None, cscv_blocks: 0 }.write(&mut input).unwrap();
        data.write(&mut input).unwrap();
        ToRank::Chunk { start: 0, end: 2 }.write(&mut input).unwrap();
        input
    }

    fn goog_bytes() -> Vec<u8> {
        let goog = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/data/GOOG.csv"));
        sweeprun_kernel::wire::encode(&sweeprun_kernel::prices::load(goog).unwrap())
    }

    #[test]
    fn a_rank_computes_on_the_data_it_was_sent() {
        let bytes = goog_bytes();
        let data = ToRank::Data { digest: blake3::hash(&bytes).to_hex().to_string(), bytes: Arc::new(bytes) };
        let mut link = StreamLink { input: io::Cursor::new(sweep_input(&data)), output: Vec::new() };
        serve(&mut link, None).unwrap();
        let mut replies = io::Cursor::new(link.output);
        assert_eq!(FromRank::read(&mut replies).unwrap(), Some(FromRank::Ready));
        let Some(FromRank::Rows { start: 0, end: 2, rows, .. }) = FromRank::read(&mut replies).unwrap() else {
            panic!("expected the rows of 0..2");
        };
        assert_eq!(rows.lines().count(), 2);
    }

    #[test]
    fn a_rank_refuses_data_whose_digest_does_not_match() {
        let mut bytes = goog_bytes();
        let digest = blake3::hash(&bytes).to_hex().to_string();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let data = ToRank::Data { digest, bytes: Arc::new(bytes) };
        let mut link = StreamLink { input: io::Cursor::new(sweep_input(&data)), output: Vec::new() };
        let error = serve(&mut link, None).unwrap_err();
        assert_eq!(error, "the price data arrived damaged (BLAKE3 digest mismatch)");
    }
}
