//! `sweeprun run`: validate everything, run the ranks, gather the rows exactly once,
//! write the table atomically, print the top-K summary.

use crate::cli::{BindTo, RunArgs};
use crate::error::{Failure, Result};
use crate::local::{self, LocalJob};
use crate::output::{self, Journal, OutputFormat};
use crate::progress::Progress;
use crate::report;
use crate::spec::Spec;
use crate::tearsheet;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};
use sweeprun_kernel::metrics::Convention;
use sweeprun_kernel::prices::PriceSet;

/// Runs one sweep; on success returns the summary to print on stdout.
pub fn run(args: &RunArgs) -> Result<String> {
    let started_at = SystemTime::now();
    let clock = Instant::now();
    let plan = Plan::new(args)?;
    let Plan { spec, out, format, ranks, pins, data, data_sha256, columns } = plan;
    let combos = spec.grid.len();
    let fingerprint = fingerprint(&spec, &data_sha256, format);
    let journal_path = output::journal_path(&out);
    let journal_meta = output::journal_meta_path(&out);

    // From here on files are written; everything above only read and checked.
    let (mut journal, done, resumed) = if journal_path.exists() {
        if !args.resume {
            return Err(Failure::usage(format!(
                "{} holds the results of an interrupted sweep; add --resume to finish it, or delete it to start over",
                journal_path.display()
            )));
        }
        check_journal_owner(&journal_meta, &fingerprint, &journal_path)?;
        Journal::reopen(&journal_path, format, combos)?
    } else {
        if args.resume {
            if let Some(table) = already_complete(&out, &fingerprint)? {
                write_tearsheets(&spec, &data, &table, format, &columns, &out, args)?;
                return Ok(summary(&table, format, &columns, args));
            }
            eprintln!("sweeprun: no journal at {}; starting the sweep from the beginning", journal_path.display());
        }
        create_parent(&out)?;
        let journal = Journal::create(&journal_path, format, &columns)?;
        let meta = json!({ "fingerprint": fingerprint, "combos": combos, "format": format.name() });
        if let Err(e) = output::write_atomically(&journal_meta, meta.to_string().as_bytes()) {
            let _ = std::fs::remove_file(&journal_path);
            return Err(Failure::usage(e.to_string()));
        }
        (journal, vec![false; combos as usize], 0)
    };

    let chunk_size = args.chunk_size.unwrap_or_else(|| auto_chunk_size(combos - resumed, ranks));
    let chunks = local::chunks_of_remaining(&done, chunk_size);
    let mut progress = Progress::new(combos, resumed);
    let job = LocalJob { format: format.name(), spec: &spec.effective_toml(), pins, chunks };
    let ran = local::run(job, &mut progress, &mut |_, rows| journal.append(rows));
    let synced = journal.sync();
    if let Err(failure) = ran.and(synced) {
        progress.abandon();
        let saved = format!(
            "; results so far are kept in {} (run the same command with --resume to finish)",
            journal_path.display()
        );
        return Err(match failure {
            Failure::Interrupted(m) => Failure::Interrupted(format!("{m}{saved}")),
            Failure::Runtime(m) => Failure::Runtime(format!("{m}{saved}")),
            usage => usage,
        });
    }
    progress.finish(ranks);

    let table = output::assemble_table(&journal_path, format, &columns, combos)?;
    let sidecar = json!({
        "sweeprun_version": env!("CARGO_PKG_VERSION"),
        "spec_file": spec.origin,
        "spec": spec.effective_toml(),
        "fingerprint": fingerprint,
        "strategy": spec.strategy.name(),
        "statistics": spec.strategy.convention().name(),
        "kernel": "scalar",
        "data": { "path": spec.data_path.display().to_string(), "sha256": data_sha256 },
        "combos": combos,
        "columns": columns,
        "output": { "path": out.display().to_string(), "format": format.name() },
        "backend": "local",
        "ranks": ranks,
        "resumed_combos": resumed,
        "started_at": output::rfc3339(started_at),
        "finished_at": output::rfc3339(SystemTime::now()),
        "wall_seconds": clock.elapsed().as_secs_f64(),
    });
    let sidecar_text = serde_json::to_string_pretty(&sidecar).expect("JSON values serialise") + "\n";
    output::write_atomically(&output::sidecar_path(&out), sidecar_text.as_bytes())?;
    output::write_atomically(&out, table.as_bytes())?;
    let _ = std::fs::remove_file(&journal_path);
    let _ = std::fs::remove_file(&journal_meta);
    eprintln!("sweeprun: wrote {} ({} rows)", out.display(), combos);
    write_tearsheets(&spec, &data, &table, format, &columns, &out, args)?;
    Ok(summary(&table, format, &columns, args))
}

