//! `sweeprun run`: validate everything, run the ranks, gather the rows exactly once,
//! write the table atomically, print the top-K summary.

use crate::backend::local::{LocalRanks, SoloRank};
use crate::backend::Backend;
use crate::block_store::{BlockStore, StoredSums};
use crate::cli::{BindTo, MapBy, RunArgs};
use crate::command_table;
use crate::error::{Failure, Result};
use crate::ledger::{self, Journal};
use crate::overfitting;
use crate::progress::Progress;
use crate::protocol::{ChunkBlocks, ToRank};
use crate::report;
use crate::sched::{self, Chunking, Observer, Scheduler, Transport};
use crate::signals;
use crate::spec::Spec;
use crate::strategy::ReturnGroup;
use crate::table::{self, OutputFormat};
use crate::tearsheet::{self, tearsheet_count, write_tearsheets};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime};
use sweeprun_kernel::metrics::{Convention, Metrics};
use sweeprun_kernel::overfitting::Blocks;
use sweeprun_kernel::prices::PriceSet;

/// Most rank processes one launcher starts.
const MAX_RANKS: u64 = 4096;

/// CSCV blocks by default: the largest S whose statistics cost at most a quarter of the
/// large SMA grid's sweep (BENCHMARKS.md, "Overfitting statistics").
pub const DEFAULT_CSCV_BLOCKS: usize = 8;

/// Runs one sweep; on success returns the summary to print on stdout.
pub fn run(args: &RunArgs) -> Result<String> {
    check_np(args)?;
    if let (false, Some(flag)) = (args.backend == Backend::Slurm, args.slurm.first_given()) {
        return Err(Failure::usage(format!("{flag}: only with --backend slurm")));
    }
    match args.backend {
        Backend::Local => {
            // The ranks start now and load their executable while the spec is checked; they
            // get the spec once it passes (on bad input they just see their input close).
            let (placement, oversubscribed) = placement(args);
            let oversubscribed = (args.bind_to == BindTo::Core && oversubscribed).then(|| {
                let cpus = sweeprun_hw::topology::usable_cpus().unwrap_or_default();
                format!(
                    "{} on {}: oversubscribed, not pinning ranks",
                    report::counted(placement.len() as u64, "rank"),
                    report::counted(cpus.len() as u64, "CPU")
                )
            });
            if let ([pin], true) = (placement.as_slice(), SoloRank::may_use_thread(&args.thermal)) {
                let mut rank = SoloRank::new(*pin, args.report_bindings);
                return sweep(args, Backend::Local, &mut rank, oversubscribed);
            }
            let mut ranks = LocalRanks::start(&placement, args.report_bindings);
            sweep(args, Backend::Local, &mut ranks, oversubscribed)
        }
        Backend::Mpi => crate::backend::mpirun::run(args),
        Backend::Slurm => crate::backend::slurm::run(args),
    }
}

