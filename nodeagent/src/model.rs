//! The agent's thermal model of its board and how it learns it.
//!
//! A first-order RC model of the board (`C dT/dt = P - (T - T_amb)/R`) plus the sensor's
//! fast pole (`dF/dt = (R_j (P - P_idle) - F) / tau_j`, sensor = T + F), as in the project's
//! thermal notes. Power comes from the clock level and how many cores run:
//! `P = P_idle + cores x duty x p_core x factor(level)`. The agent knows the electrical
//! side from its config (they are the board's data sheet); R, C and the ambient are learned
//! online by recursive least squares on the slow dynamics, starting from the config's guess.

/// Electrical and thermal parameters the agent starts from (`[model]` in agent.toml).
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    /// Board power with every core idle, W.
    pub idle_w: f64,
    /// Power of one busy core at the top clock level, W.
    pub core_w: f64,
    /// Cores that run sweep work.
    pub cores: u32,
    /// Clock levels, MHz, highest first.
    pub levels_mhz: Vec<u32>,
    /// Per-core power of each level as a fraction of the top level's.
    pub level_power: Vec<f64>,
    /// First guess of the thermal resistance, K/W of board power.
    pub r_k_per_w: f64,
    /// First guess of the heat capacity, J/K.
    pub c_j_per_k: f64,
    /// The sensor's fast pole: K/W of power above idle.
    pub fast_r_k_per_w: f64,
    /// The fast pole's time constant, s.
    pub fast_tau_s: f64,
    /// First guess of the effective ambient (room plus stack offset), C.
    pub ambient_c: f64,
}

impl Default for ModelConfig {
    /// A Pi 4B in an enclosed acrylic stack with its fan off (the worst case of the notes):
    /// the agent starts pessimistic and learns better.
    fn default() -> ModelConfig {
        ModelConfig {
            idle_w: 2.85,
            core_w: 0.84,
            cores: 4,
            levels_mhz: vec![1500, 1000, 750, 600],
            level_power: vec![1.0, 0.55, 0.40, 0.33],
            r_k_per_w: 9.5,
            c_j_per_k: 20.0,
            fast_r_k_per_w: 1.2,
            fast_tau_s: 8.0,
            ambient_c: 30.0,
        }
    }
}

impl ModelConfig {
    /// Board power running `busy` cores' worth of work (0..=cores) at level `level`.
    pub fn power_w(&self, level: usize, busy: f64) -> f64 {
        self.idle_w + busy * self.core_w * self.level_power[level]
    }

    /// Work per second of `busy` cores at level `level`, in top-clock core-seconds.
    pub fn work_rate(&self, level: usize, busy: f64) -> f64 {
        busy * f64::from(self.levels_mhz[level]) / f64::from(self.levels_mhz[0])
    }
}

/// The learned slow model: `dT/dt = a P + b T + c`, so C = 1/a, R = -a/b, T_amb = -c/b.
/// (T and the constant are nearly collinear at a steady 60..75 C: the covariance is kept
/// symmetric and its trace bounded, so days of steady load cannot wind it up.)
#[derive(Debug, Clone)]
pub struct Learner {
    theta: [f64; 3],
    covariance: [[f64; 3]; 3],
    /// Forgetting factor: old samples fade with a memory of about 1/(1-lambda) updates.
    lambda: f64,
    updates: u64,
}

/// The thermal parameters in use.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thermal {
    /// K/W.
    pub r: f64,
    /// J/K.
    pub c: f64,
    /// C.
    pub ambient: f64,
}

impl Learner {
    /// Starts from `prior` (R, C, ambient).
    pub fn new(prior: Thermal) -> Learner {
        let a = 1.0 / prior.c;
        let b = -1.0 / (prior.r * prior.c);
        let c = prior.ambient / (prior.r * prior.c);
        let covariance = [[1e-3, 0.0, 0.0], [0.0, 1e-6, 0.0], [0.0, 0.0, 1e-3]];
        Learner { theta: [a, b, c], covariance, lambda: 0.998, updates: 0 }
    }

