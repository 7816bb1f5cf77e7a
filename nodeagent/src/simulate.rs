//! `sweeprun-agent simulate`: a scenario on the simulated Pi 4B board
//! ([`sweeprun_hw::sim`]) with real rank processes and the real agent.
//!
//! The board's load is the run state of the worker processes (running or paused by the
//! agent, read from /proc) and the clock cap the agent wrote into the board's tree; the
//! agent reads the tree through the same readers as on a Pi. Simulated time runs faster
//! than real time (`speedup`), in lockstep: every 50 ms of board time the agent ticks,
//! the board steps, the tree is rewritten.

use crate::agent::Agent;
use crate::board_io::BoardIo;
use crate::config::AgentConfig;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use sweeprun_hw::sim::{self, Board, Model, Tree};

/// Board time per lockstep, s.
const STEP_S: f64 = 0.05;
/// The board's files are rewritten every this many steps (0.25 s of board time).
const TREE_EVERY_STEPS: u64 = 5;
/// The sensor's swing is measured after this much board time (about 3 time constants).
const SETTLED_AFTER_S: f64 = 900.0;

/// What to simulate.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// A preset of [`sweeprun_hw::sim::Model`].
    pub model: String,
    /// Room temperature, C.
    pub room_c: f64,
    /// The board's offset above the room in its stack, K.
    pub stack_k: f64,
    /// Board time to simulate, s.
    pub duration_s: f64,
    /// The case fan fails at this board time, s.
    pub fail_fan_at_s: Option<f64>,
    /// Every sensor disappears at this board time for this long, s.
    pub lose_sensors: Option<(f64, f64)>,
    /// No agent: the firmware alone (the baseline).
    pub firmware_only: bool,
    /// Board seconds per real second.
    pub speedup: f64,
    /// Write the time series (1 s of board time per row) here.
    pub trace: Option<PathBuf>,
    /// Draw it (SVG) here.
    pub plot: Option<PathBuf>,
    /// The agent's configuration (its `sys_root` is replaced by the board's tree).
    pub agent: AgentConfig,
}

/// Worker processes: real sweep work (`sweeprun-agent __work`), each in its own process
/// group, killed when dropped.
struct Workers(Vec<Child>);

impl Workers {
    fn start(exe: &Path, count: u32) -> Result<Workers, String> {
        use std::os::unix::process::CommandExt;
        let mut children = Vec::new();
        for _ in 0..count {
            let child = Command::new(exe)
                .args(["__work", "--parent", &std::process::id().to_string()])
                .process_group(0)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .spawn()
                .map_err(|e| format!("cannot start a worker ({}): {e}", exe.display()))?;
            children.push(child);
        }
        Ok(Workers(children))
    }

