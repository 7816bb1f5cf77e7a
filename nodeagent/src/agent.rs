//! The agent's loop, apart from where its readings come from and where its actions go:
//! [`Sensors`] and [`Actuators`] are the real board's files (or a simulated board's), the
//! clock is the caller's (real time, or a simulation's accelerated time). Each
//! [`Agent::tick`] samples when a sample is due, runs the policy, applies its actions, and
//! turns the duty cycle into pause/run switches of the registered rank process groups.

use crate::config::AgentConfig;
use crate::policy::{Action, Policy, Sample, Setting};
use serde_json::{json, Value};

/// What the sensors say at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Reading {
    /// The SoC temperature, C (`None`: no sensor answered).
    pub temp_c: Option<f64>,
    /// Whether the fan is commanded on, if the board has one.
    pub fan_on: Option<bool>,
    /// The clock the board runs at, MHz, if known.
    pub clock_mhz: Option<f64>,
    /// Cores' worth of registered rank processes (how busy the board is when running).
    pub demand: f64,
    /// The firmware's `get_throttled` flags, where the mailbox answers.
    pub firmware_throttled: Option<u32>,
}

/// Where readings come from.
pub trait Sensors {
    /// Reads every sensor now.
    fn read(&mut self) -> Reading;
}

/// Where actions go. Each must be undoable: [`Actuators::undo`] puts the board back as
/// the agent found it (no cap, every rank running, the fan as it was).
pub trait Actuators {
    /// Caps the clock at `mhz` (`None`: no cap).
    fn clock_cap(&mut self, mhz: Option<u32>) -> Result<(), String>;
    /// Lets the registered ranks run, or pauses them.
    fn run(&mut self, running: bool) -> Result<(), String>;
    /// Switches the fan.
    fn fan(&mut self, on: bool) -> Result<(), String>;
    /// Undoes everything.
    fn undo(&mut self);
}

/// Pause/run timing of a duty cycle: within each period, run first for `duty` of it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DutyCycle {
    /// One pause/run cycle, s.
    pub period_s: f64,
    /// Fraction of the period spent running.
    pub duty: f64,
}

impl DutyCycle {
    /// Whether the ranks run at time `t_s`.
    pub fn running_at(&self, t_s: f64) -> bool {
        if self.duty >= 1.0 {
            return true;
        }
        if self.duty <= 0.0 {
            return false;
        }
        (t_s.rem_euclid(self.period_s) / self.period_s) < self.duty
    }
}

/// The agent's state between ticks, and what it reports.
pub struct Agent {
    policy: Policy,
    sample_every_s: f64,
    next_sample_s: f64,
    duty: DutyCycle,
    running: bool,
    last_tick_s: Option<f64>,
    last: Reading,
    /// Seconds the ranks spent paused.
    paused_s: f64,
    /// Actuator changes applied (clock cap, duty, fan).
    actuator_changes: u64,
    samples: u64,
    errors: u64,
    firmware_throttling: bool,
    firmware_throttle_events: u64,
}

impl Agent {
    /// An agent with `config`'s policy and timing.
    pub fn new(config: &AgentConfig) -> Agent {
        Agent {
            policy: Policy::new(config.control.clone(), config.model.clone()),
            sample_every_s: 1.0 / config.sample_hz,
            next_sample_s: f64::NEG_INFINITY,
            duty: DutyCycle { period_s: config.duty_period_s, duty: 1.0 },
            running: true,
            last_tick_s: None,
            last: Reading::default(),
            paused_s: 0.0,
            actuator_changes: 0,
            samples: 0,
            errors: 0,
            firmware_throttling: false,
            firmware_throttle_events: 0,
        }
    }

