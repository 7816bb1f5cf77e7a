//! `[command]` sweeps one combo per process: the building blocks of a SLURM job array
//! (`--array=0-23%4`, one task per combo) that ends with the very table `sweeprun run`
//! writes.
//!
//! The flow (docs/DESIGN.md, "Array sweeps"):
//!
//! 1. The submitter calls [`prepare_array`]: the input is checked as `sweeprun run` checks
//!    it, `<out>.runs/` is cleared (a fresh sweep) or seeded (a retry of a finished one),
//!    and the ids to run come back; [`array_spec_text`] writes them as `--array=`.
//! 2. Each task runs `sweeprun __combo SPEC --out OUT [--set ..]` ([`combo`], arguments from
//!    [`combo_task_args`]): combo `$SLURM_ARRAY_TASK_ID` on the ranks' code path, its record
//!    written atomically to `<out>.runs/records/<id>.json`. A failed combo is a row, so the
//!    task exits 0 whatever the command did.
//! 3. Then `sweeprun __gather SPEC --out OUT` ([`gather`], arguments from [`gather_args`])
//!    assembles the table, `<out>.runs/rows.jsonl` and the sidecar from the records, or
//!    names the combos that have none.
//!
//! A record file carries the sweep's fingerprint (the one `--resume` checks journals
//! against): a record left by another spec, `--set` or data counts as missing.

use crate::cli::{ComboArgs, GatherArgs, RunArgs};
use crate::command::{Record, Status};
use crate::command_table;
use crate::error::{Failure, Result};
use crate::ledger;
use crate::report;
use crate::run::{self, FinishedTable, Plan, RunFacts};
use crate::table::RowWriter;
use serde_json::{json, Value};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

/// The backend a gathered table's sidecar names.
pub const ARRAY_BACKEND: &str = "slurm-array";

/// Where SLURM puts an array task's index: `__combo`'s id when `--id` is not given.
pub const ARRAY_TASK_ID_ENV: &str = "SLURM_ARRAY_TASK_ID";

/// How many ids a message about missing records names.
const SHOWN_IDS: usize = 8;

/// What an array sweep must run, from [`prepare_array`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArrayPlan {
    /// The results table (absolute), as `sweeprun run` resolved it.
    pub out: PathBuf,
    /// Combos in the grid.
    pub combos: u64,
    /// The combo ids to run, ascending: one array task each (empty: nothing to run, gather).
    pub ids: Vec<u64>,
}

/// `sweeprun __combo`: runs one combo and writes its record (see the module docs).
/// Returns nothing for stdout; the outcome goes to stderr in one line.
pub fn combo(args: &ComboArgs) -> Result<String> {
    let (id, named) = match args.id {
        Some(id) => (id, format!("--id {id}")),
        None => {
            let id = task_id_from_env()?;
            (id, format!("${ARRAY_TASK_ID_ENV}={id}"))
        }
    };
    let run_args = run_args(&args.spec, args.out.as_deref(), &args.set, Vec::new())?;
    let (plan, fingerprint) = checked(&run_args)?;
    let combos = plan.spec.grid.len();
    if id >= combos {
        return Err(Failure::usage(format!(
            "{named}: combo {id} is not in the grid of {} (ids are 0..={})",
            args.spec.display(),
            combos.saturating_sub(1)
        )));
    }
    run::create_parent(&plan.out)?;
    let record = run_combo(&plan, id)?;
    let path = ledger::combo_record_path(&plan.out, id);
    let records = ledger::combo_records_dir(&plan.out);
    std::fs::create_dir_all(&records)
        .map_err(|e| Failure::runtime(format!("cannot create {}: {e}", records.display())))?;
    ledger::write_atomically(&path, record_file_text(&record, &fingerprint).as_bytes())?;
    say!("sweeprun: combo {id}: {}; record in {}", record.status.name(), path.display());
    Ok(String::new())
}

