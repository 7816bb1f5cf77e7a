//! `--thermal auto|off|sim:MODEL`: the sweep under a node agent.
//!
//! - `auto` (the default): if this node's agent listens (`sweeprun-agent run`, socket
//!   `$SWEEPRUN_AGENT_SOCKET` or `/run/sweeprun-agent.sock`), the local ranks register with
//!   it; the progress and the sidecar show what it reports. If the agent goes away while the
//!   sweep runs (even `kill -9`), the launcher resumes every rank itself at once: no rank
//!   stays stopped. Without an agent, nothing happens.
//! - `sim:MODEL`: an agent and a simulated Pi 4B (`sweeprun_hw::sim`, 30 C room, 3 K stack,
//!   board time 60 times real time) run inside the launcher; the ranks are the board's load
//!   and what the agent pauses (to see the agent at work, or test it, on any machine).
//! - `off`: none.
//!
//! Under `--backend mpi` every rank but rank 0 registers with its own node's agent
//! ([`RankGuard`]); `$SWEEPRUN_AGENT_SOCKET` may name each node's socket with `%h` (the
//! host name) where nodes share /run.
//!
//! Pausing a rank never changes a result: the table is the same with or without.

use crate::error::{Failure, Result};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use sweeprun_agent::simulate::EmbeddedSim;

/// Board time per real second under `--thermal sim:MODEL` (`$SWEEPRUN_THERMAL_SIM_SPEEDUP`
/// overrides it, e.g. for a short sweep to see a board heat up).
const SIM_SPEEDUP: f64 = 60.0;

fn sim_speedup() -> f64 {
    std::env::var("SWEEPRUN_THERMAL_SIM_SPEEDUP")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|s: &f64| s.is_finite() && *s > 0.0)
        .unwrap_or(SIM_SPEEDUP)
}

/// What `--thermal` asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThermalMode {
    /// Register with the node's agent if one listens.
    Auto,
    /// No agent.
    Off,
    /// An embedded agent on a simulated board of this model.
    Sim(String),
}

impl std::str::FromStr for ThermalMode {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<ThermalMode, String> {
        match text {
            "auto" => Ok(ThermalMode::Auto),
            "off" => Ok(ThermalMode::Off),
            _ => match text.strip_prefix("sim:") {
                Some(model) if sweeprun_hw::sim::PRESET_NAMES.contains(&model) => Ok(ThermalMode::Sim(model.into())),
                _ => Err(format!(
                    "expected auto, off or sim:MODEL with MODEL one of {}, got `{text}`",
                    sweeprun_hw::sim::PRESET_NAMES.join(", ")
                )),
            },
        }
    }
}

/// The sweep's thermal companion.
pub enum Thermal {
    /// The node's agent, over its socket.
    Agent(AgentLink),
    /// An embedded agent on a simulated board.
    Sim(EmbeddedSim),
}

/// A connection to the node's agent, and the watcher that resumes the ranks if it breaks.
pub struct AgentLink {
    stream: UnixStream,
    groups: Vec<u32>,
    latest: Arc<Mutex<Value>>,
    finishing: Arc<AtomicBool>,
    watcher: Option<std::thread::JoinHandle<()>>,
}

/// This node's agent socket: `$SWEEPRUN_AGENT_SOCKET` or the agent's default, with `%h`
/// standing for the host name (see [`sweeprun_agent::config::expand_socket`]).
pub fn agent_socket() -> std::path::PathBuf {
    let template = std::env::var_os("SWEEPRUN_AGENT_SOCKET")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| sweeprun_agent::config::DEFAULT_SOCKET.into());
    sweeprun_agent::config::expand_socket(&template)
}

