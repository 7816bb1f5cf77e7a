//! The control policy, pure: `Policy::step(sample) -> actions`. No clock, no files, no
//! signals: the caller reads the sensors into a [`Sample`] and applies the [`Action`]s
//! through the mechanisms in `sweeprun_hw` (or a simulation), so every decision is
//! unit-testable.
//!
//! **How it decides.** The settings the agent can impose are ordered by throughput: every
//! clock level at full duty (1500, 1000, 750 MHz on a Pi 4B), then the most efficient level
//! duty-cycled (750 MHz at 90 %, 80 %, ... 10 %: per watt, 750 MHz does more work than
//! 600), then frozen. Each sample the model ([`crate::model`]) predicts the sensor's peak
//! over a horizon for each setting from the estimated board state, and the policy picks
//! the best setting whose peak stays at or below the limit minus a margin. Near the limit
//! this alternates between two neighbouring settings (e.g. 1000 and 750 MHz), which is the
//! model's steady-state optimum (a mix of two adjacent levels). A setting is held for at
//! least the dwell time unless the prediction says the limit would be crossed before the
//! dwell ends (safety first). Order of actuators: clock cap first, then duty cycling of the
//! rank process groups, then the fan (when the agent owns it).
//!
//! **Fail-safe.** No temperature for [`Config::lost_after_s`]: freeze the work; resume
//! when the sensor returns. **Fan failure:** the fan is commanded on but the board runs
//! [`Config::fan_failure_k`] hotter than the model learned while the fan worked predicts,
//! for [`Config::fan_failure_for_s`]: flagged once.

use crate::model::{advance, Learner, ModelConfig, Predictor, Thermal};

/// How fast the estimator's innovation turns into drift: K/s of drift per K of innovation,
/// per second.
const DRIFT_GAIN_PER_S: f64 = 0.004;

/// What the agent aims for (`[control]` in agent.toml).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The sensor must stay at or below this, C.
    pub limit_c: f64,
    /// The sensor's resolution, K: it reads whole degrees, rounded, so a reading at the
    /// limit allows the temperature up to half a step above it.
    pub sensor_step_k: f64,
    /// Kept below that for model error, K.
    pub margin_k: f64,
    /// More margin at the start, fading over the first minutes (the board not yet learned), K.
    pub start_margin_k: f64,
    /// How far ahead a setting must stay safe, s.
    pub horizon_s: f64,
    /// A setting is held at least this long (unless safety needs a change), s.
    pub dwell_s: f64,
    /// A hotter setting than the current one must be safe by this much more, K.
    pub up_margin_k: f64,
    /// Duty-cycle steps (fractions of time running) below full duty.
    pub duty_steps: Vec<f64>,
    /// No temperature for this long freezes the work, s.
    pub lost_after_s: f64,
    /// The fan counts as failed when the sensor runs this far above the fan-on model, K.
    pub fan_failure_k: f64,
    /// ... for this long, s.
    pub fan_failure_for_s: f64,
    /// Whether the agent drives the fan itself.
    pub owns_fan: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            limit_c: 75.0,
            sensor_step_k: 1.0,
            margin_k: 0.5,
            start_margin_k: 2.0,
            horizon_s: 12.0,
            dwell_s: 5.0,
            up_margin_k: 0.5,
            duty_steps: vec![0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1],
            lost_after_s: 2.0,
            fan_failure_k: 3.0,
            fan_failure_for_s: 20.0,
            owns_fan: false,
        }
    }
}

/// One reading of the board.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Seconds on the agent's clock (monotonic).
    pub t_s: f64,
    /// The SoC temperature, C; `None` when no sensor answered.
    pub temp_c: Option<f64>,
    /// Whether the fan is commanded on (gpio-fan `cur_state`), if there is one.
    pub fan_on: Option<bool>,
    /// Ranks' worth of cores with work (0..=cores): how busy the board would be unthrottled.
    pub demand: f64,
}

/// A setting the agent imposes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Setting {
    /// Index into the clock levels (0 = top: no cap).
    pub level: usize,
    /// Fraction of time the ranks run (1 = never paused, 0 = frozen).
    pub duty: f64,
}

impl Setting {
    /// Full speed: no cap, never paused.
    pub const FULL: Setting = Setting { level: 0, duty: 1.0 };
}