/// `sweeprun __gather`: writes the table, `<out>.runs/rows.jsonl` and the sidecar from
/// every combo's record, as `sweeprun run` would have; refuses (exit 1, nothing written)
/// while some combo has no record of this sweep. Returns the summary for stdout.
pub fn gather(args: &GatherArgs) -> Result<String> {
    let started_at = SystemTime::now();
    let clock = Instant::now();
    let mut summary = vec![format!("--top={}", args.top).into(), format!("--sort-by={}", args.sort_by).into()];
    if let Some(key) = &args.group_by {
        summary.push(format!("--group-by={key}").into());
    }
    let run_args = run_args(&args.spec, args.out.as_deref(), &args.set, summary)?;
    let (plan, fingerprint) = checked(&run_args)?;
    let combos = plan.spec.grid.len();
    let records = read_records(&plan.out, &fingerprint, combos);
    let missing: Vec<u64> = (0..combos).filter(|&id| records[id as usize].is_none()).collect();
    if !missing.is_empty() {
        return Err(Failure::runtime(format!(
            "no record of this sweep for {} of {} ({}) in {}; run them first (`sweeprun __combo SPEC --id ID`, \
             or the array again with --resume); nothing written",
            missing.len(),
            report::counted(combos, "combo"),
            shown_ids(&missing),
            ledger::combo_records_dir(&plan.out).display()
        )));
    }
    let planned = clock.elapsed().as_secs_f64();
    let records: Vec<Record> = records.into_iter().flatten().collect();
    let command_seconds: f64 = records.iter().map(|r| r.elapsed_s).sum();
    let table = command_table::write_finished(&plan.spec.grid, &records, &plan.out, plan.format)?;
    let blake3 = run::table_digest(table.text.as_bytes());
    let finished = FinishedTable {
        spec: &plan.spec,
        out: &plan.out,
        format: plan.format,
        kernel: plan.kernel,
        fingerprint: &fingerprint,
        data_sha256: &plan.data_sha256,
        columns: &table.columns,
        blake3: &blake3,
    };
    let facts = RunFacts {
        backend: ARRAY_BACKEND,
        // One process per combo, started by SLURM: no ranks, no agent, no resume count.
        ranks: Value::Null,
        resumed_combos: Value::Null,
        thermal: Value::Null,
        started_at,
        wall_seconds: clock.elapsed().as_secs_f64(),
        timings: json!({
            "plan_seconds": planned,
            "assemble_seconds": clock.elapsed().as_secs_f64() - planned,
            "command_seconds": command_seconds,
        }),
        // A command reports no returns.
        overfitting: Value::Null,
    };
    ledger::write_atomically(&ledger::sidecar_path(&plan.out), run::sidecar_text(&finished, facts).as_bytes())?;
    // rows.jsonl holds the records now, as after a local sweep; per-combo files left behind
    // would later pass for an array sweep in progress (see `array_state`).
    let dir = ledger::combo_records_dir(&plan.out);
    if let Err(e) = std::fs::remove_dir_all(&dir) {
        say!("sweeprun: warning: cannot remove {}: {e}", dir.display());
    }
    say!("sweeprun: wrote {} ({})", plan.out.display(), report::counted(combos, "row"));
    Ok(run::command_summary(&table.text, plan.format, &table.columns, &run_args, plan.group.as_ref()))
}

/// The combo ids an array sweep of `args` (a `sweeprun run` of a `[command]` spec) must
/// run, ascending, writing nothing:
///
/// * without `--resume`: every combo;
/// * `--resume`: the combos without a record of this sweep in `<out>.runs/records/`, or
///   none if the sweep finished (a table whose sidecar matches);
/// * `--resume --retry-failed`: also those whose record is not `ok`; of a finished sweep,
///   its non-ok rows (from `<out>.runs/rows.jsonl`, checked to give back the table).
///
/// Bad input is a usage error (exit 2), as for `sweeprun run`. Submitting needs
/// [`prepare_array`] instead, which also readies `<out>.runs/` for the tasks.
pub fn array_ids(args: &RunArgs) -> Result<Vec<u64>> {
    let (plan, fingerprint) = checked(args)?;
    Ok(array_state(&plan, &fingerprint, args)?.ids)
}

/// [`array_ids`], and `<out>.runs/` made ready for the tasks and [`gather`]: a fresh sweep
/// removes an earlier `<out>.runs/` (as `sweeprun run` does); a retry of a finished sweep
/// writes every combo's record from `rows.jsonl`, so the tasks replace only the non-ok
/// ones. Call it once, before submitting.
pub fn prepare_array(args: &RunArgs) -> Result<ArrayPlan> {
    let (plan, fingerprint) = checked(args)?;
    let journal = ledger::journal_path(&plan.out);
    if journal.exists() {
        return Err(Failure::usage(format!(
            "{} holds the results of an interrupted sweep; finish it with `sweeprun run --resume`, \
             or delete it to start over",
            journal.display()
        )));
    }
    let state = array_state(&plan, &fingerprint, args)?;
    if state.fresh {
        let runs = ledger::runs_dir(&plan.out);
        match std::fs::remove_dir_all(&runs) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Failure::runtime(format!("cannot remove {}: {e}", runs.display())))
            }
            _ => {}
        }
    }
    if let Some(records) = state.seed {
        let dir = ledger::combo_records_dir(&plan.out);
        std::fs::create_dir_all(&dir).map_err(|e| Failure::runtime(format!("cannot create {}: {e}", dir.display())))?;
        for record in &records {
            let path = ledger::combo_record_path(&plan.out, record.combo_id);
            ledger::write_atomically(&path, record_file_text(record, &fingerprint).as_bytes())?;
        }
    }
    Ok(ArrayPlan { out: plan.out, combos: plan.spec.grid.len(), ids: state.ids })
}

