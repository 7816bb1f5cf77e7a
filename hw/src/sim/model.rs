//! The thermal and power model of one Pi 4B (thermal.md section 3): an RC
//! node for the board, a fast pole for the die, and per-core power at each
//! of the firmware's clock levels.

use std::error::Error as StdError;
use std::fmt;

/// The ARM clock levels of the Pi 4B firmware's DVFS, fastest first (MHz).
pub const LEVELS_MHZ: [u32; 4] = [1500, 1000, 750, 600];

/// Power of one busy core at each of [`LEVELS_MHZ`], as a fraction of its
/// power at 1500 MHz (f·V² with the firmware's per-level voltage; est.).
pub const POWER_FACTORS: [f64; 4] = [1.0, 0.55, 0.40, 0.33];

/// The unthrottled clock (MHz): one core-second at this clock is one work
/// unit.
pub const MAX_MHZ: u32 = LEVELS_MHZ[0];

/// The names [`Model::from_name`] accepts.
pub const PRESET_NAMES: [&str; 4] = ["pi4-bare", "pi4-heatsink", "pi4-case-fan-on", "pi4-case-fan-off"];

/// The case fan of the stacked acrylic case (a `gpio-fan`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CaseFan {
    /// Whether the fan is commanded on (the cooling device's `cur_state`).
    pub commanded_on: bool,
    /// Board-to-ambient resistance (K/W) when the fan does not turn, because
    /// it is off or has failed.
    pub stopped_r_k_per_w: f64,
    /// Fast-pole resistance (K/W) when the fan does not turn.
    pub stopped_r_fast_k_per_w: f64,
}

/// One board in one cooling case.
///
/// ```text
/// C·dT/dt = P − (T − T_amb)/R
/// sensor  = T + ΔT_fast,  dΔT_fast/dt = (R_fast·(P − P_idle) − ΔT_fast)/τ_fast
/// P       = P_idle + Σ busy cores · core_w · factor(clock)
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    /// The preset name, e.g. `pi4-case-fan-off`.
    pub name: &'static str,
    /// Board-to-ambient thermal resistance, in K per W of board input power.
    pub r_k_per_w: f64,
    /// Heat capacity of the board node, in J/K.
    pub c_j_per_k: f64,
    /// Fast pole (die over board): its steady rise per W above idle, in K/W.
    pub r_fast_k_per_w: f64,
    /// Fast pole time constant, in seconds.
    pub tau_fast_s: f64,
    /// The case fan, if the case has one.
    pub fan: Option<CaseFan>,
    /// Number of cores (all share one clock).
    pub cores: u32,
    /// Board input power with every core idle, in W.
    pub idle_w: f64,
    /// Extra power of one busy core at 1500 MHz, in W.
    pub core_w: f64,
}

/// [`Model::from_name`] was given a name that is not a preset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownModel {
    name: String,
}

impl fmt::Display for UnknownModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown board model {:?}; expected one of: {}", self.name, PRESET_NAMES.join(", "))
    }
}

impl StdError for UnknownModel {}

// Power: the firmware-updated Pi 4B draws about 2.85 W idle and 6.2 W with
// four busy cores (thermal.md section 1), so 0.84 W per core at 1500 MHz.
const IDLE_W: f64 = 2.85;
const CORE_W: f64 = 0.84;
const CORES: u32 = 4;

// The acrylic case's fan-off row of thermal.md's table, shared by the
// fan-off preset and a failed fan.
const CASE_FAN_OFF_R: f64 = 9.5;
const CASE_FAN_OFF_R_FAST: f64 = 1.2;

impl Model {
    /// The preset called `name`: one of [`PRESET_NAMES`].
    ///
    /// | name | R K/W | C J/K | R_fast K/W | τ_fast s |
    /// |---|---|---|---|---|
    /// | `pi4-bare` | 9 | 12 | 1.7 | 10 |
    /// | `pi4-heatsink` | 7 | 20 | 1.2 | 8 |
    /// | `pi4-case-fan-on` | 4.5 | 20 | 1.0 | 8 |
    /// | `pi4-case-fan-off` | 9.5 | 20 | 1.2 | 8 |
    ///
    /// The two case presets have a `gpio-fan`: commanded on in
    /// `pi4-case-fan-on`, off in `pi4-case-fan-off`. A fan commanded on that
    /// has failed is `pi4-case-fan-on` plus [`Board::fail_fan`](super::Board::fail_fan).
    pub fn from_name(name: &str) -> Result<Model, UnknownModel> {
        let board = |name, r_k_per_w, c_j_per_k, r_fast_k_per_w, tau_fast_s, fan| Model {
            name,
            r_k_per_w,
            c_j_per_k,
            r_fast_k_per_w,
            tau_fast_s,
            fan,
            cores: CORES,
            idle_w: IDLE_W,
            core_w: CORE_W,
        };
        let case_fan = |commanded_on| {
            Some(CaseFan {
                commanded_on,
                stopped_r_k_per_w: CASE_FAN_OFF_R,
                stopped_r_fast_k_per_w: CASE_FAN_OFF_R_FAST,
            })
        };
        match name {
            "pi4-bare" => Ok(board("pi4-bare", 9.0, 12.0, 1.7, 10.0, None)),
            "pi4-heatsink" => Ok(board("pi4-heatsink", 7.0, 20.0, 1.2, 8.0, None)),
            "pi4-case-fan-on" => Ok(board("pi4-case-fan-on", 4.5, 20.0, 1.0, 8.0, case_fan(true))),
            "pi4-case-fan-off" => {
                Ok(board("pi4-case-fan-off", CASE_FAN_OFF_R, 20.0, CASE_FAN_OFF_R_FAST, 8.0, case_fan(false)))
            }
            _ => Err(UnknownModel { name: name.to_owned() }),
        }
    }