    /// One observation: over an interval the slow temperature moved at `slope` K/s while
    /// the board drew `power` W at a mean slow temperature `temp` C.
    pub fn observe(&mut self, power: f64, temp: f64, slope: f64) {
        let x = [power, temp, 1.0];
        let px: [f64; 3] = std::array::from_fn(|i| (0..3).map(|j| self.covariance[i][j] * x[j]).sum());
        let denominator = self.lambda + (0..3).map(|i| x[i] * px[i]).sum::<f64>();
        let gain: [f64; 3] = std::array::from_fn(|i| px[i] / denominator);
        let error = slope - (0..3).map(|i| self.theta[i] * x[i]).sum::<f64>();
        for (theta, gain) in self.theta.iter_mut().zip(gain) {
            *theta += gain * error;
        }
        let mut next = [[0.0; 3]; 3];
        for (i, row) in next.iter_mut().enumerate() {
            for (j, cell) in row.iter_mut().enumerate() {
                *cell = (self.covariance[i][j] - gain[i] * px[j]) / self.lambda;
            }
        }
        // Symmetric (rounding), and bounded as a whole: a long flat stretch (no information)
        // must not wind the gain up, and scaling the whole matrix keeps it positive definite.
        for (i, j) in [(1, 0), (2, 0), (2, 1)] {
            let mean = (next[i][j] + next[j][i]) / 2.0;
            next[i][j] = mean;
            next[j][i] = mean;
        }
        let trace: f64 = (0..3).map(|i| next[i][i]).sum();
        if trace > MAX_COVARIANCE_TRACE {
            let scale = MAX_COVARIANCE_TRACE / trace;
            next.iter_mut().flatten().for_each(|cell| *cell *= scale);
        }
        self.covariance = next;
        self.updates += 1;
    }

    /// Whether enough has been seen for the learned parameters to count.
    pub fn is_ready(&self) -> bool {
        self.updates >= 20
    }

    /// The learned parameters, or `prior` while they are implausible (too little data,
    /// or data without enough excitation).
    pub fn thermal(&self, prior: Thermal) -> Thermal {
        let [a, b, c] = self.theta;
        if !self.is_ready() || a <= 0.0 || b >= 0.0 {
            return prior;
        }
        let learned = Thermal { r: -a / b, c: 1.0 / a, ambient: -c / b };
        let plausible = (0.5..=30.0).contains(&learned.r)
            && (2.0..=500.0).contains(&learned.c)
            && (-10.0..=60.0).contains(&learned.ambient);
        if plausible {
            learned
        } else {
            prior
        }
    }
}

/// Bound on the learner's covariance trace (see [`Learner::observe`]).
const MAX_COVARIANCE_TRACE: f64 = 0.1;

/// Predicts the sensor over the next seconds for a constant power.
#[derive(Debug, Clone, Copy)]
pub struct Predictor {
    /// Slow (board) temperature now, C.
    pub slow_c: f64,
    /// Fast-pole offset of the sensor now, K.
    pub fast_k: f64,
}

impl Predictor {
    /// The highest sensor temperature over `horizon_s` if the board draws `power` W from
    /// now on (steps of `step_s`).
    pub fn peak(&self, model: &ModelConfig, thermal: Thermal, power: f64, horizon_s: f64, step_s: f64) -> f64 {
        let (mut slow, mut fast) = (self.slow_c, self.fast_k);
        let mut peak = slow + fast;
        let mut t = 0.0;
        while t < horizon_s {
            (slow, fast) = advance(model, thermal, slow, fast, power, step_s);
            peak = peak.max(slow + fast);
            t += step_s;
        }
        peak
    }
}

