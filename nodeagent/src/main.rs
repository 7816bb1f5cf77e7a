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
    about = "sweeprun node agent: keeps a board below its temperature limit while sweeps run",
    long_about = "sweeprun node agent: reads the board's thermal state (thermal zones, cooling \
                  devices such as the Pi's gpio-fan, CPU clocks) and keeps it below its limit \
                  (75 C by default) by capping the clock, then duty-cycling the managed rank \
                  process groups, then the fan; `simulate` runs scenarios on a simulated Pi 4B.",
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
    /// Keep this node below its temperature limit: sample the sensors, cap the clock,
    /// duty-cycle the managed rank process groups, drive the fan when it owns it.
    #[command(after_help = "Examples:\n  \
                      sweeprun-agent run --config /etc/sweeprun/agent.toml --pid 4242\n  \
                      sweeprun-agent run --sys-root /tmp/sim-board --pid 4242 --pid 4243")]
    Run {
        /// agent.toml (every key has a default; see docs/agent.md).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Override the config's sysfs root.
        #[arg(long, value_name = "DIR", value_parser = existing_dir)]
        sys_root: Option<PathBuf>,
        /// Manage this process group (its leader's pid); repeatable.
        #[arg(long = "pid", value_name = "PGID")]
        pids: Vec<u32>,
        /// Stop after this many seconds (default: run until SIGINT/SIGTERM).
        #[arg(long, value_name = "SECONDS")]
        seconds: Option<f64>,
        /// Override the config's registration socket (`%h`: this host's name, for nodes
        /// that share /run, e.g. `/run/sweeprun/agent-%h.sock`).
        #[arg(long, value_name = "PATH")]
        socket: Option<PathBuf>,
        /// Override the config's status endpoint address (`""`: none).
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
    },
    /// Run a scenario on a simulated Pi 4B board with real worker processes and print one
    /// JSON object of results (peak temperature, throughput, actuator changes, ...).
    #[command(after_help = "Examples:\n  \
                      sweeprun-agent simulate --model pi4-case-fan-off --ambient 30 --duration 2h\n  \
                      sweeprun-agent simulate --model pi4-case-fan-off --ambient 30 --duration 2h --baseline firmware\n  \
                      sweeprun-agent simulate --model pi4-case-fan-on --ambient 30 --duration 1h --fail-fan-at 20m --trace run.csv")]
    Simulate {
        /// pi4-bare, pi4-heatsink, pi4-case-fan-on or pi4-case-fan-off.
        #[arg(long)]
        model: String,
        /// Room temperature, C.
        #[arg(long, default_value_t = 30.0)]
        ambient: f64,
        /// The board's offset above the room in its stack, K.
        #[arg(long, default_value_t = 3.0)]
        stack: f64,
        /// Simulated time, e.g. 2h, 30m, 90s.
        #[arg(long, default_value = "2h", value_parser = duration_s)]
        duration: f64,
        /// The case fan fails at this simulated time.
        #[arg(long, value_parser = duration_s)]
        fail_fan_at: Option<f64>,
        /// Every sensor disappears at this simulated time ...
        #[arg(long, value_parser = duration_s)]
        lose_sensors_at: Option<f64>,
        /// ... for this long.
        #[arg(long = "for", default_value = "20s", value_parser = duration_s)]
        lost_for: f64,
        /// `firmware`: no agent, the firmware alone (the baseline to compare with).
        #[arg(long)]
        baseline: Option<String>,
        /// Simulated seconds per real second.
        #[arg(long, default_value_t = 120.0)]
        speedup: f64,
        /// Write the time series (time, temperature, clock, duty, fan) as CSV.
        #[arg(long, value_name = "CSV")]
        trace: Option<PathBuf>,
        /// Draw the time series as an SVG chart.
        #[arg(long, value_name = "SVG")]
        plot: Option<PathBuf>,
        /// agent.toml for the agent under test.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Print the agent's log lines on stderr.
        #[arg(long)]
        verbose: bool,
    },
    /// Internal: one worker of a simulation (real sweep work until killed).
    #[command(name = "__work", hide = true)]
    Work {
        /// Exit when this process is gone.
        #[arg(long)]
        parent: Option<u32>,
    },
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
        Command::Run { config, sys_root, pids, seconds, socket, listen } => {
            let mut config = match load_config(config.as_deref()) {
                Ok(config) => config,
                Err(e) => return usage(&e),
            };
            if let Some(root) = sys_root {
                config.sys_root = root;
            }
            if let Some(socket) = socket {
                config.socket = Some(socket);
            }
            config.socket = config.socket.as_deref().map(sweeprun_agent::config::expand_socket);
            if let Some(listen) = listen {
                config.listen = (!listen.is_empty()).then_some(listen);
            }
            run(&config, &pids, seconds)
        }
        Command::Simulate {
            model,
            ambient,
            stack,
            duration,
            fail_fan_at,
            lose_sensors_at,
            lost_for,
            baseline,
            speedup,
            trace,
            plot,
            config,
            verbose,
        } => {
            let firmware_only = match baseline.as_deref() {
                None => false,
                Some("firmware") => true,
                Some(other) => return usage(&format!("--baseline: expected firmware, got `{other}`")),
            };
            if !(speedup.is_finite() && speedup > 0.0) {
                return usage("--speedup: expected a positive number");
            }
            let agent = match load_config(config.as_deref()) {
                Ok(agent) => agent,
                Err(e) => return usage(&e),
            };
            let scenario = sweeprun_agent::simulate::Scenario {
                model,
                room_c: ambient,
                stack_k: stack,
                duration_s: duration,
                fail_fan_at_s: fail_fan_at,
                lose_sensors: lose_sensors_at.map(|at| (at, lost_for)),
                firmware_only,
                speedup,
                trace,
                plot,
                agent,
            };
            simulate(&scenario, verbose)
        }
        Command::Work { parent } => match sweeprun_agent::work::work(parent) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(&*Box::<dyn std::error::Error>::from(e)),
        },
    }
}