/// Runs one sweep over `transport`'s ranks (already started, waiting for the sweep): the
/// part shared by every backend. `warning` is printed once every input check has passed.
pub fn sweep(
    args: &RunArgs,
    backend: Backend,
    transport: &mut dyn Transport,
    warning: Option<String>,
) -> Result<String> {
    let started_at = SystemTime::now();
    let clock = Instant::now();
    let preselect = preselection(args)?;
    let plan = Plan::new(args, transport.ranks(), &mut |spec, format, cscv_blocks| {
        let message = ToRank::Spec {
            format: format.name().to_string(),
            spec: spec.effective_toml(),
            // A command's columns are known only at the end: the launcher ranks then.
            preselect: if spec.strategy.command().is_some() { None } else { preselect.clone() },
            cscv_blocks,
        };
        transport.spec_known(spec.strategy.command().is_some());
        sched::broadcast(transport, &message);
    })?;
    let Plan { spec, out, format, ranks, data, data_sha256, mut columns, group, kernel, cscv_blocks, return_groups } =
        plan;
    let is_command = spec.strategy.command().is_some();
    // A command sweep journals its records (JSON lines) whatever the table's format.
    let journal_format = if is_command { OutputFormat::JsonLines } else { format };
    transport.keep(ranks)?;
    let thermal = crate::thermal::Thermal::start(&args.thermal, &transport.process_groups())?;
    // The data is parsed once, here; the ranks get it in binary form, with its digest.
    let data_bytes = sweeprun_kernel::wire::encode(&data);
    let data_message =
        ToRank::Data { digest: blake3::hash(&data_bytes).to_hex().to_string(), bytes: Arc::new(data_bytes) };
    sched::broadcast(transport, &data_message);
    let planned = clock.elapsed().as_secs_f64();
    let combos = spec.grid.len();
    let fingerprint = fingerprint(&spec, &data_sha256, format);
    let journal_path = ledger::journal_path(&out);
    let journal_meta = ledger::journal_meta_path(&out);
    if signals::interrupted() {
        return Err(Failure::Interrupted("interrupted before the sweep started; nothing was written".into()));
    }

    // From here on files are written; everything above only read and checked.
    if journal_path.exists() && finished_table(&out, &fingerprint).is_some() {
        // The launcher died after publishing the table but before removing its journal, or
        // the same sweep is running again right now: only an unlocked journal is stale.
        let journal = std::fs::File::open(&journal_path)
            .map_err(|e| Failure::runtime(format!("cannot open {}: {e}", journal_path.display())))?;
        if matches!(sweeprun_hw::process::try_lock_exclusive(&journal), Ok(false)) {
            return Err(Failure::usage(format!(
                "another sweeprun process is writing {}; wait for it or stop it first",
                journal_path.display()
            )));
        }
        remove_journal(&out);
    }
    let (reopened, done, resumed) = if journal_path.exists() {
        if !args.resume {
            return Err(Failure::usage(format!(
                "{} holds the results of an interrupted sweep; add --resume to finish it, or delete it to start over",
                journal_path.display()
            )));
        }
        check_journal_owner(&journal_meta, &fingerprint, &journal_path)?;
        let (journal, mut done, mut resumed) =
            Journal::reopen(&journal_path, &ledger::table_stream_path(&out), journal_format, &columns, combos)?;
        if args.retry_failed {
            let text = std::fs::read_to_string(&journal_path)
                .map_err(|e| Failure::runtime(format!("cannot read {}: {e}", journal_path.display())))?;
            let records = command_table::latest_records(&text, combos);
            resumed -= command_table::forget_not_ok(&records, &mut done);
        }
        (Some(journal), done, resumed)
    } else {
        let retry = if args.retry_failed { finished_table(&out, &fingerprint) } else { None };
        if let Some(table) = retry {
            // A finished command sweep with failed rows: its records start a new journal.
            match command_table::retry_journal(&spec.grid, &out, format, &table)? {
                Some(records) => {
                    let meta = json!({ "fingerprint": fingerprint, "combos": combos, "format": format.name() });
                    ledger::write_atomically(&journal_meta, meta.to_string().as_bytes())?;
                    let mut journal = Journal::create(&journal_path, journal_format, &columns)?;
                    let lines: String = records.iter().map(|r| r.to_line() + "\n").collect();
                    journal.append(&lines)?;
                    journal.sync()?;
                    let mut done = vec![true; combos as usize];
                    let retried =
                        command_table::forget_not_ok(&records.into_iter().map(Some).collect::<Vec<_>>(), &mut done);
                    say!(
                        "sweeprun: {} finished with {}; running them again",
                        out.display(),
                        report::counted(retried, "non-ok combo")
                    );
                    (Some(journal), done, combos - retried)
                }
                None => {
                    say!("sweeprun: {} has no failed, timed-out or bad_output rows; nothing to retry", out.display());
                    let columns = command_table::table_columns(&table, format);
                    return Ok(command_summary(&table, format, &columns, args, group.as_ref()));
                }
            }
        } else {
            if args.resume {
                if let Some(table) = finished_table(&out, &fingerprint) {
                    say!("sweeprun: {} is already complete; nothing to resume", out.display());
                    if is_command {
                        let columns = command_table::table_columns(&table, format);
                        return Ok(command_summary(&table, format, &columns, args, group.as_ref()));
                    }
                    let k = args.top.max(tearsheet_count(args.tearsheet.as_deref())?);
                    let (best, total) = report::ranked_rows(&table, format, &columns, &args.sort_by, k, group.as_ref());
                    write_tearsheets(&spec, &data, &best, &out, asked_tearsheets(args)?)?;
                    let mut text = summary(&best, total, &columns, args, group.as_ref());
                    if let Some(statistics) =
                        recorded_statistics(&out).filter(|s| s.overall.cscv_blocks as usize == cscv_blocks)
                    {
                        text.push_str(&statistics.summary_lines(args.group_by.as_deref() == Some(crate::grid::SYMBOL)));
                    }
                    write_report(args, &out)?;
                    return Ok(text);
                }
                if args.retry_failed {
                    return Err(Failure::usage(format!(
                        "--retry-failed: no sweep of this spec to retry at {}: no journal, and no finished table \
                         whose sidecar matches this spec (run it without --resume --retry-failed)",
                        out.display()
                    )));
                }
                say!("sweeprun: no journal at {}; starting the sweep from the beginning", journal_path.display());
            }
            (None, vec![false; combos as usize], 0)
        }
    };
    // Warnings wait until every check passed: a bad input gets its one error line only.
    if let Some(warning) = warning {
        say!("sweeprun: {warning}");
    }

    // A command runs for seconds to hours: one combo per chunk balances the ranks best.
    let default_chunking = if is_command { Chunking::Fixed(1) } else { Chunking::Guided { ranks } };
    let chunking = args.chunk_size.map_or(default_chunking, Chunking::Fixed);
    let chunks = sched::chunks_of_remaining(&done, chunking);
    let any_work = !chunks.is_empty();
    if is_command && reopened.is_none() {
        // A fresh command sweep: working directories and records of an earlier sweep to
        // the same table are not this one's (every combo runs again). Before any rank
        // starts a command there.
        let runs = ledger::runs_dir(&out);
        match std::fs::remove_dir_all(&runs) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Failure::runtime(format!("cannot remove {}: {e}", runs.display())))
            }
            _ => {}
        }
    }
    let mut scheduler = Scheduler::new(chunks, ranks).expect_block_sums(2 * cscv_blocks);
    // The ranks start computing now; the output files are set up while they do (a chunk's
    // rows are only taken once they are).
    scheduler.start(transport);
    let journal = match reopened {
        Some(journal) => journal,
        None => {
            create_parent(&out)?;
            // A table or block sums left by an interrupted sweep whose journal was deleted
            // are not ours: gone before our fingerprint exists, so a resume can never fold
            // them in (whatever this run's --cscv-blocks).
            for stale in [ledger::table_stream_path(&out), ledger::block_store_path(&out)] {
                match std::fs::remove_file(&stale) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(Failure::runtime(format!("cannot remove {}: {e}", stale.display())))
                    }
                    _ => {}
                }
            }
            // The fingerprint goes first: a journal never exists without its owner's record.
            let meta = json!({ "fingerprint": fingerprint, "combos": combos, "format": format.name() });
            ledger::write_atomically(&journal_meta, meta.to_string().as_bytes())?;
            Journal::create(&journal_path, journal_format, &columns)?
        }
    };
    let mut progress = Progress::new(combos, resumed);
    let ranked = args.top.max(tearsheet_count(args.tearsheet.as_deref())?);
    // With nothing resumed, the final table is written (in id order) while the ranks work.
    let stream = if resumed == 0 && !is_command {
        let ranker = report::Ranker::new(format, &columns, &args.sort_by, ranked).grouped(group.as_ref(), &columns);
        Some(ledger::TableStream::create(&out, format, &columns, combos, ranker)?)
    } else {
        None
    };
    let block_store = match (cscv_blocks, resumed) {
        (0, _) => None,
        (s, 0) => Some(BlockStore::create(&ledger::block_store_path(&out), &fingerprint, combos, s)?),
        (s, _) => Some(BlockStore::reopen(&ledger::block_store_path(&out), &fingerprint, combos, s)?),
    };
    let mut sink = ledger::RowSink::new(journal, stream, block_store);
    let ran = if any_work {
        let mut observer = Watch { progress: &mut progress, thermal: thermal.as_ref() };
        scheduler.run(transport, &mut observer, &mut |ids, rows, best, sums| sink.accept(ids, rows, best, sums))
    } else {
        Ok(())
    };
    match ran {
        // The ranks wind down while the table is finished.
        Ok(()) => transport.close(),
        Err(failure) => {
            progress.abandon();
            // Everything received stays on disk for --resume (journal and table so far).
            let kept = match sink.sync() {
                Ok(()) => format!(
                    "; results so far are kept in {}* (run the same command with --resume to finish)",
                    journal_path.display()
                ),
                Err(e) => format!("; saving the results so far failed too: {e}"),
            };
            return Err(match failure {
                Failure::Interrupted(m) => Failure::Interrupted(format!("{m}{kept}")),
                Failure::Runtime(m) => Failure::Runtime(format!("{m}{kept}")),
                usage => usage,
            });
        }
    }
    let (journal, stream, block_store) = sink.into_parts();
    progress.finish(ranks);
    // The agent lets the ranks go (resumed) before they are waited for.
    let thermal = thermal.map(crate::thermal::Thermal::finish);
    let swept = clock.elapsed().as_secs_f64();

    // A command sweep's table, ranked once its columns are known.
    let mut command_text = String::new();
    // A fresh sweep's table is published together with its sidecar, below.
    let mut unpublished = None;
    let (table_blake3, (best, total)) = match stream {
        Some(stream) => {
            let (digest, ranker, table) = stream.complete()?;
            unpublished = Some(table);
            (digest, ranker.finish(&columns))
        }
        None if is_command => {
            let table = command_table::finish(&spec.grid, &journal_path, &out, format, combos)?;
            columns = table.columns;
            command_text = table.text;
            (table_digest(command_text.as_bytes()), (Vec::new(), 0))
        }
        None => {
            let table = ledger::assemble_table(&journal_path, format, &columns, combos)?;
            ledger::write_atomically(&out, table.as_bytes())?;
            let best = report::ranked_rows(&table, format, &columns, &args.sort_by, ranked, group.as_ref());
            (table_digest(table.as_bytes()), best)
        }
    };
    let statistics = match block_store {
        Some(store) => {
            let mut sums = store.into_sums();
            recompute_missing_sums(&spec, &data, &mut sums)?;
            let statistics = overfitting::of_sweep(&return_groups, &sums, |id| best_returns(&spec, &data, id))?;
            Some(statistics)
        }
        None => None,
    };
    let finished = FinishedTable {
        spec: &spec,
        out: &out,
        format,
        kernel,
        fingerprint: &fingerprint,
        data_sha256: &data_sha256,
        columns: &columns,
        blake3: &table_blake3,
    };
    let sidecar_text = sidecar_text(
        &finished,
        RunFacts {
            backend: backend.name(),
            ranks: json!(ranks),
            resumed_combos: json!(resumed),
            thermal: json!(thermal),
            started_at,
            wall_seconds: clock.elapsed().as_secs_f64(),
            timings: json!({
                "plan_seconds": planned,
                "sweep_seconds": swept - planned,
                "assemble_seconds": clock.elapsed().as_secs_f64() - swept,
            }),
            overfitting: json!(statistics),
        },
    );
    // The table is in place (or goes with it); now the sidecar that vouches for it; then
    // the journal goes.
    match unpublished {
        Some(table) => ledger::publish_with_sidecar(table, &out, &ledger::sidecar_path(&out), sidecar_text.as_bytes())?,
        None => ledger::write_atomically(&ledger::sidecar_path(&out), sidecar_text.as_bytes())?,
    }
    drop(journal);
    remove_journal(&out);
    transport.wait();
    say!("sweeprun: wrote {} ({})", out.display(), report::counted(combos, "row"));
    if is_command {
        write_report(args, &out)?;
        return Ok(command_summary(&command_text, format, &columns, args, group.as_ref()));
    }
    write_tearsheets(&spec, &data, &best, &out, asked_tearsheets(args)?)?;
    let mut text = summary(&best, total, &columns, args, group.as_ref());
    if let Some(statistics) = &statistics {
        text.push_str(&statistics.summary_lines(args.group_by.as_deref() == Some(crate::grid::SYMBOL)));
    }
    write_report(args, &out)?;
    Ok(text)
}

