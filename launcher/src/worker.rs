//! A local rank process: loads the data once, then evaluates the chunks of combo ids the
//! launcher sends, until its input closes.
//!
//! Started by the launcher as `sweeprun __rank`; it talks only through stdin/stdout
//! ([`crate::protocol`]) and writes diagnostics to stderr.

use crate::output::{OutputFormat, RowWriter};
use crate::protocol::{FromRank, ToRank};
use crate::spec::Spec;
use std::io::{self, BufReader, BufWriter};
use std::path::Path;
use std::time::Duration;

/// Debugging aid: sleep this many milliseconds before reporting each chunk, so that tests
/// (and people) can watch, pause or kill ranks mid-sweep.
pub const CHUNK_DELAY_ENV: &str = "SWEEPRUN_DEBUG_CHUNK_DELAY_MS";

/// Runs the rank loop on stdin/stdout. Returns the process exit code.
pub fn run_rank(pin_cpu: Option<usize>, parent: Option<u32>) -> u8 {
    if let Some(parent) = parent {
        // Exits with 1 if the launcher is already gone; otherwise we die when it does.
        if let Err(e) = sweeprun_hw::process::die_with_parent(parent) {
            eprintln!("sweeprun rank: cannot follow launcher pid {parent}: {e}");
            return 1;
        }
    }
    if let Some(cpu) = pin_cpu {
        if let Err(e) = sweeprun_hw::topology::pin_current_process(cpu) {
            eprintln!("sweeprun rank: cannot pin to CPU {cpu}: {e} (running unpinned)");
        }
    }
    let mut input = BufReader::new(io::stdin().lock());
    let mut output = BufWriter::with_capacity(1 << 20, io::stdout().lock());
    match serve(&mut input, &mut output) {
        Ok(()) => 0,
        Err(message) => {
            // The launcher reports it (ranks say nothing on stderr: they may be loading the
            // data while the launcher still checks it, and bad input gets one line, the
            // launcher's). If the launcher is gone, so is whoever would read it.
            let _ = FromRank::Error(message).write(&mut output);
            1
        }
    }
}

fn serve(input: &mut impl io::BufRead, output: &mut impl io::Write) -> Result<(), String> {
    let (format, spec_text, preselect) = match ToRank::read(input) {
        Ok(Some(ToRank::Spec { format, spec, preselect })) => (format, spec, preselect),
        Ok(None) => return Ok(()),
        Ok(Some(other)) => return Err(format!("expected the spec first, got {other:?}")),
        Err(e) => return Err(format!("reading the spec: {e}")),
    };
    let format = OutputFormat::from_name(&format).ok_or_else(|| format!("unknown output format `{format}`"))?;
    let mut spec = Spec::parse("(spec from launcher)", &spec_text, Path::new("/"), &[]).map_err(|e| e.to_string())?;
    let data = sweeprun_kernel::prices::load(&spec.data_path).map_err(|e| e.to_string())?;
    // `symbol = "*"` becomes the data's assets (the launcher checked the same data).
    spec.grid.bind_symbols(&data.symbols())?;
    let mut evaluator = spec.strategy.evaluator(&data, spec.symbol.as_deref(), &spec.grid)?;
    let mut rows = RowWriter::for_grid(format, &spec.grid, spec.strategy.extra_columns());
    if let Some((metric, k)) = preselect {
        rows.preselect(&metric, k)?;
    }
    let delay = std::env::var(CHUNK_DELAY_ENV).ok().and_then(|v| v.parse().ok()).map(Duration::from_millis);
    let lost = |e: io::Error| format!("launcher connection lost: {e}");
    FromRank::Ready.write(output).map_err(lost)?;
    loop {
        match ToRank::read(input) {
            Ok(Some(ToRank::Chunk { start, end })) => {
                if start >= end || end > spec.grid.len() {
                    return Err(format!("chunk {start}..{end} is outside the grid of {} combos", spec.grid.len()));
                }
                evaluator.evaluate(start..end, &mut rows)?;
                if let Some(delay) = delay {
                    std::thread::sleep(delay);
                }
                let (text, best) = rows.take();
                FromRank::Rows { start, end, rows: text, best }.write(output).map_err(lost)?;
            }
            Ok(Some(other)) => return Err(format!("unexpected message {other:?}")),
            // The launcher closed our input: the sweep is done (or the launcher is gone).
            Ok(None) => return Ok(()),
            Err(e) => return Err(lost(e)),
        }
    }
}