/// SLURM's `--array` value for `ids`: runs of consecutive ids as ranges, then `%K` for at
/// most K tasks at once, e.g. `0-23%4`, `5,10,16`, `0-3,7,9-12%2`. Ids are sorted and
/// deduplicated first; no ids give an empty text (submit nothing).
pub fn array_spec_text(ids: &[u64], max_parallel: Option<u64>) -> String {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < ids.len() {
        let start = ids[i];
        while i + 1 < ids.len() && ids[i + 1] == ids[i] + 1 {
            i += 1;
        }
        parts.push(if ids[i] > start { format!("{start}-{}", ids[i]) } else { start.to_string() });
        i += 1;
    }
    let mut text = parts.join(",");
    if let (Some(k), false) = (max_parallel, text.is_empty()) {
        text.push_str(&format!("%{k}"));
    }
    text
}

/// The arguments after `sweeprun` of one array task of `args`'s sweep writing `out`
/// (from [`ArrayPlan::out`]): `__combo SPEC --out=OUT --set=..`, the spec made absolute; the
/// task reads its id from `$SLURM_ARRAY_TASK_ID`.
pub fn combo_task_args(args: &RunArgs, out: &Path) -> Vec<OsString> {
    let mut argv: Vec<OsString> = vec!["__combo".into()];
    argv.extend(sweep_args(args, out));
    argv
}

/// The arguments after `sweeprun` of the gathering step of `args`'s sweep writing `out`:
/// `__gather SPEC --out=OUT --set=.. --top=K --sort-by=M [--group-by=G]`.
pub fn gather_args(args: &RunArgs, out: &Path) -> Vec<OsString> {
    let mut argv: Vec<OsString> = vec!["__gather".into()];
    argv.extend(sweep_args(args, out));
    argv.push(format!("--top={}", args.top).into());
    argv.push(format!("--sort-by={}", args.sort_by).into());
    if let Some(key) = &args.group_by {
        argv.push(format!("--group-by={key}").into());
    }
    argv
}

/// `SPEC --out=OUT --set=..` with the spec made absolute (tasks may start elsewhere).
fn sweep_args(args: &RunArgs, out: &Path) -> Vec<OsString> {
    let spec = std::path::absolute(&args.spec).unwrap_or_else(|_| args.spec.clone());
    let mut flag = OsString::from("--out=");
    flag.push(out);
    let mut argv = vec![spec.into_os_string(), flag];
    argv.extend(args.set.iter().map(|set| OsString::from(format!("--set={set}"))));
    argv
}

/// What an array sweep must run, and how `<out>.runs/` gets ready for it.
struct ArrayState {
    ids: Vec<u64>,
    /// No earlier state is used: `<out>.runs/` goes before the tasks start.
    fresh: bool,
    /// A finished sweep's records, to be written as record files before a retry.
    seed: Option<Vec<Record>>,
}

/// See [`array_ids`]: record files present mean an array sweep in progress (gathering
/// removes them); else a finished table's `rows.jsonl` is the state.
fn array_state(plan: &Plan, fingerprint: &str, args: &RunArgs) -> Result<ArrayState> {
    let combos = plan.spec.grid.len();
    let every = || ArrayState { ids: (0..combos).collect(), fresh: true, seed: None };
    if !args.resume {
        return Ok(every());
    }
    let records = read_records(&plan.out, fingerprint, combos);
    if records.iter().any(Option::is_some) {
        let ids = (0..combos)
            .filter(|&id| match &records[id as usize] {
                None => true,
                Some(record) => args.retry_failed && record.status != Status::Ok,
            })
            .collect();
        return Ok(ArrayState { ids, fresh: false, seed: None });
    }
    if let Some(table) = run::finished_table(&plan.out, fingerprint) {
        let nothing = ArrayState { ids: Vec::new(), fresh: false, seed: None };
        if !args.retry_failed {
            return Ok(nothing);
        }
        return Ok(match command_table::retry_journal(&plan.spec.grid, &plan.out, plan.format, &table)? {
            None => nothing,
            Some(records) => {
                let ids = records.iter().filter(|r| r.status != Status::Ok).map(|r| r.combo_id).collect();
                ArrayState { ids, fresh: false, seed: Some(records) }
            }
        });
    }
    if args.retry_failed {
        return Err(Failure::usage(format!(
            "--retry-failed: no sweep of this spec to retry at {}: no records in {}, and no finished table \
             whose sidecar matches this spec (run it without --resume --retry-failed)",
            plan.out.display(),
            ledger::combo_records_dir(&plan.out).display()
        )));
    }
    Ok(every())
}