    /// One tick at time `t_s` (call it often: at least 10 times per duty period). Returns
    /// the log lines of what changed.
    pub fn tick<B: Sensors + Actuators + ?Sized>(&mut self, t_s: f64, board: &mut B) -> Vec<String> {
        let mut log = Vec::new();
        if let Some(last) = self.last_tick_s {
            if !self.running {
                self.paused_s += (t_s - last).max(0.0);
            }
        }
        self.last_tick_s = Some(t_s);
        if t_s >= self.next_sample_s {
            self.next_sample_s = t_s + self.sample_every_s;
            let reading = board.read();
            self.last = reading;
            self.samples += 1;
            let sample = Sample { t_s, temp_c: reading.temp_c, fan_on: reading.fan_on, demand: reading.demand };
            // Bits 0x2 (capped) or 0x4 (throttled) now: the firmware, not the agent, holds the
            // clock: the limit or the model is off. Said once per episode.
            let firmware_throttling = reading.firmware_throttled.is_some_and(|bits| bits & 0x6 != 0);
            if firmware_throttling && !self.firmware_throttling {
                self.firmware_throttle_events += 1;
                log.push(format!(
                    "the firmware throttles (get_throttled {:#x})",
                    reading.firmware_throttled.unwrap_or(0)
                ));
            }
            self.firmware_throttling = firmware_throttling;
            for action in self.policy.step(sample) {
                let temp = reading.temp_c.map_or("?".to_string(), |t| format!("{t:.1} C"));
                let applied = match &action {
                    Action::ClockCap(mhz) => {
                        log.push(format!(
                            "at {temp}: clock cap {}",
                            mhz.map_or("removed".to_string(), |m| format!("{m} MHz"))
                        ));
                        board.clock_cap(*mhz)
                    }
                    Action::Duty(duty) => {
                        log.push(format!("at {temp}: ranks run {:.0} % of the time", duty * 100.0));
                        self.duty.duty = *duty;
                        Ok(())
                    }
                    Action::Fan(on) => {
                        log.push(format!("at {temp}: fan {}", if *on { "on" } else { "off" }));
                        board.fan(*on)
                    }
                    Action::Alert(message) => {
                        log.push(format!("at {temp}: {message}"));
                        continue;
                    }
                };
                self.actuator_changes += 1;
                if let Err(e) = applied {
                    self.errors += 1;
                    log.push(format!("could not apply {action:?}: {e}"));
                }
            }
        }
        let run = self.duty.running_at(t_s);
        if run != self.running {
            // What could be paused is paused (and resumed on the next switch) even when a
            // group refused: the state follows the switch, never the failure.
            self.running = run;
            if let Err(e) = board.run(run) {
                self.errors += 1;
                log.push(format!("could not {} every rank: {e}", if run { "resume" } else { "pause" }));
            }
        }
        log
    }

    /// The setting in force.
    pub fn setting(&self) -> Setting {
        self.policy.setting()
    }

    /// Actuator changes applied so far.
    pub fn actuator_changes(&self) -> u64 {
        self.actuator_changes
    }

    /// Whether the policy found the fan failed.
    pub fn fan_failed(&self) -> bool {
        self.policy.fan_failed()
    }

    /// Seconds the ranks spent paused.
    pub fn paused_s(&self) -> f64 {
        self.paused_s
    }

    /// The status as JSON (the endpoint's `/status`).
    pub fn status(&self) -> Value {
        let setting = self.policy.setting();
        let thermal = self.policy.thermal();
        json!({
            "temp_c": self.last.temp_c,
            "fan_on": self.last.fan_on,
            "clock_mhz": self.last.clock_mhz,
            "clock_cap_mhz": (setting.level > 0).then(|| self.policy.level_mhz(setting.level)),
            "duty": setting.duty,
            "running": self.running,
            "paused_seconds": self.paused_s,
            "actuator_changes": self.actuator_changes,
            "fan_failed": self.policy.fan_failed(),
            "samples": self.samples,
            "firmware_throttled": self.last.firmware_throttled,
            "firmware_throttle_events": self.firmware_throttle_events,
            "errors": self.errors,
            "model": { "r_k_per_w": thermal.r, "c_j_per_k": thermal.c, "ambient_c": thermal.ambient },
        })
    }