/// What the caller must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Cap the clock at this many MHz (`None`: remove the cap).
    ClockCap(Option<u32>),
    /// Run the ranks this fraction of the time (1: resume and stop pausing; 0: freeze).
    Duty(f64),
    /// Switch the fan on or off (only when the agent owns it).
    Fan(bool),
    /// Say something worth a log line (fan failure, sensors lost or back).
    Alert(String),
}

/// The policy's memory.
#[derive(Debug, Clone)]
pub struct Policy {
    config: Config,
    model: ModelConfig,
    prior: Thermal,
    learner: Learner,
    setting: Setting,
    since_s: f64,
    last_t_s: Option<f64>,
    /// Estimated slow temperature and fast-pole offset.
    slow_c: Option<f64>,
    fast_k: f64,
    /// Heating the model misses, K/s (integrated from the estimator's innovations).
    drift_k_per_s: f64,
    first_t_s: Option<f64>,
    /// The fan-failure detector's reference model and its prediction of the slow temperature.
    fan_reference: Option<Thermal>,
    fan_on_slow_c: Option<f64>,
    hot_since_s: Option<f64>,
    fan_failed: bool,
    last_temp_s: Option<f64>,
    frozen_for_loss: bool,
    fan_commanded: bool,
    /// For learning: the window's start (time, slow estimate) and power-time integral.
    window: Option<(f64, f64, f64)>,
    changes: u64,
}

impl Policy {
    /// A policy for a board described by `model`, aiming at `config`.
    pub fn new(config: Config, model: ModelConfig) -> Policy {
        let prior = Thermal { r: model.r_k_per_w, c: model.c_j_per_k, ambient: model.ambient_c };
        Policy {
            config,
            learner: Learner::new(prior),
            prior,
            model,
            setting: Setting::FULL,
            since_s: f64::NEG_INFINITY,
            last_t_s: None,
            slow_c: None,
            fast_k: 0.0,
            drift_k_per_s: 0.0,
            first_t_s: None,
            fan_reference: None,
            fan_on_slow_c: None,
            hot_since_s: None,
            fan_failed: false,
            last_temp_s: None,
            frozen_for_loss: false,
            fan_commanded: false,
            window: None,
            changes: 0,
        }
    }

    /// The setting in force.
    pub fn setting(&self) -> Setting {
        self.setting
    }

    /// The thermal parameters the policy uses now (learned, or the prior).
    pub fn thermal(&self) -> Thermal {
        self.learner.thermal(self.prior)
    }

    /// `thermal` with the observed drift folded in: an extra heating rate `d` acts like an
    /// ambient `R C d` warmer.
    fn corrected(&self, thermal: Thermal) -> Thermal {
        Thermal { ambient: thermal.ambient + thermal.r * thermal.c * self.drift_k_per_s, ..thermal }
    }

    /// Whether the fan was found failed.
    pub fn fan_failed(&self) -> bool {
        self.fan_failed
    }

    /// Setting changes so far.
    pub fn changes(&self) -> u64 {
        self.changes
    }

    /// The clock level's frequency, MHz.
    pub fn level_mhz(&self, level: usize) -> u32 {
        self.model.levels_mhz[level]
    }

    /// Every setting, best throughput first.
    fn candidates(&self) -> Vec<Setting> {
        let levels = self.model.levels_mhz.len();
        // Duty cycling runs at the level with the most work per watt.
        let efficient = (0..levels)
            .max_by(|&a, &b| {
                let per_watt = |l: usize| self.model.work_rate(l, 1.0) / self.model.level_power[l];
                per_watt(a).total_cmp(&per_watt(b))
            })
            .unwrap_or(0);
        let mut settings: Vec<Setting> = (0..=efficient).map(|level| Setting { level, duty: 1.0 }).collect();
        settings.extend(self.config.duty_steps.iter().map(|&duty| Setting { level: efficient, duty }));
        settings.push(Setting { level: efficient, duty: 0.0 });
        settings
    }

    fn power(&self, setting: Setting, demand: f64) -> f64 {
        self.model.power_w(setting.level, demand * setting.duty)
    }