/// The sweep of `args` checked as `sweeprun run` checks it (writing nothing), which must be
/// a `[command]` sweep, and its fingerprint.
fn checked(args: &RunArgs) -> Result<(Plan, String)> {
    let plan = Plan::new(args, 1, &mut |_, _, _| {})?;
    if plan.spec.strategy.command().is_none() {
        return Err(Failure::usage(format!(
            "{}: not a [command] sweep; one process per combo (a SLURM array) runs [command] sweeps only",
            args.spec.display()
        )));
    }
    let fingerprint = run::fingerprint(&plan.spec, &plan.data_sha256, plan.format);
    Ok((plan, fingerprint))
}

/// `RunArgs` parsed from these flags as `sweeprun run` parses them, so every other flag has
/// its `run` default (also flags added to `run` later).
fn run_args(spec: &Path, out: Option<&Path>, set: &[String], more: Vec<OsString>) -> Result<RunArgs> {
    use clap::{Args, FromArgMatches};
    let mut argv: Vec<OsString> = vec!["run".into()];
    if let Some(out) = out {
        let mut flag = OsString::from("--out=");
        flag.push(out);
        argv.push(flag);
    }
    argv.extend(set.iter().map(|set| OsString::from(format!("--set={set}"))));
    argv.extend(more);
    argv.extend(["--".into(), spec.as_os_str().to_owned()]);
    let matches = RunArgs::augment_args(clap::Command::new("run"))
        .try_get_matches_from(argv)
        .map_err(|e| Failure::usage(e.to_string().lines().next().unwrap_or("invalid arguments").to_string()))?;
    RunArgs::from_arg_matches(&matches).map_err(|e| Failure::usage(e.to_string()))
}

/// The combo id SLURM gave this array task.
fn task_id_from_env() -> Result<u64> {
    match std::env::var(ARRAY_TASK_ID_ENV) {
        Ok(text) => text.trim().parse().map_err(|_| {
            Failure::usage(format!("${ARRAY_TASK_ID_ENV}: expected a combo id (0, 1, ...), got `{text}`"))
        }),
        Err(_) => Err(Failure::usage(format!("no combo to run: pass --id COMBO_ID, or set ${ARRAY_TASK_ID_ENV}"))),
    }
}

/// Runs combo `id` as a rank does (the sweep's evaluator: working directory, environment,
/// timeout, retries). An error means it could not be attempted at all.
fn run_combo(plan: &Plan, id: u64) -> Result<Record> {
    let spec = &plan.spec;
    let mut evaluator = spec.strategy.command_evaluator(&spec.grid, &plan.out).map_err(Failure::runtime)?;
    let mut rows = RowWriter::for_grid(plan.format, &spec.grid, spec.strategy.extra_columns());
    let mut no_sums = crate::protocol::ChunkBlocks::default();
    evaluator
        .evaluate(id..id + 1, &mut rows, &mut no_sums)
        .map_err(|e| Failure::runtime(format!("combo {id}: {e}")))?;
    let (text, _) = rows.take();
    Record::from_line(text.trim_end())
        .ok_or_else(|| Failure::runtime(format!("internal error: combo {id} gave no record: {text}")))
}

/// A record file's text: the record's line with the sweep's fingerprint as one more member
/// (which readers of record lines ignore), and a newline.
fn record_file_text(record: &Record, fingerprint: &str) -> String {
    let line = record.to_line();
    let members = line.strip_suffix('}').expect("a record line is a JSON object");
    format!("{members},\"fingerprint\":{}}}\n", Value::from(fingerprint))
}

/// Every combo's record of the sweep with `fingerprint` in `<out>.runs/records/`: `None`
/// for a combo without one (no file, a torn or unreadable one, another sweep's).
fn read_records(out: &Path, fingerprint: &str, combos: u64) -> Vec<Option<Record>> {
    (0..combos)
        .map(|id| {
            let text = std::fs::read_to_string(ledger::combo_record_path(out, id)).ok()?;
            let line = text.strip_suffix('\n')?;
            let ours = serde_json::from_str::<Value>(line).ok()?["fingerprint"] == fingerprint;
            Record::from_line(line).filter(|record| ours && record.combo_id == id)
        })
        .collect()
}