impl AgentLink {
    /// Registers `groups` with this node's agent, if one listens, and watches the link:
    /// if the agent goes away (even `kill -9`) or falls silent for 5 s, the watcher
    /// resumes the groups at once. `who` prefixes the messages (`""` for the launcher).
    fn connect(groups: &[u32], who: &str) -> Result<Option<AgentLink>> {
        let socket = agent_socket();
        let mut stream = match UnixStream::connect(&socket) {
            Ok(stream) => stream,
            // No agent on this node: nothing to do.
            Err(e) if matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused) => {
                return Ok(None)
            }
            Err(e) => {
                say!("sweeprun: {who}not registering with the node agent at {}: {e}", socket.display());
                return Ok(None);
            }
        };
        let registrations: String = groups.iter().map(|g| format!("REGISTER {g}\n")).collect();
        if stream.write_all(registrations.as_bytes()).is_err() {
            return Ok(None);
        }
        let reader = stream.try_clone().map_err(|e| Failure::runtime(format!("agent socket: {e}")))?;
        // The agent reports 10 times a second: 5 s of silence means it hangs.
        let _ = reader.set_read_timeout(Some(std::time::Duration::from_secs(5)));
        let latest = Arc::new(Mutex::new(Value::Null));
        let finishing = Arc::new(AtomicBool::new(false));
        let (shared, done, watched, who) =
            (Arc::clone(&latest), Arc::clone(&finishing), groups.to_vec(), who.to_string());
        let watcher = std::thread::Builder::new()
            .name("agent link".into())
            .spawn(move || {
                for line in BufReader::new(reader).lines() {
                    let Ok(line) = line else { break };
                    if let Some(status) = line.strip_prefix("STATUS ") {
                        if let Ok(mut status) = serde_json::from_str::<Value>(status) {
                            let mut latest = shared.lock().unwrap_or_else(|p| p.into_inner());
                            let hottest = latest["max_temp_c"].as_f64().into_iter().chain(status["temp_c"].as_f64());
                            status["max_temp_c"] = json!(hottest.reduce(f64::max));
                            *latest = status;
                        }
                    }
                }
                if !done.load(Ordering::SeqCst) {
                    // The agent is gone and may have left ranks stopped: run them.
                    resume(&watched);
                    say!("sweeprun: {who}the node agent went away; every rank it may have paused runs again");
                }
            })
            .map_err(|e| Failure::runtime(format!("cannot watch the agent: {e}")))?;
        Ok(Some(AgentLink { stream, latest, finishing, watcher: Some(watcher), groups: groups.to_vec() }))
    }
}

/// SIGCONT to each process group (to a running one it does nothing).
fn resume(groups: &[u32]) {
    for &group in groups {
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(group as i32), nix::sys::signal::Signal::SIGCONT);
    }
}

/// An MPI rank's registration with its own node's agent (`--thermal auto`, the default).
///
/// A paused rank cannot notice that its agent died, so the link is held by a small
/// companion process, `sweeprun __agent-guard`, in a process group of its own (the agent
/// pauses the rank's group, never the guard): it registers the rank, resumes it if the
/// agent goes away, and exits when the rank does (its stdin, a pipe from the rank, closes).
/// Rank 0 is not registered: it also schedules the sweep, and pausing it would idle every
/// node; its node's agent still caps the clock.
pub struct RankGuard {
    child: std::process::Child,
}

impl RankGuard {
    /// Starts the guard when `mode` is `auto` and this node has an agent socket.
    pub fn start(mode: &ThermalMode, rank: usize) -> Option<RankGuard> {
        use std::os::unix::process::CommandExt;
        if *mode != ThermalMode::Auto || !agent_socket().exists() {
            return None;
        }
        let me = nix::unistd::getpid();
        if nix::unistd::getpgrp() != me {
            // The agent pauses process groups. mpirun, mpiexec and srun start each rank as
            // a group of its own already; a launcher that does not gets one made here.
            if let Err(e) = nix::unistd::setpgid(nix::unistd::Pid::from_raw(0), nix::unistd::Pid::from_raw(0)) {
                say!("sweeprun: rank {rank}: not registering with the node agent: cannot lead a process group: {e}");
                return None;
            }
        }
        let exe = std::env::current_exe().ok()?;
        let spawned = std::process::Command::new(exe)
            .args(["__agent-guard", "--group", &me.to_string(), "--rank", &rank.to_string()])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .process_group(0)
            .spawn();
        match spawned {
            Ok(child) => Some(RankGuard { child }),
            Err(e) => {
                say!("sweeprun: rank {rank}: not registering with the node agent: cannot start its guard: {e}");
                None
            }
        }
    }
}