    /// The status in the Prometheus text format (the endpoint's `/metrics`).
    pub fn metrics(&self) -> String {
        let status = self.status();
        let mut out = String::new();
        let mut gauge = |name: &str, help: &str, value: Option<f64>| {
            out.push_str(&format!("# HELP sweeprun_agent_{name} {help}\n# TYPE sweeprun_agent_{name} gauge\n"));
            if let Some(value) = value {
                out.push_str(&format!("sweeprun_agent_{name} {value}\n"));
            }
        };
        let number = |key: &str| status[key].as_f64();
        gauge("temperature_celsius", "SoC temperature at the last sample.", number("temp_c"));
        gauge("clock_cap_mhz", "Clock cap the agent imposes (absent: none).", number("clock_cap_mhz"));
        gauge("duty_ratio", "Fraction of time the ranks may run.", number("duty"));
        gauge("paused_seconds", "Time the ranks spent paused.", number("paused_seconds"));
        gauge("actuator_changes", "Actuator changes applied.", number("actuator_changes"));
        gauge("fan_failed", "1 when the fan was found failed.", Some(f64::from(u8::from(self.policy.fan_failed()))));
        gauge("model_r_kelvin_per_watt", "Learned thermal resistance.", status["model"]["r_k_per_w"].as_f64());
        out
    }

    /// Puts the board back as found (at exit).
    pub fn release<A: Actuators + ?Sized>(&mut self, actuators: &mut A) {
        actuators.undo();
        self.running = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_duty_cycle_runs_first_for_its_share_of_each_period() {
        let half = DutyCycle { period_s: 2.0, duty: 0.5 };
        assert!(half.running_at(0.0) && half.running_at(0.99) && !half.running_at(1.0) && !half.running_at(1.99));
        assert!(half.running_at(2.0));
        assert!(DutyCycle { period_s: 2.0, duty: 1.0 }.running_at(1.5));
        assert!(!DutyCycle { period_s: 2.0, duty: 0.0 }.running_at(0.0));
    }

    /// Readings from a script; actions recorded.
    struct Scripted(Vec<Reading>, usize, Vec<String>);
    impl Sensors for Scripted {
        fn read(&mut self) -> Reading {
            let reading = self.0[self.1.min(self.0.len() - 1)];
            self.1 += 1;
            reading
        }
    }

    impl Actuators for Scripted {
        fn clock_cap(&mut self, mhz: Option<u32>) -> Result<(), String> {
            self.2.push(format!("cap {mhz:?}"));
            Ok(())
        }
        fn run(&mut self, running: bool) -> Result<(), String> {
            self.2.push(format!("run {running}"));
            Ok(())
        }
        fn fan(&mut self, on: bool) -> Result<(), String> {
            self.2.push(format!("fan {on}"));
            Ok(())
        }
        fn undo(&mut self) {
            self.2.push("undo".into());
        }
    }

    #[test]
    fn lost_sensors_pause_the_ranks_and_their_return_resumes_them() {
        let ok = Reading { temp_c: Some(50.0), demand: 4.0, ..Reading::default() };
        let lost = Reading { temp_c: None, ..ok };
        let mut board = Scripted(vec![ok, lost, lost, lost, lost, lost, ok], 0, Vec::new());
        let mut agent = Agent::new(&AgentConfig::default());
        let mut t = 0.0;
        let mut log = Vec::new();
        while t < 4.0 {
            log.extend(agent.tick(t, &mut board));
            t += 0.1;
        }
        assert_eq!(board.2, vec!["run false", "run true"], "{log:?}");
        assert!(log.iter().any(|l| l.contains("freezing")), "{log:?}");
        assert!(agent.paused_s() > 0.5 && agent.paused_s() < 1.5, "{}", agent.paused_s());
        let status = agent.status();
        assert_eq!(status["running"], true);
        assert!(agent.metrics().contains("sweeprun_agent_paused_seconds "));
        agent.release(&mut board);
        assert_eq!(board.2.last().unwrap(), "undo");
    }
}
