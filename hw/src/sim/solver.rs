//! What the model allows: the best steady state under the safe limit, and
//! what the firmware alone achieves.

use std::fmt;
use std::time::Duration;

use super::board::{Board, Totals};
use super::model::{Model, LEVELS_MHZ, MAX_MHZ};
use super::SAFE_SENSOR_C;

/// One phase of a steady operating point: `busy_cores` cores running at
/// `mhz` (an idle phase has no busy cores; its clock does not matter).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Phase {
    /// The clock, in MHz.
    pub mhz: u32,
    /// Busy cores.
    pub busy_cores: f64,
}

/// The best steady operating point [`optimum`] found: the board alternates
/// between a hot and a cool phase, spending `hot_share` of the time in the
/// hot one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Optimum {
    /// Throughput as a fraction of all cores busy at 1500 MHz.
    pub fraction: f64,
    /// The phase with more power.
    pub hot: Phase,
    /// The phase with less power: the next clock level down, or idle (duty
    /// cycling).
    pub cool: Phase,
    /// Share of the time spent in the hot phase, `0.0..=1.0`.
    pub hot_share: f64,
    /// Steady temperature of the board node, in °C.
    pub board_temp_c: f64,
    /// The highest unquantised sensor temperature of the cycle (board node
    /// plus the hotter phase's fast pole), in °C.
    pub peak_true_c: f64,
}

impl fmt::Display for Optimum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.3} of unthrottled: ", self.fraction)?;
        let phase = |phase: &Phase, share: f64| {
            let percent = share * 100.0;
            if phase.busy_cores > 0.0 {
                format!("{} cores at {} MHz for {percent:.0}%", phase.busy_cores, phase.mhz)
            } else {
                format!("idle for {percent:.0}%")
            }
        };
        let mut phases = Vec::new();
        if self.hot_share > 0.0 {
            phases.push(phase(&self.hot, self.hot_share));
        }
        if self.hot_share < 1.0 {
            phases.push(phase(&self.cool, 1.0 - self.hot_share));
        }
        write!(
            f,
            "{} (board {:.1} °C, sensor up to {:.2} °C before rounding)",
            phases.join(", "),
            self.board_temp_c,
            // Truncated, so a peak just under the rounding boundary does not
            // print as the boundary itself.
            (self.peak_true_c * 100.0).floor() / 100.0
        )
    }
}

/// The best steady throughput whose quantised sensor stays at or below
/// [`SAFE_SENSOR_C`] (75 °C), at `ambient_c` (room plus stack offset).
/// See [`optimum_below`].
pub fn optimum(model: &Model, ambient_c: f64) -> Optimum {
    optimum_below(model, ambient_c, SAFE_SENSOR_C)
}

/// The best steady throughput whose quantised sensor never reads above
/// `limit_c` (a whole number of °C), at `ambient_c`.
///
/// The candidates are every mix of two adjacent clock levels with all cores
/// busy, and every level duty-cycled against idle. Within a mix the board
/// node settles to the average power, while the fast pole is assumed to
/// settle in each phase (phases long next to τ_fast): the sensor peaks at
/// `T_board + R_fast·(P_hot − P_idle)`. That holds for any mixing period,
/// and is conservative for periods short next to τ_fast. With rounding to
/// whole degrees, a reading at or below `limit_c` is a true temperature
/// below `limit_c + 0.5`.
pub fn optimum_below(model: &Model, ambient_c: f64, limit_c: f64) -> Optimum {
    // Stay a hair under the rounding boundary, which itself reads one higher.
    let bound_c = limit_c + 0.5 - 1e-6;
    let cores = f64::from(model.cores);
    let idle = Phase { mhz: LEVELS_MHZ[LEVELS_MHZ.len() - 1], busy_cores: 0.0 };
    let mut best: Option<Optimum> = None;
    for (index, &mhz) in LEVELS_MHZ.iter().enumerate() {
        let hot = Phase { mhz, busy_cores: cores };
        let mut cools = vec![Phase { mhz, busy_cores: 0.0 }];
        if let Some(&lower) = LEVELS_MHZ.get(index + 1) {
            cools.push(Phase { mhz: lower, busy_cores: cores });
        }
        for cool in cools {
            if let Some(candidate) = best_mix(model, ambient_c, bound_c, hot, cool) {
                if best.is_none_or(|best| candidate.fraction > best.fraction) {
                    best = Some(candidate);
                }
            }
        }
    }
    best.unwrap_or_else(|| {
        // Too hot even idle: nothing may run.
        let power_w = model.idle_w;
        let board_temp_c = model.steady_board_c(ambient_c, power_w);
        Optimum { fraction: 0.0, hot: idle, cool: idle, hot_share: 0.0, board_temp_c, peak_true_c: board_temp_c }
    })
}