/// `ids 3, 7, 9` or `ids 3, 7, ... (12 in all)`: the first few of `ids`.
fn shown_ids(ids: &[u64]) -> String {
    let first: Vec<String> = ids.iter().take(SHOWN_IDS).map(u64::to_string).collect();
    let word = if ids.len() == 1 { "id" } else { "ids" };
    if ids.len() > SHOWN_IDS {
        format!("{word} {}, ... ({} in all)", first.join(", "), ids.len())
    } else {
        format!("{word} {}", first.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_specs_compress_runs_of_ids() {
        assert_eq!(array_spec_text(&(0..24).collect::<Vec<_>>(), Some(4)), "0-23%4");
        assert_eq!(array_spec_text(&[5, 10, 16], None), "5,10,16");
        assert_eq!(array_spec_text(&[12, 0, 1, 2, 3, 7, 9, 10, 11, 3], Some(2)), "0-3,7,9-12%2");
        assert_eq!(array_spec_text(&[7, 8], None), "7-8");
        assert_eq!(array_spec_text(&[42], Some(1)), "42%1");
        assert_eq!(array_spec_text(&[], Some(4)), "");
    }

    #[test]
    fn record_files_carry_the_fingerprint_and_stay_record_lines() {
        let record = Record {
            combo_id: 3,
            status: Status::Failed,
            exit_code: Some(1),
            stderr: "t.csv.runs/3/stderr".into(),
            attempts: 1,
            elapsed_s: 0.5,
            row: Vec::new(),
        };
        let text = record_file_text(&record, "abc");
        assert!(text.ends_with(",\"fingerprint\":\"abc\"}\n"), "{text}");
        assert_eq!(Record::from_line(text.trim_end()), Some(record.clone()));
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("t.csv");
        std::fs::create_dir_all(ledger::combo_records_dir(&out)).unwrap();
        std::fs::write(ledger::combo_record_path(&out, 3), &text).unwrap();
        // Combo 1's file holds combo 3's record: not combo 1's.
        std::fs::write(ledger::combo_record_path(&out, 1), &text).unwrap();
        std::fs::write(ledger::combo_record_path(&out, 2), &text[..text.len() - 5]).unwrap();
        let read = read_records(&out, "abc", 4);
        assert_eq!(read, [None, None, None, Some(record)], "torn, misplaced and absent files count as missing");
        assert_eq!(read_records(&out, "other", 4), [None, None, None, None], "another sweep's record");
    }

    #[test]
    fn task_and_gather_arguments_parse_back_to_the_same_sweep() {
        use crate::cli::{Cli, Command};
        use clap::Parser;
        let cli = Cli::try_parse_from([
            "sweeprun",
            "run",
            "s.toml",
            "--out",
            "o.csv",
            "--set",
            "grid.a=[1, 2]",
            "--top",
            "3",
            "--sort-by",
            "score",
        ])
        .unwrap();
        let Command::Run(args) = cli.command else { unreachable!() };
        let out = Path::new("/abs/-o.csv");
        let parse = |argv: Vec<OsString>| Cli::try_parse_from(std::iter::once("sweeprun".into()).chain(argv)).unwrap();
        let Command::Combo(task) = parse(combo_task_args(&args, out)).command else { panic!("not __combo") };
        assert_eq!(
            (task.spec, task.out.as_deref(), task.id),
            (std::path::absolute("s.toml").unwrap(), Some(out), None)
        );
        assert_eq!(task.set, ["grid.a=[1, 2]"]);
        let Command::Gather(gather) = parse(gather_args(&args, out)).command else { panic!("not __gather") };
        assert_eq!((gather.top, gather.sort_by.as_str(), gather.group_by), (3, "score", None));
        assert_eq!((gather.out.as_deref(), gather.set), (Some(out), vec!["grid.a=[1, 2]".to_string()]));
    }

    #[test]
    fn missing_ids_are_named_up_to_a_few() {
        assert_eq!(shown_ids(&[4]), "id 4");
        assert_eq!(shown_ids(&[1, 2]), "ids 1, 2");
        assert_eq!(shown_ids(&(0..20).collect::<Vec<_>>()), "ids 0, 1, 2, 3, 4, 5, 6, 7, ... (20 in all)");
    }
}
