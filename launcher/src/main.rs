//! The `sweeprun` command.

use clap::Parser;
use std::io::Write;
use std::process::ExitCode;
use sweeprun::cli::{normalize_args, Cli, Command};

fn main() -> ExitCode {
    let cli = match Cli::try_parse_from(normalize_args(std::env::args_os())) {
        Ok(cli) => cli,
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            eprintln!(
                "sweeprun: missing a subcommand: run, bench, verify, status, collect or cancel (see sweeprun --help)"
            );
            return ExitCode::from(2);
        }
        Err(e) if e.use_stderr() => {
            eprintln!("sweeprun: {} (see sweeprun --help)", one_line(&e.render().to_string()));
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
        Command::Combo(args) => sweeprun::array::combo(args),
        Command::Gather(args) => sweeprun::array::gather(args),
        Command::Verify { table } => sweeprun::verify::verify(table),
        Command::Report(args) => sweeprun::sweep_report::report(args).map(|path| format!("{}\n", path.display())),
        Command::Status { out } => sweeprun::backend::slurm::status(out),
        Command::Collect { out } => {
            sweeprun::signals::install();
            sweeprun::backend::slurm::collect(out)
        }
        Command::Cancel { out } => sweeprun::backend::slurm::cancel(out),
        Command::Rank { pin_cpu, index, report_bindings, parent } => {
            return ExitCode::from(sweeprun::worker::run_rank(*pin_cpu, *index, *report_bindings, *parent))
        }
        Command::AgentGuard { group, rank } => return ExitCode::from(sweeprun::thermal::guard_main(*group, *rank)),
    };
    match result {
        Ok(report) => {
            let mut stdout = std::io::stdout().lock();
            // A closed stdout (e.g. `| head`) is not a failure: the results are in files.
            let _ = stdout.write_all(report.as_bytes()).and_then(|()| stdout.flush());
            ExitCode::SUCCESS
        }
        Err(failure) => {
            sweeprun::error::report(&failure);
            ExitCode::from(failure.exit_code())
        }
    }
}

/// Joins the first paragraph of a clap error (the problem and, e.g., the missing argument
/// or the possible values) into one line, with clap's suggestion of a similar flag or
/// subcommand if it made one; the usage and other tips after it are dropped.
fn one_line(rendered: &str) -> String {
    let paragraph: Vec<&str> = rendered.lines().take_while(|l| !l.trim().is_empty()).map(str::trim).collect();
    let line = paragraph.join(" ");
    let line = line.trim_start_matches("error: ").trim_end_matches(':');
    if line.is_empty() {
        return "invalid arguments".to_string();
    }
    // e.g. "tip: a similar argument exists: '--out'" -> "did you mean '--out'?"
    let suggestions: Vec<&str> = rendered
        .lines()
        .filter_map(|l| l.trim().strip_prefix("tip: a similar "))
        .filter_map(|tip| tip.split_once(" exists: ").or_else(|| tip.split_once(" exist: ")))
        .map(|(_, names)| names.trim())
        .collect();
    if suggestions.is_empty() {
        line.to_string()
    } else {
        format!("{line}; did you mean {}?", suggestions.join(" or "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clap_suggestion_stays_on_the_one_line() {
        let rendered = "error: unexpected argument '--ot' found\n\n  tip: a similar argument exists: '--out'\n\n\
                        Usage: sweeprun run --out <PATH> <SPEC>\n\nFor more information, try '--help'.\n";
        assert_eq!(one_line(rendered), "unexpected argument '--ot' found; did you mean '--out'?");
        assert_eq!(
            one_line(
                "error: unexpected argument '--turbo' found\n\n  tip: to pass '--turbo' as a value, use '-- --turbo'\n"
            ),
            "unexpected argument '--turbo' found"
        );
    }
}