    /// Takes one sample and says what to change.
    pub fn step(&mut self, sample: Sample) -> Vec<Action> {
        let mut actions = Vec::new();
        let dt = self.last_t_s.map_or(0.0, |last| (sample.t_s - last).max(0.0));
        self.last_t_s = Some(sample.t_s);
        let demand = sample.demand.clamp(0.0, f64::from(self.model.cores));
        // Frozen for lost sensors: the board idles whatever the setting says.
        let power = if self.frozen_for_loss { self.model.idle_w } else { self.power(self.setting, demand) };
        let thermal = self.thermal();
        // The fast pole follows the power the board drew since the last sample.
        if dt > 0.0 {
            let (_, fast) = advance(&self.model, thermal, 0.0, self.fast_k, power, dt);
            self.fast_k = fast;
        }
        let Some(temp) = sample.temp_c else {
            let lost_for = self.last_temp_s.map_or(f64::INFINITY, |t| sample.t_s - t);
            if lost_for >= self.config.lost_after_s && !self.frozen_for_loss {
                self.frozen_for_loss = true;
                // What was learned over the gap would be wrong: start over when they return.
                self.window = None;
                actions.push(Action::Alert(format!("no temperature for {lost_for:.1} s: freezing the work")));
                actions.push(Action::Duty(0.0));
            }
            return actions;
        };
        self.last_temp_s = Some(sample.t_s);
        if self.frozen_for_loss {
            self.frozen_for_loss = false;
            // Take the board as measured, without charging the gap to the drift term.
            self.slow_c = None;
            self.window = None;
            actions.push(Action::Alert("temperature readable again: resuming".into()));
            // The setting in force is re-applied below (its duty).
            actions.push(Action::Duty(self.setting.duty));
        }
        self.estimate(temp, power, dt, thermal);
        self.watch_fan(sample, power, dt, &mut actions);
        let slow = self.slow_c.unwrap_or(temp);
        let predictor = Predictor { slow_c: slow, fast_k: self.fast_k };
        let thermal = self.corrected(self.thermal());
        // Until the estimator has seen the board for a while (its drift unknown), keep a
        // wider margin: it fades over the first minutes.
        let seen_s = sample.t_s - *self.first_t_s.get_or_insert(sample.t_s);
        let caution = self.config.start_margin_k * (-seen_s / 120.0).exp();
        let target = self.config.limit_c + self.config.sensor_step_k / 2.0 - self.config.margin_k - caution;
        let safe = |setting: Setting, horizon: f64| {
            predictor.peak(&self.model, thermal, self.power(setting, demand), horizon, 0.5) <= target
        };
        let throughput = |s: Setting| self.model.work_rate(s.level, s.duty);
        let current = self.setting;
        // Hysteresis: a setting hotter than the current one must be safe by a wider margin,
        // so that the next reading (1 C steps) does not take it back.
        let admissible = |s: Setting| {
            let limit = if throughput(s) > throughput(current) { target - self.config.up_margin_k } else { target };
            predictor.peak(&self.model, thermal, self.power(s, demand), self.config.horizon_s, 0.5) <= limit
        };
        let candidates = self.candidates();
        let best = candidates
            .iter()
            .copied()
            .find(|&s| admissible(s))
            .unwrap_or(*candidates.last().expect("at least the frozen setting"));
        let held_for = sample.t_s - self.since_s;
        let change = if best == self.setting {
            false
        } else if held_for >= self.config.dwell_s {
            true
        } else {
            // Within the dwell: only a change made for safety (the current setting would
            // cross the limit before the dwell is over).
            throughput(best) < throughput(self.setting) && !safe(self.setting, self.config.dwell_s - held_for + 1.0)
        };
        if change {
            let before = self.setting;
            self.setting = best;
            self.since_s = sample.t_s;
            self.changes += 1;
            if best.level != before.level {
                actions.push(Action::ClockCap((best.level > 0).then(|| self.model.levels_mhz[best.level])));
            }
            if best.duty != before.duty {
                actions.push(Action::Duty(best.duty));
            }
        }
        if self.config.owns_fan {
            // The fan is the third actuator: on while duty cycling is needed, off once
            // the clock alone is enough again.
            let want = self.setting.duty < 1.0 || (self.fan_commanded && self.setting.level > 0);
            if want != self.fan_commanded {
                self.fan_commanded = want;
                actions.push(Action::Fan(want));
            }
        }
        actions
    }

