//! The batch script `<out>.sbatch`: everything the job needs in `#SBATCH` lines and one
//! command, readable, and submittable again by hand (`sbatch <out>.sbatch`).

use crate::backend::mpirun::shell_line;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// How the job runs the sweep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Launch {
    /// `srun --mpi=PLUGIN sweeprun run ... --backend mpi`: one MPI rank per task, on every
    /// node of the job (`pmix` unless `--slurm-mpi` names another of `srun --mpi=list`).
    Mpi {
        /// srun's MPI plugin.
        plugin: String,
    },
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

/// A value as an `#SBATCH` line's word. sbatch splits those lines at blanks, honours
/// `"..."` and `'...'`, takes `\` as an escape and an unquoted `#` as the start of a
/// comment (slurm's `_get_argument`), so anything but plain characters goes in double
/// quotes with `\` and `"` escaped. A line break cannot be written: [`check_path`] and
/// the job-name cleaning keep it out.
pub fn sbatch_word(value: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-:,+@=%[]".contains(c);
    if !value.is_empty() && value.chars().all(plain) {
        return value.to_string();
    }
    let mut word = String::with_capacity(value.len() + 2);
    word.push('"');
    for c in value.chars() {
        if c == '\\' || c == '"' {
            word.push('\\');
        }
        word.push(c);
    }
    word.push('"');
    word
}

/// A path as an sbatch filename pattern (`--output`, `--error`): its own `%` doubled so
/// only the `%j`/`%A` of `pattern_suffix` are replaced by SLURM.
pub fn filename_pattern(path: &Path, pattern_suffix: &str) -> String {
    path.display().to_string().replace('%', "%%") + pattern_suffix
}

/// Refuses a path the batch script cannot carry: one that is not UTF-8, holds a line
/// break, or a `\` (which turns off SLURM's `%j` in file names).
pub fn check_path(what: &str, path: &Path) -> crate::error::Result<()> {
    let bad = match path.to_str() {
        None => Some("is not UTF-8"),
        Some(text) if text.contains(['\n', '\r']) => Some("holds a line break"),
        Some(text) if text.contains('\\') => Some("holds a backslash"),
        Some(_) => None,
    };
    match bad {
        Some(why) => Err(crate::error::Failure::usage(format!(
            "{what} {}: {why}, which a SLURM batch script cannot carry; use another path for --backend slurm",
            path.display()
        ))),
        None => Ok(()),
    }
}

/// A job name from a table's file stem: printable, no blanks (SLURM shows it in squeue).
pub fn job_name(out: &Path, suffix: &str) -> String {
    let stem = out.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let stem: String = stem.chars().map(|c| if c.is_control() || c.is_whitespace() { '_' } else { c }).collect();
    format!("sweeprun:{stem}{suffix}")
}

impl Script {
    /// The script's text.
    pub fn text(&self) -> String {
        let out = self.out.display().to_string();
        let mut options = vec![
            format!("--job-name={}", sbatch_word(&self.job_name)),
            format!("--nodes={}", self.nodes),
            format!("--ntasks-per-node={}", self.ntasks_per_node),
        ];
        options.extend(common_options(
            self.partition.as_deref(),
            self.time.as_deref(),
            self.account.as_deref(),
            &self.workdir,
        ));
        options.push(format!("--output={}", sbatch_word(&filename_pattern(&self.out, ".slurm-%j.out"))));
        options.push(format!("--error={}", sbatch_word(&filename_pattern(&self.out, ".slurm-%j.err"))));
        // A requeued job appends to its logs rather than wiping what its first run said.
        options.push("--open-mode=append".to_string());
        // A lost node requeues the job (where the cluster allows it); the rerun resumes.
        options.push("--requeue".to_string());
        // The user's own options last: sbatch takes the last of a repeated option.
        options.extend(self.extra.iter().map(|arg| sbatch_word(arg)));
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
            "echo \"sweeprun: job ${SLURM_JOB_ID:-none} (restart ${SLURM_RESTART_COUNT:-0}) on ${SLURM_JOB_NODELIST:-$(hostname)}\" >&2"
                .to_string(),
        );
        let mut run_args = self.run_args.clone();
        let exe = self.exe.display().to_string();
        let command = match self.launch {
            Launch::Mpi { ref plugin } => {
                shell_line("srun", &[&[format!("--mpi={plugin}").into(), exe.into()][..], &run_args].concat())
            }
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
/// directory, the environment. (The user's own `--sbatch-arg`s go last, after the
/// script's own: sbatch takes the last of a repeated option.)
pub fn common_options(
    partition: Option<&str>,
    time: Option<&str>,
    account: Option<&str>,
    workdir: &Path,
) -> Vec<String> {
    let mut options = Vec::new();
    if let Some(partition) = partition {
        options.push(format!("--partition={}", sbatch_word(partition)));
    }
    if let Some(time) = time {
        options.push(format!("--time={}", sbatch_word(time)));
    }
    if let Some(account) = account {
        options.push(format!("--account={}", sbatch_word(account)));
    }
    options.push(format!("--chdir={}", sbatch_word(&workdir.display().to_string())));
    // The submitting shell's environment (PATH to python3, a venv, OMP settings), as the
    // job would get by default unless the site sets SBATCH_EXPORT otherwise.
    options.push("--export=ALL".to_string());
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
            extra: vec!["--exclusive".into(), "--job-name=goog sweep".into()],
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
        let text = script(Launch::Mpi { plugin: "pmix".into() }, false).text();
        for line in [
            "#!/bin/bash",
            "#SBATCH --nodes=4",
            "#SBATCH --ntasks-per-node=4",
            "#SBATCH --partition=debug",
            "#SBATCH --time=30",
            "#SBATCH --chdir=/srv/sweeps",
            "#SBATCH --job-name=sweeprun:goog",
            "#SBATCH --output=\"/srv/sweeps/goog results.csv.slurm-%j.out\"",
            "#SBATCH --export=ALL",
            "#SBATCH --requeue",
            "#SBATCH --exclusive",
            // The user's own name comes last: sbatch takes the last of a repeated option.
            "#SBATCH \"--job-name=goog sweep\"",
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

    #[test]
    fn sbatch_words_are_quoted_as_sbatch_reads_them() {
        assert_eq!(sbatch_word("/srv/a_b-1.csv.slurm-%j.out"), "/srv/a_b-1.csv.slurm-%j.out");
        assert_eq!(sbatch_word("my dir/x.csv"), "\"my dir/x.csv\"");
        // An unquoted `#` would start a comment; `\` and `"` are escaped inside the quotes.
        assert_eq!(sbatch_word("run #2"), "\"run #2\"");
        assert_eq!(sbatch_word(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(sbatch_word(""), "\"\"");
        assert_eq!(filename_pattern(Path::new("/s/50% off.csv"), ".slurm-%j.out"), "/s/50%% off.csv.slurm-%j.out");
        assert_eq!(job_name(Path::new("/s/my table\n.csv"), ":gather"), "sweeprun:my_table_:gather");
        assert!(check_path("--out", Path::new("/s/a b#%.csv")).is_ok());
        for bad in ["/s/a\nb.csv", "/s/a\\b.csv"] {
            let message = check_path("--out", Path::new(bad)).unwrap_err().to_string();
            assert!(message.contains("SLURM batch script cannot carry"), "{message}");
        }
    }
}