/// `2h`, `30m`, `90s`, `1.5h` or plain seconds.
fn duration_s(text: &str) -> Result<f64, String> {
    let (number, unit) = match text.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((at, _)) => text.split_at(at),
        None => (text, "s"),
    };
    let scale = match unit {
        "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => return Err(format!("expected a duration such as 2h, 30m or 90s, got `{text}`")),
    };
    match number.parse::<f64>() {
        Ok(n) if n.is_finite() && n >= 0.0 => Ok(n * scale),
        _ => Err(format!("expected a duration such as 2h, 30m or 90s, got `{text}`")),
    }
}

fn load_config(path: Option<&Path>) -> Result<sweeprun_agent::config::AgentConfig, String> {
    match path {
        Some(path) => sweeprun_agent::config::AgentConfig::load(path),
        None => Ok(sweeprun_agent::config::AgentConfig::default()),
    }
}

fn usage(message: &str) -> ExitCode {
    eprintln!("sweeprun-agent: {message}");
    ExitCode::from(2)
}

fn simulate(scenario: &sweeprun_agent::simulate::Scenario, verbose: bool) -> ExitCode {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => return fail(&e),
    };
    match sweeprun_agent::simulate::run(scenario, &exe) {
        Ok((result, log)) => {
            if verbose {
                for line in log {
                    eprintln!("sweeprun-agent: {line}");
                }
            }
            println!("{}", serde_json::to_string_pretty(&result).expect("JSON serialises"));
            ExitCode::SUCCESS
        }
        Err(e) if e.starts_with("unknown") || e.contains("model") && e.contains("expected") => usage(&e),
        Err(e) => fail(&*Box::<dyn std::error::Error>::from(e)),
    }
}

/// The agent on a real board (or a tree someone else simulates): ticks at 10 Hz until
/// SIGINT/SIGTERM or `seconds`, then puts everything back.
fn run(config: &sweeprun_agent::config::AgentConfig, pids: &[u32], seconds: Option<f64>) -> ExitCode {
    let stop = install_stop_flag();
    let endpoint = match config.listen.as_deref().map(sweeprun_agent::endpoint::Endpoint::start).transpose() {
        Ok(endpoint) => endpoint,
        Err(e) => return fail(&e),
    };
    if let Some(endpoint) = &endpoint {
        eprintln!("sweeprun-agent: status on http://{}/status and /metrics", endpoint.address);
    }
    let mut registry = match config.socket.as_deref().map(sweeprun_agent::registry::Registry::listen).transpose() {
        Ok(registry) => registry,
        Err(e) => return fail(&e),
    };
    if let Some(socket) = &config.socket {
        eprintln!("sweeprun-agent: ranks register on {}", socket.display());
    }
    let mut io = sweeprun_agent::board_io::BoardIo::new(&config.sys_root, config.model.cores);
    for &pid in pids {
        if !io.register(pid) {
            return usage(&format!("--pid {pid}: not the leader of a process group (give the group's id)"));
        }
    }
    let mut agent = sweeprun_agent::agent::Agent::new(config);
    let started = std::time::Instant::now();
    while !stop.load(std::sync::atomic::Ordering::SeqCst) && seconds.is_none_or(|s| started.elapsed().as_secs_f64() < s)
    {
        for line in agent.tick(started.elapsed().as_secs_f64(), &mut io) {
            eprintln!("sweeprun-agent: {line}");
        }
        if let Some(registry) = registry.as_mut() {
            let (added, removed) = registry.poll();
            for pgid in added {
                if io.register(pgid) {
                    eprintln!("sweeprun-agent: managing rank process group {pgid}");
                } else {
                    eprintln!("sweeprun-agent: not managing {pgid}: not the leader of a process group");
                }
            }
            for pgid in removed {
                io.unregister(pgid);
            }
        }
        let status = agent.status().to_string();
        if let Some(registry) = &registry {
            registry.broadcast(&status);
        }
        if let Some(endpoint) = &endpoint {
            endpoint.publish(status, agent.metrics());
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    agent.release(&mut io);
    eprintln!("sweeprun-agent: stopped; clock cap removed, every managed rank running");
    ExitCode::SUCCESS
}

/// Set by SIGINT and SIGTERM: the loop then undoes its actions and exits.
static STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn on_stop_signal(_: nix::libc::c_int) {
    STOP.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// Installs the SIGINT/SIGTERM handlers that set [`STOP`].
fn install_stop_flag() -> &'static std::sync::atomic::AtomicBool {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let action = SigAction::new(SigHandler::Handler(on_stop_signal), SaFlags::SA_RESTART, SigSet::empty());
    // SIGHUP too: a closed terminal must not leave ranks stopped.
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        let _ = unsafe { sigaction(signal, &action) };
    }
    &STOP
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