/// `--report`: the finished table's HTML report, its metric the summary's. The table is
/// already published: a report that cannot be made is a warning, not a failed sweep.
fn write_report(args: &RunArgs, out: &Path) -> Result<()> {
    if args.report {
        let asked = crate::sweep_report::ReportArgs {
            metric: args.sort_by.clone(),
            ..crate::sweep_report::ReportArgs::for_table(out)
        };
        match crate::sweep_report::report(&asked) {
            Ok(path) => say!("sweeprun: wrote {}", path.display()),
            Err(e) => say!("sweeprun: warning: no report: {e} (the table is complete)"),
        }
    }
    Ok(())
}

/// The overfitting statistics a finished table's sidecar holds.
fn recorded_statistics(out: &Path) -> Option<overfitting::SweepStatistics> {
    let text = std::fs::read_to_string(ledger::sidecar_path(out)).ok()?;
    let sidecar: serde_json::Value = serde_json::from_str(&text).ok()?;
    serde_json::from_value(sidecar.get("overfitting")?.clone()).ok()
}

/// Computes the block sums the ranks' records lack (a journal from a sweep run with other
/// blocks or none, or records a crash tore) here, with the ranks' evaluator.
fn recompute_missing_sums(spec: &Spec, data: &PriceSet, sums: &mut StoredSums) -> Result<()> {
    let missing = sums.missing();
    let count: u64 = missing.iter().map(|r| r.end - r.start).sum();
    if count == 0 {
        return Ok(());
    }
    say!("sweeprun: computing the block sums of {} here (not recorded by the ranks)", report::counted(count, "combo"));
    compute_sums(spec, data, sums)
}

