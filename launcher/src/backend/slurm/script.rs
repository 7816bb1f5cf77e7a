//! The batch script `<out>.sbatch`: everything the job needs in `#SBATCH` lines and one
//! command, readable, and submittable again by hand (`sbatch <out>.sbatch`).

use crate::backend::mpirun::shell_line;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// How the job runs the sweep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Launch {
    /// `srun --mpi=pmix sweeprun run ... --backend mpi`: one MPI rank per task, on every
    /// node of the job.
    Mpi,
    /// `sweeprun run ... --backend local -np K` on the job's one node (a sweeprun built
    /// without MPI).
    Local {
        /// Rank processes.
        ranks: u64,
    },
}

/// What goes into the script.
#[derive(Debug, Clone)]
pub struct Script {
    /// `--job-name`.
    pub job_name: String,
    /// `--nodes`.
    pub nodes: u64,
    /// `--ntasks-per-node`.
    pub ntasks_per_node: u64,
    /// `--partition`, when given.
    pub partition: Option<String>,
    /// `--time`, when given.
    pub time: Option<String>,
    /// `--account`, when given.
    pub account: Option<String>,
    /// More `#SBATCH` arguments, as given.
    pub extra: Vec<String>,
    /// The job's working directory (where `sweeprun run --backend slurm` ran).
    pub workdir: PathBuf,
    /// The results table (absolute).
    pub out: PathBuf,
    /// This sweeprun executable (on storage every node sees).
    pub exe: PathBuf,
    /// `run ...` arguments of the sweep, without `--resume` (the script decides).
    pub run_args: Vec<OsString>,
    /// Whether the user asked for `--resume` (then it is always passed).
    pub resume: bool,
    /// How the sweep runs in the job.
    pub launch: Launch,
}

/// The job's stdout (the sweep's summary) for job `id`, `<out>.slurm-<id>.out`.
pub fn stdout_path(out: &Path, id: &str) -> PathBuf {
    suffixed(out, &format!(".slurm-{id}.out"))
}

/// The job's stderr (progress lines, messages), `<out>.slurm-<id>.err`.
pub fn stderr_path(out: &Path, id: &str) -> PathBuf {
    suffixed(out, &format!(".slurm-{id}.err"))
}

/// `<out>.sbatch`.
pub fn script_path(out: &Path) -> PathBuf {
    suffixed(out, ".sbatch")
}

fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Quotes a word for the shell (plain words stay as they are).
fn quoted(word: &str) -> String {
    shell_line(word, &[])
}

impl Script {
    /// The script's text.
    pub fn text(&self) -> String {
        let out = self.out.display().to_string();
        let mut options = vec![
            format!("--job-name={}", self.job_name),
            format!("--nodes={}", self.nodes),
            format!("--ntasks-per-node={}", self.ntasks_per_node),
        ];
        options.extend(common_options(
            self.partition.as_deref(),
            self.time.as_deref(),
            self.account.as_deref(),
            &self.workdir,
            &[],
        ));
        options.push(format!("--output={}", stdout_path(&self.out, "%j").display()));
        options.push(format!("--error={}", stderr_path(&self.out, "%j").display()));
        // A requeued job appends to its logs rather than wiping what its first run said.
        options.push("--open-mode=append".to_string());
        // A lost node requeues the job (where the cluster allows it); the rerun resumes.
        options.push("--requeue".to_string());
        // The user's own options last: sbatch takes the last of a repeated option.
        options.extend(self.extra.iter().cloned());
        let comment = [
            format!(
                "A sweeprun sweep as a SLURM batch job, written by `sweeprun run --backend slurm` (sweeprun {}).",
                env!("CARGO_PKG_VERSION")
            ),
            "Submit it again by hand with `sbatch` on this file: it finishes the sweep from its journal".to_string(),
            format!("({out}.partial) when there is one, as a requeued job does."),
        ];
        let mut lines: Vec<String> = head(&comment, &options).lines().map(str::to_string).collect();
        lines.push("set -u".to_string());
        let resume = if self.resume {
            " --resume".to_string()
        } else {
            lines.push(format!(
                "# A rerun (requeued after a lost node, or submitted again) finishes what the journal holds.\n\
                 resume=\nif [ -e {} ]; then resume=--resume; fi",
                quoted(&format!("{out}.partial"))
            ));
            " $resume".to_string()
        };
        lines.push(
            "echo \"sweeprun: job $SLURM_JOB_ID (restart ${SLURM_RESTART_COUNT:-0}) on $SLURM_JOB_NODELIST\" >&2"
                .to_string(),
        );
        let mut run_args = self.run_args.clone();
        let exe = self.exe.display().to_string();
        let command = match self.launch {
            Launch::Mpi => shell_line("srun", &[&["--mpi=pmix".into(), exe.into()][..], &run_args].concat()),
            Launch::Local { ranks } => {
                run_args.extend(["-np".into(), ranks.to_string().into()]);
                shell_line(&exe, &run_args)
            }
        };
        lines.push(format!("exec {command}{resume}"));
        lines.join("\n") + "\n"
    }
}

