//! `--slurm-array`: a `[command]` sweep as a SLURM job array, one task per combo
//! (`sweeprun __combo`, see [`crate::array`]), then a gather job that depends on it
//! (`--dependency=afterany:ARRAY`, `sweeprun __gather`) and writes the table. The user's
//! "one SLURM task per variant", collected into the table a local run writes.
//!
//! Two scripts are written next to the table once SLURM took both jobs: `<out>.sbatch`
//! (the array) and `<out>.gather.sbatch` (submit it with `--dependency=afterany:<array>`).

use super::job;
use super::script::{self, common_options, filename_pattern, head, sbatch_word};
use super::JobRecord;
use crate::array;
use crate::backend::mpirun::shell_line;
use crate::cli::RunArgs;
use crate::error::{Failure, Result};
use crate::ledger;
use crate::report::counted;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// `<out>.gather.sbatch`.
pub fn gather_script_path(out: &Path) -> PathBuf {
    let mut name = out.as_os_str().to_owned();
    name.push(".gather.sbatch");
    PathBuf::from(name)
}

/// The array's task logs, `<out>.slurm-<array>.tasks.err`: all tasks append to one pair of
/// files (sweeprun's own lines; each combo's command keeps its stderr in its own run
/// directory), rather than two files per combo beside the table.
fn task_log_suffix(id: &str, stream: &str) -> String {
    format!(".slurm-{id}.tasks.{stream}")
}