/// Computes the block sums of every combo `sums` lacks, with the ranks' evaluator.
pub(crate) fn compute_sums(spec: &Spec, data: &PriceSet, sums: &mut StoredSums) -> Result<()> {
    let missing = sums.missing();
    let failed = |e: String| Failure::runtime(format!("block sums: {e}"));
    let mut evaluator =
        spec.strategy.evaluator(data, spec.symbol.as_deref(), &spec.grid, sums.blocks).map_err(failed)?;
    let mut rows = table::RowWriter::for_grid(OutputFormat::Csv, &spec.grid, spec.strategy.extra_columns());
    for range in missing {
        let mut start = range.start;
        while start < range.end {
            let end = range.end.min(start + 4096);
            let mut blocks = ChunkBlocks::default();
            evaluator.evaluate(start..end, &mut rows, &mut blocks).map_err(failed)?;
            rows.take();
            sums.fill(start..end, &blocks);
            start = end;
        }
    }
    Ok(())
}

/// Combo `id`'s `standard` returns along its equity curve (the tearsheet path).
fn best_returns(spec: &Spec, data: &PriceSet, id: u64) -> std::result::Result<Vec<f64>, String> {
    let trace = spec.strategy.trace(data, spec.symbol.as_deref(), &spec.grid, id)?;
    Ok(trace.equity.windows(2).map(|w| w[1] / w[0] - 1.0).collect())
}

/// What a finished table's sidecar says about the sweep that made it (its identity).
pub(crate) struct FinishedTable<'a> {
    pub spec: &'a Spec,
    pub out: &'a Path,
    pub format: OutputFormat,
    pub kernel: &'static str,
    pub fingerprint: &'a str,
    pub data_sha256: &'a str,
    pub columns: &'a [String],
    /// The table's BLAKE3 digest.
    pub blake3: &'a str,
}

/// What a sidecar says about how the sweep ran (backend, ranks, times).
pub(crate) struct RunFacts {
    pub backend: &'static str,
    pub ranks: serde_json::Value,
    pub resumed_combos: serde_json::Value,
    pub thermal: serde_json::Value,
    pub started_at: SystemTime,
    pub wall_seconds: f64,
    pub timings: serde_json::Value,
    /// The overfitting statistics ([`overfitting::SweepStatistics`]), or null.
    pub overfitting: serde_json::Value,
}

/// The sidecar `<out>.meta.json` of a finished table, as text.
pub(crate) fn sidecar_text(table: &FinishedTable, run: RunFacts) -> String {
    let FinishedTable { spec, out, format, kernel, fingerprint, data_sha256, columns, blake3 } = *table;
    let mut recorded_spec = spec.effective.clone();
    recorded_spec.insert("output".into(), toml::Value::Table(toml::toml! { path = (out.display().to_string()) }));
    let sidecar = json!({
        "sweeprun_version": env!("CARGO_PKG_VERSION"),
        "spec_file": spec.origin,
        "spec": toml::to_string(&recorded_spec).expect("a TOML table serialises"),
        "strategy": spec.strategy.name(),
        "strategy_settings": format!("{:?}", spec.strategy),
        "statistics": spec.strategy.convention().map(Convention::name),
        "kernel": kernel,
        "fingerprint": fingerprint,
        "data": spec.data_path.as_ref().map(|path| json!({ "path": path.display().to_string(), "sha256": data_sha256 })),
        "combos": spec.grid.len(),
        "columns": columns,
        "output": { "path": out.display().to_string(), "format": format.name(), "blake3": blake3 },
        "backend": run.backend,
        // Under SLURM (`--backend slurm`, or srun by hand): which job wrote the table.
        "slurm_job": std::env::var("SLURM_JOB_ID").ok(),
        "ranks": run.ranks,
        "resumed_combos": run.resumed_combos,
        "thermal": run.thermal,
        "started_at": ledger::rfc3339(run.started_at),
        "finished_at": ledger::rfc3339(SystemTime::now()),
        "wall_seconds": run.wall_seconds,
        "timings": run.timings,
        "overfitting": run.overfitting,
    });
    serde_json::to_string_pretty(&sidecar).expect("JSON values serialise") + "\n"
}

