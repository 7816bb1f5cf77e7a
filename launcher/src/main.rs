//! The `sweeprun` command.

use clap::Parser;
use std::io::Write;
use std::process::ExitCode;
use sweeprun::cli::{normalize_args, Cli, Command};
use sweeprun::error::Failure;

fn main() -> ExitCode {
    let cli = match Cli::try_parse_from(normalize_args(std::env::args_os())) {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            // One line naming the problem; `--help` has the rest.
            let rendered = e.render().to_string();
            let first = rendered.lines().next().unwrap_or("invalid arguments");
            eprintln!("sweeprun: {} (see sweeprun --help)", first.trim_start_matches("error: "));
            return ExitCode::from(2);
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    };
    let result = match &cli.command {
        Command::Run(args) => {
            sweeprun::signals::install();
            sweeprun::run::run(args)
        }
        Command::Bench(args) => sweeprun::bench::bench(args),
        Command::Rank { pin_cpu } => return ExitCode::from(sweeprun::worker::run_rank(*pin_cpu)),
    };
    match result {
        Ok(report) => {
            let mut stdout = std::io::stdout().lock();
            // A closed stdout (e.g. `| head`) is not a failure: the results are in files.
            let _ = stdout.write_all(report.as_bytes()).and_then(|()| stdout.flush());
            ExitCode::SUCCESS
        }
        Err(failure) => {
            let prefix = if matches!(failure, Failure::Interrupted(_)) { "sweeprun: " } else { "sweeprun: error: " };
            eprintln!("{prefix}{failure}");
            ExitCode::from(failure.exit_code())
        }
    }
}