/// Checks, prepares `<out>.runs/`, submits the array and the gather job; returns the
/// record to follow (the gather job, with the array's id beside it).
pub fn submit(args: &RunArgs, exe: &Path, workdir: &Path) -> Result<JobRecord> {
    let slurm = &args.slurm;
    if slurm.nodes.is_some() || slurm.ntasks_per_node.is_some() {
        return Err(Failure::usage(
            "--slurm-array: each task is one process on one CPU; --nodes/--ntasks-per-node do not apply \
             (--slurm-array=K runs at most K tasks at once)",
        ));
    }
    let checked = crate::run::check_sweep(args)?;
    if !checked.is_command {
        return Err(Failure::usage(
            "--slurm-array: only a [command] sweep runs as a job array (one task per combo); \
             this spec runs a built-in strategy: use --backend slurm without it",
        ));
    }
    let out = checked.out;
    super::check_partition(slurm.partition.as_deref())?;
    // Checked before anything is written: the ids (no files touched), the array limit, and
    // the options sbatch would refuse (`--test-only` submits nothing).
    let ids = array::array_ids(args)?;
    if let (Some(&last), Some(max)) = (ids.last(), job::max_array_size()?) {
        if last >= max {
            return Err(Failure::usage(format!(
                "--slurm-array: combo ids go up to {last}, but this cluster's MaxArraySize is {max} \
                 (task ids 0..={}); use --backend slurm without --slurm-array, or raise MaxArraySize in slurm.conf",
                max - 1
            )));
        }
    }
    let parallel = slurm.slurm_array.filter(|&k| k > 0);
    let common = common_options(slurm.partition.as_deref(), slurm.time.as_deref(), slurm.account.as_deref(), workdir);
    // The user's own options go last: sbatch takes the last of a repeated option.
    let users: Vec<String> = slurm.sbatch_args.iter().map(|arg| sbatch_word(arg)).collect();
    let array_text = |spec: &str| {
        let mut options = vec![
            format!("--job-name={}", sbatch_word(&script::job_name(&out, ""))),
            format!("--array={spec}"),
            "--ntasks=1".into(),
        ];
        options.extend(common.iter().cloned());
        options.push(format!("--output={}", sbatch_word(&filename_pattern(&out, &task_log_suffix("%A", "out")))));
        options.push(format!("--error={}", sbatch_word(&filename_pattern(&out, &task_log_suffix("%A", "err")))));
        options.push("--open-mode=append".into());
        options.push("--requeue".into());
        options.extend(users.iter().cloned());
        let comment = [
            "One task per combo of a sweeprun [command] sweep (`sweeprun run --backend slurm --slurm-array`):".into(),
            "each runs combo $SLURM_ARRAY_TASK_ID and writes its record to <out>.runs/records/.".into(),
        ];
        head(&comment, &options) + &format!("exec {}\n", shell_line(&exe.display().to_string(), &task_args(args, &out)))
    };
    let gather_text = {
        let mut options =
            vec![format!("--job-name={}", sbatch_word(&script::job_name(&out, ":gather"))), "--ntasks=1".into()];
        options.extend(common.iter().cloned());
        options.push(format!("--output={}", sbatch_word(&filename_pattern(&out, ".slurm-%j.out"))));
        options.push(format!("--error={}", sbatch_word(&filename_pattern(&out, ".slurm-%j.err"))));
        options.extend(users.iter().cloned());
        let comment = [
            "Gathers the records of a sweeprun array sweep into its table; submitted with".into(),
            "`sbatch --dependency=afterany:<array job>` (it names the combos without a record, if any).".into(),
        ];
        head(&comment, &options)
            + &format!("exec {}\n", shell_line(&exe.display().to_string(), &array::gather_args(args, &out)))
    };
    let spec = array::array_spec_text(&ids, parallel);
    if !ids.is_empty() {
        job::test_only(&array_text(&spec))?;
    }
    job::test_only(&gather_text)?;

    // Now `<out>.runs/` is made ready (a fresh sweep clears it) and the jobs go out. Should
    // SLURM refuse them after all, what this made is removed again.
    let runs = ledger::runs_dir(&out);
    let runs_existed = runs.exists();
    let created = super::create_parents(&out)?;
    let undo = || {
        if !runs_existed {
            let _ = std::fs::remove_dir_all(&runs);
        }
        if let Some(dir) = &created {
            let _ = std::fs::remove_dir_all(dir);
        }
    };
    let prepared = array::prepare_array(args).inspect_err(|_| undo())?;
    let spec = array::array_spec_text(&prepared.ids, parallel);
    let (array_job, array_script) = if prepared.ids.is_empty() {
        (None, None)
    } else {
        let text = array_text(&spec);
        (Some(job::submit(&text, &[]).inspect_err(|_| undo())?), Some(text))
    };
    let dependency = array_job.as_ref().map(|id| format!("--dependency=afterany:{id}"));
    let gather_job = match job::submit(&gather_text, &dependency.iter().map(String::as_str).collect::<Vec<_>>()) {
        Ok(id) => id,
        Err(e) => {
            if let Some(id) = &array_job {
                let _ = job::cancel(id);
            }
            undo();
            return Err(e);
        }
    };
    match &array_job {
        Some(id) => say!(
            "sweeprun: submitted array job {id}: {} ({}) as --array={spec}, then gather job {gather_job}",
            counted(prepared.ids.len() as u64, "task"),
            counted(prepared.combos, "combo")
        ),
        None => say!("sweeprun: every combo has its record; submitted gather job {gather_job}"),
    }
    let record = JobRecord {
        job_id: gather_job.clone(),
        array_job,
        out: out.clone(),
        script: script::script_path(&out),
        stdout: script::stdout_path(&out, &gather_job),
        stderr: script::stderr_path(&out, &gather_job),
        combos: prepared.combos,
        format: checked.format.name().to_string(),
        command_sweep: true,
        ranks: 1,
        submitted_at: ledger::rfc3339(std::time::SystemTime::now()),
        resume_command: super::resume_command(workdir),
    };
    let written = array_script
        .map_or(Ok(()), |text| ledger::write_atomically(&record.script, text.as_bytes()))
        .and_then(|()| ledger::write_atomically(&gather_script_path(&out), gather_text.as_bytes()))
        .and_then(|()| record.save());
    if let Err(e) = written {
        return Err(Failure::runtime(format!(
            "jobs {} were submitted, but {e}; follow them with squeue",
            record.array_job.iter().chain([&record.job_id]).cloned().collect::<Vec<_>>().join(", ")
        )));
    }
    Ok(record)
}

/// `__combo SPEC --out=OUT ...`: the task's command line after the executable.
fn task_args(args: &RunArgs, out: &Path) -> Vec<OsString> {
    array::combo_task_args(args, out)
}

/// Records on disk: each finished task wrote one (`<out>.runs/records/<id>.json`).
pub fn records_on_disk(out: &Path) -> u64 {
    std::fs::read_dir(ledger::combo_records_dir(out)).map_or(0, |entries| {
        entries.filter_map(|e| e.ok()).filter(|e| e.file_name().to_str().is_some_and(|n| n.ends_with(".json"))).count()
            as u64
    })
}