/// Everything checked before the first byte is written.
struct Plan {
    spec: Spec,
    out: PathBuf,
    format: OutputFormat,
    ranks: usize,
    pins: Vec<Option<usize>>,
    data: PriceSet,
    data_sha256: String,
    columns: Vec<String>,
}

impl Plan {
    fn new(args: &RunArgs) -> Result<Plan> {
        match args.backend.as_str() {
            "local" => {}
            "mpi" | "slurm" => {
                return Err(Failure::usage(format!(
                    "--backend {}: not available in this version (use --backend local)",
                    args.backend
                )))
            }
            other => return Err(Failure::usage(format!("--backend: unknown backend `{other}` (expected local)"))),
        }
        if args.np == Some(0) {
            return Err(Failure::usage("-np: expected at least 1 rank, got 0"));
        }
        report::check_rank_metric(&args.sort_by).map_err(Failure::usage)?;
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
        tearsheet_count(args)?;
        let spec = Spec::load(&args.spec, &overrides)?;
        if let Some(&id) = args.equity.iter().find(|&&id| id >= spec.grid.len()) {
            return Err(Failure::usage(format!(
                "--equity: combo {id} is not in the grid (ids are 0..{})",
                spec.grid.len()
            )));
        }
        let out = match (&args.out, &spec.output) {
            (Some(out), _) => {
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
        check_not_data(&out, &spec.data_path)?;
        let data = sweeprun_kernel::prices::load(&spec.data_path).map_err(|e| Failure::usage(e.to_string()))?;
        spec.strategy
            .validate(&data, spec.symbol.as_deref(), &spec.grid)
            .map_err(|e| Failure::usage(format!("{}: {e}", spec.origin)))?;
        let data_sha256 = checksum(&spec.data_path)?;
        let cpus = sweeprun_hw::topology::usable_cpus().unwrap_or_default();
        let ranks = match args.np {
            Some(n) => usize::try_from(n).map_err(|_| Failure::usage(format!("-np: {n} is too many ranks")))?,
            None => cpus.len().max(1),
        };
        let ranks = ranks.min(usize::try_from(spec.grid.len()).unwrap_or(usize::MAX)).max(1);
        let pins = if args.bind_to == BindTo::Core && ranks <= cpus.len() {
            cpus.iter().take(ranks).map(|&c| Some(c)).collect()
        } else {
            if args.bind_to == BindTo::Core {
                eprintln!("sweeprun: {ranks} ranks on {} CPUs: oversubscribed, not pinning ranks", cpus.len());
            }
            vec![None; ranks]
        };
        let columns = output::columns(&spec.grid.names(), &spec.strategy.extra_columns());
        Ok(Plan { spec, out, format, ranks, pins, data, data_sha256, columns })
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

/// Refuses an output that would overwrite the input data or land in a data directory
/// (where the next run would read it as an asset).
fn check_not_data(out: &Path, data: &Path) -> Result<()> {
    let canonical = |p: &Path| std::fs::canonicalize(p).ok();
    let out_dir = out.parent().and_then(canonical);
    let out_real = out_dir.as_ref().zip(out.file_name()).map(|(dir, name)| dir.join(name));
    let Some(data_real) = canonical(data) else { return Ok(()) };
    let clashes = if data_real.is_dir() {
        out_real.as_ref().is_some_and(|o| o.starts_with(&data_real))
    } else {
        let related = [out_real.clone(), out_real.as_ref().map(|o| output::sidecar_path(o))];
        related.iter().flatten().any(|o| *o == data_real)
    };
    if clashes {
        return Err(Failure::usage(format!(
            "output {} would overwrite or sit inside the input data {}; choose another path",
            out.display(),
            data.display()
        )));
    }
    Ok(())
}

fn create_parent(out: &Path) -> Result<()> {
    match out.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => std::fs::create_dir_all(dir)
            .map_err(|e| Failure::usage(format!("output {}: cannot create {}: {e}", out.display(), dir.display()))),
        _ => Ok(()),
    }
}

/// SHA-256 of the data file, or of every file's name and hash for a directory.
fn checksum(path: &Path) -> Result<String> {
    let read = |p: &Path| std::fs::read(p).map_err(|e| Failure::usage(format!("{}: {e}", p.display())));
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("csv")))
            .collect();
        files.sort();
        let mut all = Sha256::new();
        for file in files {
            let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            all.update(format!("{name} {}\n", hex(&Sha256::digest(read(&file)?))));
        }
        Ok(hex(&all.finalize()))
    } else {
        Ok(hex(&Sha256::digest(read(path)?)))
    }
}