    /// The same board with its fan stopped: R and R_fast become the case's
    /// fan-off values. A board without a fan is returned unchanged.
    pub fn with_fan_stopped(&self) -> Model {
        let mut stopped = self.clone();
        if let Some(fan) = self.fan {
            stopped.r_k_per_w = fan.stopped_r_k_per_w;
            stopped.r_fast_k_per_w = fan.stopped_r_fast_k_per_w;
        }
        stopped
    }

    /// The slow time constant R·C, in seconds.
    pub fn tau_s(&self) -> f64 {
        self.r_k_per_w * self.c_j_per_k
    }

    /// Extra power of one busy core at `mhz` (snapped with [`snap_mhz`]), in W.
    pub fn core_power_w(&self, mhz: u32) -> f64 {
        self.core_w * POWER_FACTORS[level_index(mhz)]
    }

    /// Board input power with `busy_cores` cores busy at `mhz`, in W.
    pub fn power_w(&self, busy_cores: f64, mhz: u32) -> f64 {
        self.idle_w + busy_cores * self.core_power_w(mhz)
    }

    /// The steady temperature of the board node at constant `power_w`.
    pub fn steady_board_c(&self, ambient_c: f64, power_w: f64) -> f64 {
        ambient_c + self.r_k_per_w * power_w
    }
}

/// The clock cpufreq runs for a cap of `mhz`: the highest level at or below
/// it, or the lowest level when the cap is below them all (cpufreq clamps a
/// `scaling_max_freq` below `cpuinfo_min_freq` up to it).
pub fn snap_mhz(mhz: u32) -> u32 {
    LEVELS_MHZ[level_index(mhz)]
}

/// The index in [`LEVELS_MHZ`] of [`snap_mhz`]`(mhz)`.
pub(super) fn level_index(mhz: u32) -> usize {
    LEVELS_MHZ.iter().position(|&level| level <= mhz).unwrap_or(LEVELS_MHZ.len() - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_name_builds_and_names_itself() {
        for name in PRESET_NAMES {
            let model = Model::from_name(name).unwrap();
            assert_eq!(model.name, name);
            assert_eq!(model.cores, 4);
        }
    }

    #[test]
    fn unknown_name_lists_the_presets() {
        let err = Model::from_name("pi5").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown board model \"pi5\"; expected one of: pi4-bare, pi4-heatsink, pi4-case-fan-on, pi4-case-fan-off"
        );
    }

    #[test]
    fn full_load_power_is_about_6_2_watts() {
        let model = Model::from_name("pi4-bare").unwrap();
        assert!((model.power_w(4.0, 1500) - 6.21).abs() < 1e-9);
        assert!((model.power_w(4.0, 1000) - (2.85 + 4.0 * 0.84 * 0.55)).abs() < 1e-9);
        assert_eq!(model.power_w(0.0, 600), 2.85);
    }

    #[test]
    fn caps_snap_down_to_a_level() {
        assert_eq!(snap_mhz(2000), 1500);
        assert_eq!(snap_mhz(1500), 1500);
        assert_eq!(snap_mhz(1499), 1000);
        assert_eq!(snap_mhz(900), 750);
        assert_eq!(snap_mhz(600), 600);
        assert_eq!(snap_mhz(100), 600);
    }

    #[test]
    fn stopping_the_fan_uses_the_fan_off_row() {
        let on = Model::from_name("pi4-case-fan-on").unwrap();
        let off = Model::from_name("pi4-case-fan-off").unwrap();
        let stopped = on.with_fan_stopped();
        assert_eq!(stopped.r_k_per_w, off.r_k_per_w);
        assert_eq!(stopped.r_fast_k_per_w, off.r_fast_k_per_w);
        let bare = Model::from_name("pi4-bare").unwrap();
        assert_eq!(bare.with_fan_stopped(), bare);
    }
}