/// The largest share of `hot` against `cool` that keeps the peak below
/// `bound_c`, or `None` when even `cool` alone does not.
fn best_mix(model: &Model, ambient_c: f64, bound_c: f64, hot: Phase, cool: Phase) -> Option<Optimum> {
    let hot_w = model.power_w(hot.busy_cores, hot.mhz);
    let cool_w = model.power_w(cool.busy_cores, cool.mhz);
    let fast_k = |power_w: f64| model.r_fast_k_per_w * (power_w - model.idle_w);
    // bound = T_amb + R·(x·P_hot + (1−x)·P_cool) + fast(P_hot), solved for x.
    let headroom_k = bound_c - model.steady_board_c(ambient_c, cool_w) - fast_k(hot_w);
    let hot_share = (headroom_k / (model.r_k_per_w * (hot_w - cool_w))).min(1.0);
    let (hot_share, peak_w) = if hot_share > 0.0 {
        (hot_share, hot_w)
    } else if model.steady_board_c(ambient_c, cool_w) + fast_k(cool_w) < bound_c {
        (0.0, cool_w)
    } else {
        return None;
    };
    let work = |phase: Phase| phase.busy_cores * f64::from(phase.mhz);
    let full = f64::from(model.cores) * f64::from(MAX_MHZ);
    let fraction = (hot_share * work(hot) + (1.0 - hot_share) * work(cool)) / full;
    let board_temp_c = model.steady_board_c(ambient_c, hot_share * hot_w + (1.0 - hot_share) * cool_w);
    Some(Optimum { fraction, hot, cool, hot_share, board_temp_c, peak_true_c: board_temp_c + fast_k(peak_w) })
}