/// Identifies a sweep's results: spec (without the output section), data and format.
fn fingerprint(spec: &Spec, data_sha256: &str, format: OutputFormat) -> String {
    let mut identity = spec.effective.clone();
    identity.remove("output");
    let text = format!("{}\n{data_sha256}\n{}", toml::to_string(&identity).unwrap_or_default(), format.name());
    Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
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

/// With `--resume` and no journal: if the table exists and its sidecar matches, the sweep
/// is already done; returns the table.
fn already_complete(out: &Path, fingerprint: &str) -> Result<Option<String>> {
    let recorded = std::fs::read_to_string(output::sidecar_path(out))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["fingerprint"].as_str().map(str::to_string));
    if !out.exists() || recorded.as_deref() != Some(fingerprint) {
        return Ok(None);
    }
    let table = std::fs::read_to_string(out).map_err(|e| Failure::runtime(format!("{}: {e}", out.display())))?;
    eprintln!("sweeprun: {} is already complete; nothing to resume", out.display());
    Ok(Some(table))
}

/// K of `--tearsheet top:K` (0 without the flag).
fn tearsheet_count(args: &RunArgs) -> Result<usize> {
    let Some(text) = &args.tearsheet else { return Ok(0) };
    text.strip_prefix("top:")
        .and_then(|k| k.parse::<usize>().ok())
        .filter(|&k| k > 0)
        .ok_or_else(|| Failure::usage(format!("--tearsheet: expected top:K with K >= 1, got `{text}`")))
}

/// Writes the tearsheets asked for with `--equity` and `--tearsheet` into `<out>.tearsheets/`.
fn write_tearsheets(
    spec: &Spec,
    data: &PriceSet,
    table: &str,
    format: OutputFormat,
    columns: &[String],
    out: &Path,
    args: &RunArgs,
) -> Result<()> {
    let mut ids = args.equity.clone();
    let top = tearsheet_count(args)?;
    for row in report::ranked_rows(table, format, columns, &args.sort_by).iter().take(top) {
        ids.extend(row.first().and_then(|id| id.parse::<u64>().ok()));
    }
    ids.dedup();
    if ids.is_empty() {
        return Ok(());
    }
    let dir = output::tearsheet_dir(out);
    std::fs::create_dir_all(&dir).map_err(|e| Failure::runtime(format!("cannot create {}: {e}", dir.display())))?;
    let names = spec.grid.names();
    let mut values = vec![crate::grid::ParamValue::Int(0); names.len()];
    let mut seen = std::collections::HashSet::new();
    for id in ids.into_iter().filter(|id| seen.insert(*id)) {
        spec.grid.combo(id, &mut values);
        let params: String = names.iter().zip(&values).map(|(n, v)| format!("_{n}{v}")).collect();
        let tag = format!("{}{params}", spec.strategy.name());
        let trace = spec
            .strategy
            .trace(data, spec.symbol.as_deref(), &spec.grid, id)
            .map_err(|e| Failure::runtime(format!("tearsheet of combo {id}: {e}")))?;
        let doc = tearsheet::statistics_json(&trace, &format!("combo {id}"), &tag);
        let json_text = serde_json::to_string(&doc).expect("JSON values serialise") + "\n";
        output::write_atomically(&dir.join(format!("{tag}.json")), json_text.as_bytes())?;
        output::write_atomically(&dir.join(format!("{tag}.equity.csv")), tearsheet::equity_csv(&trace).as_bytes())?;
        if spec.strategy.reports_fills() {
            output::write_atomically(&dir.join(format!("{tag}.fills.csv")), tearsheet::fills_csv(&trace).as_bytes())?;
        }
        eprintln!("sweeprun: wrote tearsheet {}", dir.join(format!("{tag}.json")).display());
    }
    Ok(())
}

fn summary(table: &str, format: OutputFormat, columns: &[String], args: &RunArgs) -> String {
    if args.top == 0 {
        return String::new();
    }
    report::top_k(table, format, columns, &args.sort_by, args.top)
}

/// Aim for ~32 chunks per rank (dynamic balance) but no tiny chunks (per-chunk overhead).
fn auto_chunk_size(combos: u64, ranks: usize) -> u64 {
    (combos / (ranks as u64 * 32)).clamp(16, 4096)
}