/// One step of the two-pole model (exact exponentials, so any step is stable).
pub fn advance(model: &ModelConfig, thermal: Thermal, slow: f64, fast: f64, power: f64, dt: f64) -> (f64, f64) {
    let tau = thermal.r * thermal.c;
    let slow_target = thermal.ambient + thermal.r * power;
    let fast_target = model.fast_r_k_per_w * (power - model.idle_w).max(0.0);
    let slow = slow_target + (slow - slow_target) * (-dt / tau).exp();
    let fast = fast_target + (fast - fast_target) * (-dt / model.fast_tau_s).exp();
    (slow, fast)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_reaches_its_steady_state_and_the_fast_pole_its_offset() {
        let model = ModelConfig::default();
        let thermal = Thermal { r: 9.5, c: 20.0, ambient: 33.0 };
        let power = model.power_w(0, 4.0);
        assert!((power - 6.21).abs() < 1e-9);
        let (mut slow, mut fast) = (33.0, 0.0);
        for _ in 0..20_000 {
            (slow, fast) = advance(&model, thermal, slow, fast, power, 0.5);
        }
        assert!((slow - (33.0 + 9.5 * 6.21)).abs() < 1e-6, "{slow}");
        assert!((fast - 1.2 * 3.36).abs() < 1e-9, "{fast}");
    }

    #[test]
    fn the_learner_recovers_r_c_and_the_ambient_from_a_varied_load() {
        let model = ModelConfig::default();
        let truth = Thermal { r: 4.5, c: 35.0, ambient: 27.0 };
        let prior = Thermal { r: 9.5, c: 20.0, ambient: 30.0 };
        let mut learner = Learner::new(prior);
        let mut slow = 27.0;
        let dt = 10.0;
        for k in 0..400 {
            // Load switching every 5 minutes between levels: excitation.
            let level = [0, 3, 1, 2][(k / 30) % 4];
            let power = model.power_w(level, 4.0);
            let (next, _) = advance(&model, truth, slow, 0.0, power, dt);
            learner.observe(power, (slow + next) / 2.0, (next - slow) / dt);
            slow = next;
        }
        let learned = learner.thermal(prior);
        assert!((learned.r - truth.r).abs() / truth.r < 0.05, "{learned:?}");
        // The slope over a 10 s step of a 160 s exponential biases C by a few per cent.
        assert!((learned.c - truth.c).abs() / truth.c < 0.15, "{learned:?}");
        assert!((learned.ambient - truth.ambient).abs() < 1.0, "{learned:?}");
    }

    #[test]
    fn days_of_steady_load_do_not_wind_the_learner_up() {
        // The controller's own steady state: the same power and temperature for 40 hours
        // (20 s windows), with the sensor's rounding noise.
        let prior = Thermal { r: 9.5, c: 20.0, ambient: 30.0 };
        let mut learner = Learner::new(prior);
        for k in 0..7200u32 {
            let noise = f64::from(k % 7) / 7.0 - 0.5;
            learner.observe(4.7, 72.0 + 0.05 * noise, 0.002 * noise);
            let p = &learner.covariance;
            let trace: f64 = (0..3).map(|i| p[i][i]).sum();
            assert!(trace <= MAX_COVARIANCE_TRACE * 1.0001 && (0..3).all(|i| p[i][i] >= 0.0), "{p:?} at {k}");
            for i in 0..3 {
                for j in 0..3 {
                    assert!(p[i][j] * p[i][j] <= p[i][i] * p[j][j] * 1.0001 + 1e-18, "not positive: {p:?} at {k}");
                }
            }
        }
        let thermal = learner.thermal(prior);
        assert!(thermal.c > 0.0 && thermal.r > 0.0, "{thermal:?}");
    }

    #[test]
    fn without_data_the_prior_is_used() {
        let prior = Thermal { r: 9.5, c: 20.0, ambient: 30.0 };
        assert_eq!(Learner::new(prior).thermal(prior), prior);
    }

    #[test]
    fn the_peak_prediction_covers_the_fast_jump() {
        let model = ModelConfig::default();
        let thermal = Thermal { r: 9.5, c: 20.0, ambient: 33.0 };
        let at_idle = Predictor { slow_c: 65.0, fast_k: 0.0 };
        let full = model.power_w(0, 4.0);
        let peak = at_idle.peak(&model, thermal, full, 20.0, 0.5);
        // 20 s of full load: the fast pole's 4 K (most of it) and the slow rise on top.
        assert!(peak > 68.0 && peak < 75.0, "{peak}");
        let idle = at_idle.peak(&model, thermal, model.idle_w, 20.0, 0.5);
        assert!((idle - 65.0).abs() < 1e-9, "cooling: the peak is now, {idle}");
    }
}