fn remove_journal(out: &Path) {
    let _ = std::fs::remove_file(ledger::block_store_path(out));
    let _ = std::fs::remove_file(ledger::journal_path(out));
    let _ = std::fs::remove_file(ledger::table_stream_path(out));
    let _ = std::fs::remove_file(ledger::journal_meta_path(out));
}

/// Everything checked before the first byte is written.
pub(crate) struct Plan {
    pub spec: Spec,
    pub out: PathBuf,
    pub format: OutputFormat,
    pub ranks: usize,
    pub data: PriceSet,
    pub data_sha256: String,
    pub columns: Vec<String>,
    /// `--group-by`: the summary ranks within each value of this grid key.
    pub group: Option<report::GroupBy>,
    /// The kernel path the ranks will run.
    pub kernel: &'static str,
    /// CSCV blocks of the overfitting statistics (0: none).
    pub cscv_blocks: usize,
    /// The combos that share a time axis, which the blocks cut (when `cscv_blocks` > 0).
    pub return_groups: Vec<ReturnGroup>,
}

impl Plan {
    /// Checks everything for a sweep over at most `available_ranks` ranks; calls `on_spec`
    /// as soon as the spec and output format are known (before the data is loaded and
    /// checked), so the ranks can start loading.
    pub(crate) fn new(
        args: &RunArgs,
        available_ranks: usize,
        on_spec: &mut dyn FnMut(&Spec, OutputFormat, usize),
    ) -> Result<Plan> {
        sweeprun_kernel::arch::selected_kernel().map_err(|e| Failure::usage(e.to_string()))?;
        if args.chunk_size == Some(0) {
            return Err(Failure::usage("--chunk-size: expected at least 1 combo, got 0"));
        }
        let mut overrides = args.set.clone();
        if let Some(stats) = &args.stats {
            if Convention::from_name(stats).is_none() {
                return Err(Failure::usage(format!("--stats: expected standard or qstrader, got `{stats}`")));
            }
            overrides.push(format!("strategy.stats={stats}"));
        }
        tearsheet_count(args.tearsheet.as_deref())?;
        let mut spec = Spec::load(&args.spec, &overrides)?;
        let out = match (&args.out, &spec.output) {
            (Some(out), _) => {
                if out.as_os_str().as_encoded_bytes().ends_with(b"/") {
                    return Err(Failure::usage(format!(
                        "--out {}: ends with `/` (a directory); expected a file such as results.csv",
                        out.display()
                    )));
                }
                OutputFormat::from_path(out).map_err(|e| Failure::usage(format!("--out: {e}")))?;
                crate::spec::normalize(&std::path::absolute(out).map_err(|e| Failure::usage(format!("--out: {e}")))?)
            }
            (None, Some(out)) => out.clone(),
            (None, None) => {
                return Err(Failure::usage(format!(
                    "{}: no output path; add [output] path = \"results.csv\" or pass --out PATH",
                    spec.origin
                )))
            }
        };
        let format = OutputFormat::from_path(&out).map_err(Failure::usage)?;
        check_output_location(&out)?;
        let mut inputs = vec![("spec", args.spec.as_path())];
        if let Some(data) = &spec.data_path {
            inputs.push(("data", data));
        }
        check_outputs_spare_inputs(&out, &inputs)?;
        let is_command = spec.strategy.command().is_some();
        if is_command {
            if !args.equity.is_empty() || args.tearsheet.is_some() {
                return Err(Failure::usage(
                    "--equity/--tearsheet: a [command] sweep has no tearsheets (the command writes its own files)",
                ));
            }
            // The ranks run the command in `<out>.runs/`: they learn `out` from the spec.
            let output = spec.effective.entry("output").or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let toml::Value::Table(output) = output {
                output.insert("path".into(), toml::Value::String(out.display().to_string()));
            }
        } else if args.retry_failed {
            return Err(Failure::usage(
                "--retry-failed: only a [command] sweep has failed rows to retry; this spec runs a built-in strategy",
            ));
        }
        let cscv_blocks = requested_cscv_blocks(args.cscv_blocks, is_command)?;
        on_spec(&spec, format, cscv_blocks);
        // The checksum (a second read of the files) runs beside the parse; errors are
        // reported in the same order as before: data, strategy, checksum.
        let (data, data_sha256) = match &spec.data_path {
            // A command without [data] reads its own: the ranks get an empty price set.
            None => (Ok(PriceSet { assets: Vec::new() }), Ok(String::new())),
            Some(path) => std::thread::scope(|scope| {
                let sum = scope.spawn(|| checksum(path));
                let data = sweeprun_kernel::prices::load(path);
                (data, sum.join().expect("the checksum thread does not panic"))
            }),
        };
        let data = data.map_err(|e| Failure::usage(e.to_string()))?;
        // The grid's size is known once `symbol = "*"` meets the data.
        spec.grid.bind_symbols(&data.symbols()).map_err(|e| spec.blame(e))?;
        if let Some(&id) = args.equity.iter().find(|&&id| id >= spec.grid.len()) {
            return Err(Failure::usage(format!(
                "--equity: combo {id} is not in the grid (ids are 0..={})",
                spec.grid.len() - 1
            )));
        }
        let kernel = spec.strategy.validate(&data, spec.symbol.as_deref(), &spec.grid).map_err(|e| spec.blame(e))?;
        let return_groups = match cscv_blocks {
            0 => Vec::new(),
            s => {
                let groups = spec
                    .strategy
                    .return_groups(&data, spec.symbol.as_deref(), &spec.grid)
                    .map_err(|e| spec.blame(e))?;
                for group in &groups {
                    Blocks::new(group.returns, s).map_err(|e| {
                        let of = group.symbol.as_ref().map(|name| format!(" ({name})")).unwrap_or_default();
                        Failure::usage(format!("--cscv-blocks {s}: {e}{of}; pass fewer, or 0 to skip the statistics"))
                    })?;
                }
                groups
            }
        };
        let data_sha256 = data_sha256?;
        let ranks = available_ranks.min(usize::try_from(spec.grid.len()).unwrap_or(usize::MAX)).max(1);
        let columns = if is_command {
            // The JSON keys join at the end; any column name may be ranked by then.
            command_table::assemble(&spec.grid, &[], format).columns
        } else {
            let columns = table::columns(&spec.grid.names(), &spec.strategy.extra_columns());
            report::check_rank_metric(&args.sort_by, &columns).map_err(Failure::usage)?;
            columns
        };
        let group = report::GroupBy::of(&spec.grid, args.group_by.as_deref()).map_err(Failure::usage)?;
        Ok(Plan { spec, out, format, ranks, data, data_sha256, columns, group, kernel, cscv_blocks, return_groups })
    }
}

