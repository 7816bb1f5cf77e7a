//! `sweeprun-agent`: the sweeprun node agent's command line.
//!
//! Exit codes: 0 done, 1 a sensor could not be read, 2 bad usage.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use sweeprun_agent::Snapshot;

/// Reads this node's thermal state (thermal zones, cooling devices such as
/// the Pi's gpio-fan, CPU clocks) and reports it.
#[derive(Debug, Parser)]
#[command(
    name = "sweeprun-agent",
    version,
    about = "sweeprun node agent: reports this node's thermal state \
             (no thermal control loop in this version yet)",
    long_about = "sweeprun node agent: reports this node's thermal state \
                  (thermal zones, cooling devices such as the Pi's gpio-fan, CPU clocks).\n\n\
                  Not in this version yet: the thermal control loop. The agent does not cap \
                  the CPU clock, pause ranks or drive a fan; it only reads and reports.",
    after_help = "Examples:\n  \
                  sweeprun-agent status\n  \
                  sweeprun-agent status --format prometheus\n  \
                  sweeprun-agent status --sys-root /tmp/fake-sys"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print one snapshot of the sensors to stdout and exit.
    #[command(after_help = "Examples:\n  \
                      sweeprun-agent status\n      JSON from /sys\n  \
                      sweeprun-agent status --format prometheus\n      \
                      Prometheus text, e.g. for node_exporter's textfile collector\n  \
                      sweeprun-agent status --sys-root /tmp/fake-sys\n      \
                      Read a fake or simulated sysfs tree instead of /sys")]
    Status {
        /// Root of the sysfs tree to read (must be a directory).
        #[arg(long, value_name = "DIR", default_value = "/sys", value_parser = existing_dir)]
        sys_root: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Json)]
        format: Format,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    /// Pretty-printed JSON with stable keys.
    Json,
    /// Prometheus text exposition format.
    Prometheus,
}

/// Rejects a `--sys-root` that is not a directory. Without this, a typo
/// would read as a node with no sensors at all.
fn existing_dir(arg: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(arg);
    if path.is_dir() {
        Ok(path)
    } else {
        Err("not a directory (expected a sysfs root such as /sys)".to_owned())
    }
}

fn main() -> ExitCode {
    // clap prints usage errors itself and exits 2; --help/--version exit 0.
    let cli = Cli::parse();
    match cli.command {
        Command::Status { sys_root, format } => status(&sys_root, format),
    }
}

fn status(sys_root: &Path, format: Format) -> ExitCode {
    let snapshot = match Snapshot::take(sys_root) {
        Ok(snapshot) => snapshot,
        Err(err) => return fail(&err),
    };
    if snapshot.is_empty() {
        // An empty snapshot is valid output, but it should not pass for a cool board.
        eprintln!("sweeprun-agent: no thermal zones, cooling devices or cpufreq found under {}", sys_root.display());
    }
    let text = match format {
        Format::Json => {
            let mut json =
                serde_json::to_string_pretty(&snapshot.to_json()).expect("a serde_json::Value always serializes");
            json.push('\n');
            json
        }
        Format::Prometheus => snapshot.to_prometheus(),
    };
    match io::stdout().lock().write_all(text.as_bytes()) {
        Ok(()) => ExitCode::SUCCESS,
        // `sweeprun-agent status | head` is not a failure.
        Err(err) if err.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(err) => fail(&err),
    }
}

/// Prints the error and its causes on one line and returns exit code 1.
fn fail(err: &dyn std::error::Error) -> ExitCode {
    let mut line = format!("sweeprun-agent: {err}");
    let mut cause = err.source();
    while let Some(err) = cause {
        let _ = write!(line, ": {err}"); // writing to a String cannot fail
        cause = err.source();
    }
    eprintln!("{line}");
    ExitCode::FAILURE
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    #[test]
    fn cli_definition_is_valid() {
        Cli::command().debug_assert();
    }
}