/// The shared head of a script: interpreter, what wrote it, the `#SBATCH` lines.
pub fn head(comment: &[String], sbatch: &[String]) -> String {
    let mut lines = vec!["#!/bin/bash".to_string()];
    lines.extend(comment.iter().map(|c| format!("# {c}")));
    lines.extend(sbatch.iter().map(|s| format!("#SBATCH {s}")));
    lines.join("\n") + "\n"
}

/// `#SBATCH` options every script of a sweep shares: partition, time, account, working
/// directory, then the user's own.
pub fn common_options(
    partition: Option<&str>,
    time: Option<&str>,
    account: Option<&str>,
    workdir: &Path,
    extra: &[String],
) -> Vec<String> {
    let mut options = Vec::new();
    if let Some(partition) = partition {
        options.push(format!("--partition={partition}"));
    }
    if let Some(time) = time {
        options.push(format!("--time={time}"));
    }
    if let Some(account) = account {
        options.push(format!("--account={account}"));
    }
    options.push(format!("--chdir={}", workdir.display()));
    options.extend(extra.iter().cloned());
    options
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(launch: Launch, resume: bool) -> Script {
        Script {
            job_name: "sweeprun:goog".into(),
            nodes: 4,
            ntasks_per_node: 4,
            partition: Some("debug".into()),
            time: Some("30".into()),
            account: None,
            extra: vec!["--exclusive".into()],
            workdir: "/srv/sweeps".into(),
            out: "/srv/sweeps/goog results.csv".into(),
            exe: "/srv/bin/sweeprun".into(),
            run_args: ["run", "/srv/sweeps/goog.toml", "--backend", "mpi", "--out", "/srv/sweeps/goog results.csv"]
                .map(OsString::from)
                .to_vec(),
            resume,
            launch,
        }
    }

    #[test]
    fn the_script_asks_for_everything_and_resumes_from_a_journal() {
        let text = script(Launch::Mpi, false).text();
        for line in [
            "#!/bin/bash",
            "#SBATCH --nodes=4",
            "#SBATCH --ntasks-per-node=4",
            "#SBATCH --partition=debug",
            "#SBATCH --time=30",
            "#SBATCH --chdir=/srv/sweeps",
            "#SBATCH --output=/srv/sweeps/goog results.csv.slurm-%j.out",
            "#SBATCH --requeue",
            "#SBATCH --exclusive",
            "if [ -e '/srv/sweeps/goog results.csv.partial' ]; then resume=--resume; fi",
            "exec srun --mpi=pmix /srv/bin/sweeprun run /srv/sweeps/goog.toml --backend mpi \
             --out '/srv/sweeps/goog results.csv' $resume",
        ] {
            assert!(text.lines().any(|l| l == line), "missing `{line}` in:\n{text}");
        }
        assert!(!text.contains("--account"), "{text}");
        // Every #SBATCH line comes before the first command (sbatch stops reading them there).
        let first_command = text.lines().position(|l| !l.starts_with('#')).unwrap();
        assert!(text.lines().skip(first_command).all(|l| !l.starts_with("#SBATCH")), "{text}");
        let local = script(Launch::Local { ranks: 4 }, true).text();
        assert!(
            local.lines().any(|l| l
                == "exec /srv/bin/sweeprun run /srv/sweeps/goog.toml --backend mpi --out '/srv/sweeps/goog results.csv' \
                    -np 4 --resume"),
            "{local}"
        );
        assert!(!local.contains("resume=\n"), "{local}");
    }
}