/// Where the ranks of `-np` (default: one per usable CPU) go, decided by
/// [`sweeprun_hw::placement::place`] from `--bind-to` and `--map-by`: a CPU per rank, or
/// all unpinned when there are more ranks than CPUs (then `true`: oversubscribed). Decided
/// before the grid size is known (the ranks start early); a smaller grid uses the first ranks.
fn placement(args: &RunArgs) -> (Vec<Option<usize>>, bool) {
    use sweeprun_hw::placement;
    let usable = sweeprun_hw::topology::usable_cpus().unwrap_or_default();
    let topology =
        sweeprun_hw::topology::Topology::current().unwrap_or_else(|_| sweeprun_hw::topology::Topology::flat(&usable));
    let ranks = match args.np {
        Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
        None => usable.len().max(1),
    };
    let bind_to = match args.bind_to {
        BindTo::Core => placement::BindTo::Core,
        BindTo::None => placement::BindTo::None,
    };
    let map_by = match args.map_by {
        MapBy::Core => placement::MapBy::Core,
        MapBy::Socket => placement::MapBy::Socket,
        MapBy::Node => placement::MapBy::Node,
    };
    let placed = placement::place(&topology, &usable, ranks, bind_to, map_by);
    (placed.cpus, placed.oversubscribed)
}

/// What the ranks preselect from each chunk for the top-K: the metric and K (none when
/// nothing is ranked, or when the ranking column is not one of the common metrics, which
/// are all the ranks can preselect by, or with `--group-by`, since a chunk's best rows
/// overall need not hold each group's best: then the launcher ranks every row itself).
fn preselection(args: &RunArgs) -> Result<Option<(String, usize)>> {
    let ranked = args.top.max(tearsheet_count(args.tearsheet.as_deref())?);
    let by_metric = Metrics::NAMES.contains(&args.sort_by.as_str()) && args.group_by.is_none();
    Ok((ranked > 0 && by_metric).then(|| (args.sort_by.clone(), ranked)))
}

/// Checks a sweep's input as `sweeprun run` would (flags, spec, data, output path) and
/// writes nothing: the MPI front end's check before it starts mpirun. Returns the output
/// path.
pub fn check(args: &RunArgs) -> Result<PathBuf> {
    check_sweep(args).map(|checked| checked.out)
}

/// What a front end (mpirun's, SLURM's) learns from checking a sweep.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The results table.
    pub out: PathBuf,
    /// Combos in the grid.
    pub combos: u64,
    /// The table's format.
    pub format: OutputFormat,
    /// Whether it is a `[command]` sweep.
    pub is_command: bool,
}

/// [`check`], with what the SLURM front end needs to follow the sweep.
pub fn check_sweep(args: &RunArgs) -> Result<Checked> {
    check_np(args)?;
    preselection(args)?;
    let plan = Plan::new(args, 1, &mut |_, _, _| {})?;
    Ok(Checked {
        combos: plan.spec.grid.len(),
        is_command: plan.spec.strategy.command().is_some(),
        format: plan.format,
        out: plan.out,
    })
}

/// The tearsheets `--equity`, `--tearsheet` and `--group-by` ask for.
fn asked_tearsheets(args: &RunArgs) -> Result<tearsheet::Asked<'_>> {
    Ok(tearsheet::Asked {
        ids: &args.equity,
        top: tearsheet_count(args.tearsheet.as_deref())?,
        group_by: args.group_by.as_deref(),
    })
}

/// The CSCV blocks a sweep uses: `--cscv-blocks` (0: none), or [`DEFAULT_CSCV_BLOCKS`]
/// for a built-in strategy; a `[command]` sweep reports no returns.
fn requested_cscv_blocks(flag: Option<usize>, is_command: bool) -> Result<usize> {
    match (flag, is_command) {
        (None, true) | (Some(0), _) => Ok(0),
        (None, false) => Ok(DEFAULT_CSCV_BLOCKS),
        (Some(_), true) => Err(Failure::usage(
            "--cscv-blocks: a [command] sweep reports no returns to compute overfitting statistics from",
        )),
        (Some(s), false) => match Blocks::new(usize::MAX, s) {
            Err(e) => Err(Failure::usage(format!("--cscv-blocks {s}: {e} (0 turns the statistics off)"))),
            Ok(_) => Ok(s),
        },
    }
}

/// Refuses a `-np` of 0 or above [`MAX_RANKS`].
fn check_np(args: &RunArgs) -> Result<()> {
    match args.np {
        Some(0) => Err(Failure::usage("-np: expected at least 1 rank, got 0")),
        Some(n) if n > MAX_RANKS => {
            Err(Failure::usage(format!("-np: {n} ranks is more than the limit of {MAX_RANKS}")))
        }
        _ => Ok(()),
    }
}