/// Simulates `duration` of the firmware alone: all cores busy from an idle,
/// settled start at `ambient_c`, no cap. The totals' [`Totals::fraction`] is
/// the firmware baseline's throughput.
pub fn firmware_only(model: &Model, ambient_c: f64, duration: Duration) -> Totals {
    let mut board = Board::new(model.clone(), ambient_c, 0.0);
    let busy_cores = f64::from(model.cores);
    board.step(duration.as_secs_f64(), busy_cores, MAX_MHZ);
    board.totals()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_HOURS: Duration = Duration::from_secs(2 * 3600);

    fn model(name: &str) -> Model {
        Model::from_name(name).unwrap()
    }

    #[test]
    fn fan_off_at_30_plus_3_firmware_only_is_about_0_65() {
        let totals = firmware_only(&model("pi4-case-fan-off"), 33.0, TWO_HOURS);
        assert!((totals.fraction() - 0.65).abs() < 0.01, "{totals:?}");
        assert!(totals.peak_sensor_c >= 80.0 && totals.peak_sensor_c <= 81.0, "{totals:?}");
        assert!(totals.firmware_throttled_s > 6000.0, "{totals:?}");
    }

    #[test]
    fn fan_off_at_30_plus_3_optimum_is_a_1000_750_mix_near_0_52() {
        let best = optimum(&model("pi4-case-fan-off"), 33.0);
        assert!((best.fraction - 0.52).abs() < 0.01, "{best}");
        assert_eq!((best.hot.mhz, best.cool.mhz), (1000, 750), "{best}");
        assert_eq!((best.hot.busy_cores, best.cool.busy_cores), (4.0, 4.0), "{best}");
        assert!(best.peak_true_c < 75.5, "{best}");
        let firmware = firmware_only(&model("pi4-case-fan-off"), 33.0, TWO_HOURS).fraction();
        let of_firmware = best.fraction / firmware;
        assert!((of_firmware - 0.79).abs() < 0.015, "{of_firmware}");
    }

    #[test]
    fn fan_off_at_30_firmware_only_is_about_0_70_and_optimum_about_0_62() {
        // thermal.md section 5 gives 0.70 and 0.61; the solver's 0.62 comes
        // from crediting rounding (true < 75.5) and the hot phase's fast pole.
        let firmware = firmware_only(&model("pi4-case-fan-off"), 30.0, TWO_HOURS).fraction();
        assert!((firmware - 0.70).abs() < 0.01, "{firmware}");
        let best = optimum(&model("pi4-case-fan-off"), 30.0);
        assert!((best.fraction - 0.62).abs() < 0.01, "{best}");
        assert_eq!((best.hot.mhz, best.cool.mhz), (1000, 750), "{best}");
    }

    #[test]
    fn fan_on_optimum_is_unthrottled() {
        let best = optimum(&model("pi4-case-fan-on"), 33.0);
        assert_eq!(best.fraction, 1.0, "{best}");
        assert_eq!(best.hot, Phase { mhz: 1500, busy_cores: 4.0 });
        assert_eq!(best.hot_share, 1.0);
        assert_eq!(firmware_only(&model("pi4-case-fan-on"), 33.0, Duration::from_secs(1800)).fraction(), 1.0);
    }

    #[test]
    fn hotter_rooms_duty_cycle_a_low_clock() {
        let best = optimum(&model("pi4-case-fan-off"), 36.0);
        assert_eq!((best.hot.mhz, best.cool.busy_cores), (750, 0.0), "{best}");
        assert!(best.fraction < 0.5);
    }

    #[test]
    fn too_hot_even_idle_runs_nothing() {
        let best = optimum(&model("pi4-case-fan-off"), 60.0);
        assert_eq!(best.fraction, 0.0);
        assert_eq!(best.hot_share, 0.0);
        assert_eq!(best.cool.busy_cores, 0.0);
    }

    #[test]
    fn display_names_the_phases() {
        let best = optimum(&model("pi4-case-fan-off"), 33.0);
        let text = best.to_string();
        assert!(
            text.starts_with("0.515 of unthrottled: 4 cores at 1000 MHz for 9%, 4 cores at 750 MHz for 91%"),
            "{text}"
        );
        let best = optimum(&model("pi4-case-fan-on"), 33.0);
        assert!(best.to_string().starts_with("1.000 of unthrottled: 4 cores at 1500 MHz for 100% (board"), "{best}");
    }

    /// Runs the optimum on the board, alternating its phases with
    /// `period_s`, and returns the totals after warming up from idle.
    fn run_optimum(name: &str, ambient_c: f64, period_s: f64, hours: f64) -> (Optimum, Totals) {
        let model = model(name);
        let best = optimum(&model, ambient_c);
        let mut board = Board::new(model, ambient_c, 0.0);
        let dt_s = 0.05;
        let steps = (hours * 3600.0 / dt_s).round();
        let mut step = 0.0;
        while step < steps {
            let in_period_s = (step * dt_s) % period_s;
            let phase = if in_period_s < best.hot_share * period_s { best.hot } else { best.cool };
            board.step(dt_s, phase.busy_cores, phase.mhz);
            step += 1.0;
        }
        (best, board.totals())
    }

    #[test]
    fn the_optimum_holds_on_the_simulated_board() {
        for period_s in [2.0, 10.0, 60.0] {
            let (best, totals) = run_optimum("pi4-case-fan-off", 33.0, period_s, 2.0);
            assert!(totals.peak_sensor_c <= SAFE_SENSOR_C, "period {period_s}: {totals:?}");
            assert_eq!(totals.firmware_throttled_s, 0.0, "period {period_s}");
            assert!((totals.work / (4.0 * totals.elapsed_s) - best.fraction).abs() < 0.005, "{totals:?}");
        }
    }

    /// Prints the anchors next to thermal.md's figures (run with
    /// `--nocapture`).
    #[test]
    fn print_anchor_numbers() {
        for (name, ambient_c) in [("pi4-case-fan-off", 30.0), ("pi4-case-fan-off", 33.0), ("pi4-case-fan-on", 33.0)] {
            let model = model(name);
            let firmware = firmware_only(&model, ambient_c, TWO_HOURS);
            let best = optimum(&model, ambient_c);
            println!(
                "{name} at {ambient_c} °C: firmware-only {:.3} (peak {} °C, throttled {:.0} s of 7200); optimum {best}; {:.1}% of firmware-only",
                firmware.fraction(),
                firmware.peak_sensor_c,
                firmware.firmware_throttled_s,
                100.0 * best.fraction / firmware.fraction()
            );
        }
    }
}