impl Drop for RankGuard {
    fn drop(&mut self) {
        // Closing the pipe lets the guard go; it unregisters and exits.
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// `sweeprun __agent-guard --group PGID --rank N`: registers the rank's group with this
/// node's agent and holds the link until the rank exits (stdin closes). Exit code 0 always:
/// no agent is no error.
pub fn guard_main(group: u32, rank: usize) -> u8 {
    let host = nix::unistd::gethostname().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default();
    let Ok(Some(link)) = AgentLink::connect(&[group], &format!("rank {rank} on {host}: ")) else { return 0 };
    let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
    Thermal::Agent(link).finish();
    0
}

impl Thermal {
    /// Starts what `mode` asks for, for the rank process groups `groups` (none: nothing).
    pub fn start(mode: &ThermalMode, groups: &[u32]) -> Result<Option<Thermal>> {
        if groups.is_empty() {
            return Ok(None);
        }
        match mode {
            ThermalMode::Off => Ok(None),
            ThermalMode::Sim(model) => EmbeddedSim::start(model, 30.0, 3.0, sim_speedup(), groups.to_vec())
                .map(|sim| Some(Thermal::Sim(sim)))
                .map_err(Failure::runtime),
            ThermalMode::Auto => Ok(AgentLink::connect(groups, "")?.map(Thermal::Agent)),
        }
    }

    /// The latest status: temperature, clock cap, duty, paused seconds.
    pub fn status(&self) -> Value {
        match self {
            Thermal::Agent(link) => link.latest.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            Thermal::Sim(sim) => sim.status(),
        }
    }

    /// One line for the progress display, e.g. `61 C, cap 1000 MHz, paused 3.2 s` (a
    /// simulated board's times are board time, and say so).
    pub fn progress_text(&self) -> String {
        let status = self.status();
        let Some(temp) = status["temp_c"].as_f64() else { return String::new() };
        let cap = status["clock_cap_mhz"].as_u64().map_or(String::new(), |mhz| format!(", cap {mhz} MHz"));
        let paused = status["paused_seconds"].as_f64().unwrap_or(0.0)
            - status["first"]["paused_seconds"].as_f64().unwrap_or(0.0);
        let board = if matches!(self, Thermal::Sim(_)) { " of board time (simulated)" } else { "" };
        format!("{temp:.0} C{cap}, paused {paused:.1} s{board}")
    }

    /// Ends the companionship (the agent lets the ranks go and resumes them) and returns
    /// what the sidecar records.
    pub fn finish(self) -> Value {
        let (mode, status) = match self {
            Thermal::Agent(mut link) => {
                link.finishing.store(true, Ordering::SeqCst);
                let _ = link.stream.shutdown(std::net::Shutdown::Both);
                if let Some(watcher) = link.watcher.take() {
                    let _ = watcher.join();
                }
                // The agent resumes what it let go; in case it hangs or died just now, the
                // launcher makes sure (SIGCONT to a running process does nothing).
                resume(&link.groups);
                let mut status = link.latest.lock().unwrap_or_else(|p| p.into_inner()).clone();
                for key in ["paused_seconds", "actuator_changes"] {
                    if let (Some(now), Some(first)) = (status[key].as_f64(), status["first"][key].as_f64()) {
                        status[key] = json!(now - first);
                    }
                }
                ("agent", status)
            }
            Thermal::Sim(sim) => {
                let status = sim.finish().unwrap_or_else(|e| {
                    say!("sweeprun: the simulated board stopped: {e}");
                    Value::Null
                });
                ("sim", status)
            }
        };
        json!({
            "mode": mode,
            // A simulated board's seconds are board time (faster than the sweep's).
            "time": if mode == "sim" { "board" } else { "real" },
            "max_temp_c": status["max_temp_c"],
            "clock_cap_mhz": status["clock_cap_mhz"],
            "paused_seconds": status["paused_seconds"],
            "actuator_changes": status["actuator_changes"],
            "board_seconds": status["board_seconds"],
        })
    }
}