    /// Updates the board state estimate from a reading, and the learner.
    fn estimate(&mut self, temp: f64, power: f64, dt: f64, thermal: Thermal) {
        let measured_slow = temp - self.fast_k;
        let slow = match self.slow_c {
            None => measured_slow,
            Some(slow) => {
                let (predicted, _) = advance(&self.model, self.corrected(thermal), slow, 0.0, power, dt);
                let innovation = measured_slow - predicted;
                // What the model misses steadily (a wrong ambient, a learner not there yet)
                // shows as a drift: integrate it as an extra heating rate, K/s.
                self.drift_k_per_s = (self.drift_k_per_s + DRIFT_GAIN_PER_S * innovation * dt).clamp(-0.5, 0.5);
                // The sensor has 1 C steps: trust the model, correct slowly.
                predicted + 0.15 * innovation
            }
        };
        self.slow_c = Some(slow);
        // Learning over windows of >= 20 s (a slope over 1 C steps needs time).
        match self.window {
            None => self.window = Some((0.0, slow, 0.0)),
            Some((elapsed, start, energy)) => {
                let (elapsed, energy) = (elapsed + dt, energy + power * dt);
                if elapsed >= 20.0 {
                    self.learner.observe(energy / elapsed, (start + slow) / 2.0, (slow - start) / elapsed);
                    self.window = Some((0.0, slow, 0.0));
                } else {
                    self.window = Some((elapsed, start, energy));
                }
            }
        }
    }