/// The sweep's view of the terminal, of signals and of the node agent, for the scheduler.
struct Watch<'a> {
    progress: &'a mut Progress,
    thermal: Option<&'a crate::thermal::Thermal>,
}

impl Observer for Watch<'_> {
    fn interrupted(&self) -> bool {
        signals::interrupted()
    }

    fn advanced(&mut self, combos: u64) {
        if let Some(thermal) = self.thermal {
            self.progress.set_suffix(thermal.progress_text());
        }
        self.progress.advance(combos);
    }

    fn note(&mut self, line: &str) {
        self.progress.note(line);
    }
}

/// Refuses an output path that cannot be written (a directory, a read-only place).
fn check_output_location(out: &Path) -> Result<()> {
    if out.is_dir() {
        return Err(Failure::usage(format!(
            "output {} is a directory; give a .csv or .jsonl file path",
            out.display()
        )));
    }
    // Walk up to the nearest existing ancestor: that is where directories would be created.
    let mut dir = out.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
    while !dir.exists() {
        match dir.parent() {
            Some(parent) => dir = parent.to_path_buf(),
            None => break,
        }
    }
    if !dir.is_dir() {
        return Err(Failure::usage(format!("output {}: {} is not a directory", out.display(), dir.display())));
    }
    let probe = dir.join(format!(".sweeprun-write-test-{}", std::process::id()));
    match std::fs::File::create(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(Failure::usage(format!("output {}: cannot write in {}: {e}", out.display(), dir.display()))),
    }
}

/// Every path a sweep writing `out` may create, replace or delete: the table, its
/// sidecar, the journal files, their temp files (`<path>.tmp`, see
/// [`ledger::write_atomically`]) and the tearsheets directory.
fn written_paths(out: &Path) -> Vec<PathBuf> {
    let files = [
        out.to_path_buf(),
        ledger::sidecar_path(out),
        ledger::journal_path(out),
        ledger::journal_meta_path(out),
        ledger::table_stream_path(out),
        ledger::block_store_path(out),
        ledger::runs_dir(out),
        crate::sweep_report::html_path(out),
        crate::sweep_report::svg_path(out),
    ];
    let mut paths: Vec<PathBuf> = files
        .iter()
        .flat_map(|file| {
            let mut temp = file.as_os_str().to_owned();
            temp.push(".tmp");
            [file.clone(), PathBuf::from(temp)]
        })
        .collect();
    paths.push(ledger::tearsheet_dir(out));
    paths
}

/// `path` with symlinks resolved, also when it does not exist yet: its nearest existing
/// ancestor canonicalised, the rest appended.
fn resolved(path: &Path) -> PathBuf {
    let mut existing = path.to_path_buf();
    let mut missing = Vec::new();
    loop {
        if let Ok(real) = std::fs::canonicalize(&existing) {
            return missing.iter().rev().fold(real, |dir, name| dir.join(name));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                missing.push(name.to_owned());
                existing = if parent.as_os_str().is_empty() { PathBuf::from(".") } else { parent.to_path_buf() };
            }
            _ => return path.to_path_buf(),
        }
    }
}

/// The device and inode of an existing path (hard links share them).
fn inode(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Refuses an output whose files (see [`written_paths`]) would be, or lie inside, an
/// input (the spec file, the data file or directory), or hold an input inside them: the
/// sweep would overwrite or delete it, or read its own output as data next time.
fn check_outputs_spare_inputs(out: &Path, inputs: &[(&str, &Path)]) -> Result<()> {
    for (kind, input) in inputs {
        let Ok(input_real) = std::fs::canonicalize(input) else { continue };
        let input_inode = inode(&input_real);
        for written in written_paths(out) {
            let written_real = resolved(&written);
            let clashes = written_real.starts_with(&input_real)
                || input_real.starts_with(&written_real)
                || (input_inode.is_some() && inode(&written_real) == input_inode);
            if clashes {
                let what = if written.as_path() == out {
                    String::new()
                } else {
                    format!(" (it writes {})", written.display())
                };
                return Err(Failure::usage(format!(
                    "output {}{what} would overwrite, delete or sit inside the input {kind} {}; choose another path",
                    out.display(),
                    input.display()
                )));
            }
        }
    }
    Ok(())
}

pub(crate) fn create_parent(out: &Path) -> Result<()> {
    match out.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => std::fs::create_dir_all(dir)
            .map_err(|e| Failure::usage(format!("output {}: cannot create {}: {e}", out.display(), dir.display()))),
        _ => Ok(()),
    }
}

/// SHA-256 of the data file, or of every file's name and hash for a directory.
pub(crate) fn checksum(path: &Path) -> Result<String> {
    let read = |p: &Path| std::fs::read(p).map_err(|e| Failure::usage(format!("{}: {e}", p.display())));
    if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && p.extension().is_some_and(|x| x.eq_ignore_ascii_case("csv")))
            .collect();
        files.sort();
        let mut all = Sha256::new();
        for file in files {
            let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            all.update(format!("{name} {}\n", sha256_hex(&read(&file)?)));
        }
        Ok(hex(&all.finalize()))
    } else {
        Ok(sha256_hex(&read(path)?))
    }
}