    fn pids(&self) -> Vec<u32> {
        self.0.iter().map(Child::id).collect()
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for child in &mut self.0 {
            // A stopped process must be continued to die of SIGKILL promptly in all kernels.
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGCONT,
            );
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs `scenario` with workers started from `exe`; returns the result object and the
/// agent's log lines (prefixed with the board time).
pub fn run(scenario: &Scenario, exe: &Path) -> Result<(Value, Vec<String>), String> {
    let model = Model::from_name(&scenario.model).map_err(|e| e.to_string())?;
    let cores = model.cores;
    let mut board = Board::new(model.clone(), scenario.room_c, scenario.stack_k);
    let root = std::env::temp_dir().join(format!("sweeprun-sim-{}-{}", std::process::id(), unique()));
    let _cleanup = RemoveOnDrop(root.clone());
    let tree =
        Tree::create(&root, &board).map_err(|e| format!("cannot write the board's tree in {}: {e}", root.display()))?;
    let workers = Workers::start(exe, cores)?;
    let pids = workers.pids();
    let mut config = scenario.agent.clone();
    config.sys_root = root.clone();
    config.model.cores = cores;
    let mut io = BoardIo::new(&root, cores);
    for &pid in &pids {
        if !io.register(pid) {
            return Err(format!("worker {pid} does not lead its process group"));
        }
    }
    let mut agent = (!scenario.firmware_only).then(|| Agent::new(&config));
    let mut log = Vec::new();
    let mut trace = String::from("time_s,sensor_c,true_c,clock_mhz,cap_mhz,duty,busy_cores,fan_on\n");
    let (mut peak, mut above_s, mut work) = (f64::MIN, 0.0, 0.0);
    let (mut settled_min, mut settled_max) = (f64::MAX, f64::MIN);
    let mut fan_detected_s = None;
    let mut fan_flagged_at_s = None;
    let mut points = Vec::new();
    let started = Instant::now();
    let steps = (scenario.duration_s / STEP_S).round() as u64;
    for step in 0..steps {
        let t = step as f64 * STEP_S;
        if scenario.fail_fan_at_s.is_some_and(|at| t >= at && !board.fan_failed()) {
            board.fail_fan();
        }
        if let Some((at, length)) = scenario.lose_sensors {
            board.set_sensors_lost(t >= at && t < at + length);
        }
        if let Some(agent) = agent.as_mut() {
            for line in agent.tick(t, &mut io) {
                log.push(format!("[{}] {line}", clock(t)));
            }
            if fan_flagged_at_s.is_none() && agent.fan_failed() {
                fan_flagged_at_s = Some(t);
                fan_detected_s = scenario.fail_fan_at_s.map(|at| t - at);
            }
        }
        let busy = f64::from(sim::managed_busy_cores(Path::new("/proc"), &pids, cores));
        let cap = tree.read_cap_mhz().unwrap_or(sim::MAX_MHZ);
        board.step(STEP_S, busy, cap);
        // The files change for readers twice per agent sample period (not every step:
        // rewriting a dozen files every 50 ms would bound the speed-up).
        if (step + 1).is_multiple_of(TREE_EVERY_STEPS) {
            tree.update(&board).map_err(|e| format!("cannot update the board's tree: {e}"))?;
        }
        let sensor = board.sensor_c();
        peak = peak.max(sensor);
        if sensor > sim::SAFE_SENSOR_C {
            above_s += STEP_S;
        }
        if t >= SETTLED_AFTER_S {
            settled_min = settled_min.min(sensor);
            settled_max = settled_max.max(sensor);
        }
        work += busy * f64::from(board.clock_mhz()) / f64::from(sim::MAX_MHZ) * STEP_S;
        if step % 20 == 0 && (scenario.trace.is_some() || scenario.plot.is_some()) {
            let duty = agent.as_ref().map_or(1.0, |a| a.setting().duty);
            points.push(crate::plot::Point { t_s: t, sensor_c: sensor, clock_mhz: f64::from(board.clock_mhz()), duty });
            trace.push_str(&format!(
                "{t:.0},{sensor:.0},{:.3},{},{cap},{duty},{busy},{}\n",
                board.true_temp_c(),
                board.clock_mhz(),
                u8::from(board.fan_commanded_on() && !board.fan_failed())
            ));
        }
        // Lockstep with real time, so the workers' pauses and runs line up with board time.
        let due = Duration::from_secs_f64((t + STEP_S) / scenario.speedup);
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
    }
    if let Some(agent) = agent.as_mut() {
        agent.release(&mut io);
    }
    drop(workers);
    if let Some(path) = &scenario.trace {
        std::fs::write(path, trace).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if let Some(path) = &scenario.plot {
        let who = if scenario.firmware_only { "firmware only" } else { "agent" };
        let title = format!("{}, {:.0} C ambient, {who}", scenario.model, board.ambient_c());
        crate::plot::draw(path, &title, &points)?;
    }
    let totals = board.totals();
    let unthrottled = f64::from(cores) * scenario.duration_s;
    let optimum = sim::optimum(&model, board.ambient_c());
    let result = json!({
        "model": scenario.model,
        "ambient_c": board.ambient_c(),
        "duration_s": scenario.duration_s,
        "agent": !scenario.firmware_only,
        "peak_temp_c": peak,
        "time_above_75_s": above_s,
        "throughput_ratio": work / unthrottled,
        "firmware_throttle_s": totals.firmware_throttled_s,
        "actuator_changes": agent.as_ref().map_or(0, Agent::actuator_changes),
        "fan_failure_detected_s": fan_detected_s,
        // When the agent said the fan failed (also a false alarm, with no failure planned).
        "fan_failure_flagged_at_s": fan_flagged_at_s,
        "max_swing_after_settle_c": (settled_max >= settled_min).then_some(settled_max - settled_min),
        "paused_s": agent.as_ref().map_or(0.0, Agent::paused_s),
        "model_optimum_ratio": optimum.fraction,
        "model_optimum": optimum.to_string(),
        "real_seconds": started.elapsed().as_secs_f64(),
    });
    Ok((result, log))
}

fn clock(t: f64) -> String {
    let t = t as u64;
    format!("{}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60)
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A simulated board with its agent, running beside a real sweep (`sweeprun run
/// --thermal sim:MODEL`): the sweep's rank process groups are the board's load and what the
/// agent pauses. Board time runs `speedup` times faster than real time, so a sweep of a few
/// seconds sees minutes of heating.
pub struct EmbeddedSim {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    status: std::sync::Arc<std::sync::Mutex<Value>>,
    thread: Option<std::thread::JoinHandle<Result<Value, String>>>,
}

impl EmbeddedSim {
    /// Starts the board (`model` at `room_c` + `stack_k`) and its agent for `groups`.
    pub fn start(
        model: &str,
        room_c: f64,
        stack_k: f64,
        speedup: f64,
        groups: Vec<u32>,
    ) -> Result<EmbeddedSim, String> {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::{Arc, Mutex};
        let model = Model::from_name(model).map_err(|e| e.to_string())?;
        let stop = Arc::new(AtomicBool::new(false));
        let status = Arc::new(Mutex::new(Value::Null));
        let (stop_flag, shared) = (Arc::clone(&stop), Arc::clone(&status));
        let thread = std::thread::Builder::new()
            .name("thermal sim".into())
            .spawn(move || -> Result<Value, String> {
                let cores = model.cores;
                let mut board = Board::new(model, room_c, stack_k);
                let root = std::env::temp_dir().join(format!("sweeprun-sim-{}-{}", std::process::id(), unique()));
                let _cleanup = RemoveOnDrop(root.clone());
                let tree = Tree::create(&root, &board).map_err(|e| format!("{}: {e}", root.display()))?;
                let mut config =
                    AgentConfig { sys_root: root.clone(), listen: None, socket: None, ..Default::default() };
                config.model.cores = cores;
                let mut io = BoardIo::new(&root, cores);
                for &group in &groups {
                    io.register(group);
                }
                let mut agent = Agent::new(&config);
                let (mut peak, started) = (f64::MIN, Instant::now());
                let mut step = 0u64;
                while !stop_flag.load(Ordering::SeqCst) {
                    let t = step as f64 * STEP_S;
                    agent.tick(t, &mut io);
                    let busy = f64::from(sim::managed_busy_cores(Path::new("/proc"), &groups, cores));
                    board.step(STEP_S, busy, tree.read_cap_mhz().unwrap_or(sim::MAX_MHZ));
                    if (step + 1).is_multiple_of(TREE_EVERY_STEPS) {
                        tree.update(&board).map_err(|e| format!("cannot update the board's tree: {e}"))?;
                        peak = peak.max(board.sensor_c());
                        let mut status = agent.status();
                        status["board_seconds"] = json!(t);
                        status["max_temp_c"] = json!(peak);
                        *shared.lock().unwrap_or_else(|p| p.into_inner()) = status;
                    }
                    step += 1;
                    let due = Duration::from_secs_f64(step as f64 * STEP_S / speedup);
                    if let Some(wait) = due.checked_sub(started.elapsed()) {
                        std::thread::sleep(wait);
                    }
                }
                agent.release(&mut io);
                let mut status = agent.status();
                status["board_seconds"] = json!(step as f64 * STEP_S);
                status["max_temp_c"] = json!(peak.max(board.sensor_c()));
                status["firmware_throttle_s"] = json!(board.totals().firmware_throttled_s);
                Ok(status)
            })
            .map_err(|e| format!("cannot start the simulated board: {e}"))?;
        Ok(EmbeddedSim { stop, status, thread: Some(thread) })
    }

    /// The agent's latest status (with `board_seconds` and `max_temp_c`), `null` at first.
    pub fn status(&self) -> Value {
        self.status.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Stops the board and the agent (every group resumed) and returns the final status.
    pub fn finish(mut self) -> Result<Value, String> {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        match self.thread.take().map(std::thread::JoinHandle::join) {
            Some(Ok(result)) => result,
            _ => Err("the simulated board's thread failed".into()),
        }
    }
}

impl Drop for EmbeddedSim {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