    /// Flags a fan commanded on while the board heats as if it were off: a reference
    /// model, the learned one as it was while the fan did its work, predicts the board
    /// from the power it draws; running hotter than that for long means the fan is not
    /// cooling. (Before the learner has seen enough, there is no reference to trust.)
    fn watch_fan(&mut self, sample: Sample, power: f64, dt: f64, actions: &mut Vec<Action>) {
        let slow = self.slow_c.unwrap_or(0.0);
        if sample.fan_on != Some(true) || self.fan_failed || !self.learner.is_ready() {
            self.fan_on_slow_c = None;
            self.fan_reference = None;
            self.hot_since_s = None;
            return;
        }
        let reference = *self.fan_reference.get_or_insert_with(|| self.learner.thermal(self.prior));
        let expected = match self.fan_on_slow_c {
            None => slow,
            Some(previous) => advance(&self.model, reference, previous, 0.0, power, dt).0,
        };
        let gap = slow - expected;
        if gap < -1.0 || self.fan_on_slow_c.is_none() {
            // The board is cooler than the reference says (or just started): the fan works;
            // start the reference again from here, with what has been learned since.
            self.fan_on_slow_c = Some(slow);
            self.fan_reference = Some(self.learner.thermal(self.prior));
            self.hot_since_s = None;
            return;
        }
        self.fan_on_slow_c = Some(expected);
        if gap > self.config.fan_failure_k {
            let since = *self.hot_since_s.get_or_insert(sample.t_s);
            if sample.t_s - since >= self.config.fan_failure_for_s {
                self.fan_failed = true;
                actions.push(Action::Alert(format!(
                    "fan failure: the fan is on but the board runs {gap:.1} K above what it did with the fan working"
                )));
            }
        } else {
            self.hot_since_s = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A board for the tests: the policy's own model with different true parameters,
    /// a 1 C sensor, the fan failing at a chosen time.
    struct Board {
        model: ModelConfig,
        truth: Thermal,
        fan_off_r: f64,
        slow: f64,
        fast: f64,
        t: f64,
        work: f64,
        unthrottled: f64,
        fail_fan_at: Option<f64>,
    }

    impl Board {
        fn new(truth: Thermal) -> Board {
            let model = ModelConfig::default();
            Board {
                slow: truth.ambient + truth.r * model.idle_w,
                model,
                truth,
                fan_off_r: 9.5,
                fast: 0.0,
                t: 0.0,
                work: 0.0,
                unthrottled: 0.0,
                fail_fan_at: None,
            }
        }

        fn sensor(&self) -> f64 {
            (self.slow + self.fast).round()
        }

        /// Runs `seconds` with the policy sampling at 2 Hz; returns the sensor's peak.
        fn run(&mut self, policy: &mut Policy, seconds: f64, mut on_actions: impl FnMut(f64, &[Action])) -> f64 {
            let mut peak = f64::MIN;
            let end = self.t + seconds;
            while self.t < end {
                if self.fail_fan_at.is_some_and(|at| self.t >= at) {
                    self.truth.r = self.fan_off_r;
                }
                let sample = Sample { t_s: self.t, temp_c: Some(self.sensor()), fan_on: Some(true), demand: 4.0 };
                let actions = policy.step(sample);
                on_actions(self.t, &actions);
                let setting = policy.setting();
                let busy = 4.0 * setting.duty;
                let power = self.model.power_w(setting.level, busy);
                (self.slow, self.fast) = advance(&self.model, self.truth, self.slow, self.fast, power, 0.5);
                self.work += self.model.work_rate(setting.level, busy) * 0.5;
                self.unthrottled += 4.0 * 0.5;
                self.t += 0.5;
                peak = peak.max(self.sensor());
            }
            peak
        }
    }

    #[test]
    fn fan_off_at_33_c_holds_75_and_mixes_clock_levels_without_chatter() {
        let mut board = Board::new(Thermal { r: 9.5, c: 20.0, ambient: 33.0 });
        let mut policy = Policy::new(Config::default(), ModelConfig::default());
        let mut changes = Vec::new();
        let peak = board.run(&mut policy, 7200.0, |t, actions| {
            if actions.iter().any(|a| matches!(a, Action::ClockCap(_) | Action::Duty(_))) {
                changes.push(t);
            }
        });
        assert!(peak <= 75.0, "peak {peak}");
        let throughput = board.work / board.unthrottled;
        eprintln!("fan off, 33 C: peak {peak}, throughput {throughput:.3}, {} changes", changes.len());
        // The model's steady-state optimum here is ~0.52 (a 1000/750 MHz mix).
        assert!(throughput > 0.47, "throughput {throughput}");
        assert!(changes.windows(2).all(|w| w[1] - w[0] >= 5.0), "one change per 5 s at most: {changes:?}");
        assert!(policy.setting().duty == 1.0, "the clock alone suffices at 33 C: {:?}", policy.setting());
    }

    #[test]
    fn fan_on_never_throttles() {
        let mut board = Board::new(Thermal { r: 4.5, c: 20.0, ambient: 33.0 });
        let mut policy = Policy::new(Config::default(), ModelConfig::default());
        let mut actions_seen = 0;
        let peak = board.run(&mut policy, 3600.0, |_, actions| actions_seen += actions.len());
        assert!(peak < 70.0, "{peak}");
        assert_eq!(actions_seen, 0, "no actuator touched");
        assert_eq!(board.work, board.unthrottled);
    }

    #[test]
    fn at_40_c_the_work_is_duty_cycled_at_the_efficient_level() {
        let mut board = Board::new(Thermal { r: 9.5, c: 20.0, ambient: 43.0 });
        let mut policy = Policy::new(Config::default(), ModelConfig::default());
        let peak = board.run(&mut policy, 3600.0, |_, _| {});
        assert!(peak <= 75.0, "{peak}");
        let setting = policy.setting();
        assert!(setting.level == 2 && setting.duty < 1.0, "{setting:?}");
        assert!(board.work > 0.0);
    }

    #[test]
    fn lost_sensors_freeze_the_work_and_their_return_resumes_it() {
        let mut policy = Policy::new(Config::default(), ModelConfig::default());
        let warm = Sample { t_s: 0.0, temp_c: Some(50.0), fan_on: None, demand: 4.0 };
        assert!(policy.step(warm).is_empty());
        let lost = |t| Sample { t_s: t, temp_c: None, ..warm };
        assert!(policy.step(lost(0.5)).is_empty(), "one missed sample is not a loss");
        let actions = policy.step(lost(2.5));
        assert!(actions.contains(&Action::Duty(0.0)), "{actions:?}");
        assert!(policy.step(lost(3.0)).is_empty(), "frozen once");
        let actions = policy.step(Sample { t_s: 3.5, ..warm });
        assert!(actions.contains(&Action::Duty(1.0)), "{actions:?}");
    }

    #[test]
    fn a_failing_fan_is_flagged_within_180_s_and_the_limit_still_holds() {
        let mut board = Board::new(Thermal { r: 4.5, c: 20.0, ambient: 33.0 });
        board.fail_fan_at = Some(1200.0);
        let mut policy = Policy::new(Config::default(), ModelConfig::default());
        let mut flagged_at = None;
        let peak = board.run(&mut policy, 3600.0, |t, actions| {
            if actions.iter().any(|a| matches!(a, Action::Alert(m) if m.starts_with("fan failure"))) {
                flagged_at.get_or_insert(t);
            }
        });
        assert!(peak <= 75.0, "{peak}");
        let flagged_at = flagged_at.expect("the failure is flagged");
        assert!(flagged_at > 1200.0 && flagged_at - 1200.0 <= 180.0, "flagged at {flagged_at}");
    }
}