/// Identifies a sweep's results: program version, the spec without `[output]`, the
/// resolved strategy settings (defaults included), the data and the format.
///
/// A command's `timeout`, `retries` and `keep_workdirs` are left out: they decide how hard
/// to try, not what a row is, so `--resume --retry-failed` may run with a longer timeout.
pub(crate) fn fingerprint(spec: &Spec, data_sha256: &str, format: OutputFormat) -> String {
    let mut identity = spec.effective.clone();
    identity.remove("output");
    let mut strategy = spec.strategy.clone();
    if let crate::strategy::Strategy::Command(command) = &mut strategy {
        (command.timeout, command.retries, command.keep_workdirs) = (None, 0, false);
        if let Some(toml::Value::Table(section)) = identity.get_mut("command") {
            for key in ["timeout", "retries", "keep_workdirs"] {
                section.remove(key);
            }
        }
    }
    let text = format!(
        "sweeprun {}\n{}\n{:?}\n{data_sha256}\n{}",
        env!("CARGO_PKG_VERSION"),
        toml::to_string(&identity).expect("a TOML table serialises"),
        strategy,
        format.name()
    );
    sha256_hex(text.as_bytes())
}

fn check_journal_owner(meta_path: &Path, fingerprint: &str, journal: &Path) -> Result<()> {
    let recorded = std::fs::read_to_string(meta_path)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["fingerprint"].as_str().map(str::to_string));
    match recorded {
        Some(f) if f == fingerprint => Ok(()),
        Some(_) => Err(Failure::usage(format!(
            "{} was written by a different sweep (the spec, --set values or data changed); \
             restore them, or delete the journal to start over",
            journal.display()
        ))),
        None => Err(Failure::usage(format!(
            "{} is missing or unreadable, so {} cannot be checked against this sweep; delete the journal to start over",
            meta_path.display(),
            journal.display()
        ))),
    }
}

/// The finished table at `out`, if its sidecar vouches for this exact sweep (same
/// fingerprint) and the table's bytes are the ones the sidecar recorded.
pub(crate) fn finished_table(out: &Path, fingerprint: &str) -> Option<String> {
    let sidecar: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ledger::sidecar_path(out)).ok()?).ok()?;
    if sidecar["fingerprint"].as_str() != Some(fingerprint) {
        return None;
    }
    let table = std::fs::read_to_string(out).ok()?;
    (sidecar["output"]["blake3"].as_str() == Some(table_digest(table.as_bytes()).as_str())).then_some(table)
}

/// The digest of a results table in its sidecar: BLAKE3 (`b3sum` checks it), not SHA-256
/// like the data's, because the launcher hashes the table while the ranks compute, and on
/// the 79k-row benchmark grid SHA-256 took ~7 ms of CPU there, BLAKE3 ~2.3 ms.
pub(crate) fn table_digest(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// [`summary`] of a command sweep, whose columns are only known now: a `--sort-by` that
/// names no numeric column of the table gets one line on stderr instead of a summary.
pub(crate) fn command_summary(
    table: &str,
    format: OutputFormat,
    columns: &[String],
    args: &RunArgs,
    group: Option<&report::GroupBy>,
) -> String {
    if args.top == 0 {
        return String::new();
    }
    let numeric = command_table::numeric_columns(table, format, columns);
    if !numeric.contains(&args.sort_by) {
        let why = if columns.contains(&args.sort_by) { "is not a numeric column" } else { "is not a column" };
        say!(
            "sweeprun: no summary: --sort-by {} {why} of the table (numeric columns: {})",
            args.sort_by,
            numeric.join(", ")
        );
        return String::new();
    }
    let (mut best, total) = report::ranked_rows(table, format, columns, &args.sort_by, args.top, group);
    // An empty text cell (no stderr kept, a key the row lacks) is no number: `-`, not NaN.
    for row in &mut best {
        for (cell, column) in row.iter_mut().zip(columns) {
            if cell == "NaN" && !numeric.contains(column) {
                *cell = "-".to_string();
            }
        }
    }
    summary(&best, total, columns, args, group)
}

/// The top-K table for stdout from the best rows (best first; grouped: per group).
fn summary(
    best: &[Vec<String>],
    total: usize,
    columns: &[String],
    args: &RunArgs,
    group: Option<&report::GroupBy>,
) -> String {
    if args.top == 0 {
        return String::new();
    }
    match group {
        None => report::render(&report::leading(best, args.top, None), total, columns, &args.sort_by),
        Some(g) => {
            let shown = report::leading(best, args.top, g.column(columns));
            report::render_grouped(&shown, total, columns, &args.sort_by, &g.name, args.top)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_may_not_be_reach_or_hold_an_input() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("prices.csv");
        std::fs::write(&data, "Date,Close\n").unwrap();
        let check = |out: &Path| check_outputs_spare_inputs(out, &[("data", &data)]);
        assert!(check(&dir.path().join("results.csv")).is_ok());
        // The input under another name: a hard link, or a path through a symlinked directory.
        std::fs::hard_link(&data, dir.path().join("r.csv.partial")).unwrap();
        assert!(check(&dir.path().join("r.csv")).is_err(), "journal is a hard link to the data");
        std::os::unix::fs::symlink(dir.path(), dir.path().join("via")).unwrap();
        assert!(check(&dir.path().join("via/prices.csv")).is_err(), "the data through a symlink");
        // Not yet existing directories below an existing one resolve too.
        assert!(check(&dir.path().join("new/deeper/prices.csv")).is_ok());
        // The data as the tearsheets directory's content.
        let sheets = dir.path().join("t.csv.tearsheets");
        std::fs::create_dir(&sheets).unwrap();
        let inside = sheets.join("a.csv");
        std::fs::write(&inside, "Date,Close\n").unwrap();
        assert!(check_outputs_spare_inputs(&dir.path().join("t.csv"), &[("data", &inside)]).is_err());
        assert!(check_outputs_spare_inputs(&dir.path().join("t.csv"), &[("data", &sheets)]).is_err());
    }
}
