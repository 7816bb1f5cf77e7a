//! A simulated Pi 4B, so the node agent can be tested on any machine.
//!
//! The [`Board`] is the RC model of the design notes (`thermal.md`,
//! sections 1, 3 and 5): a board node with a fast pole on top, power from
//! the clock level and the number of busy cores, a sensor quantised to 1 °C
//! (rounded to nearest), and the firmware as the baseline controller (every
//! simulated second: one level down at 80 °C or more, one up below 79 °C,
//! the lowest level at 85 °C). Cooling cases are [`Model`] presets; a case
//! fan can fail.
//!
//! The board's load is what the agent controls, never the test machine's
//! own busyness: the run state of the managed processes
//! ([`managed_busy_cores`]) and the clock cap the agent wrote
//! ([`Tree::read_cap_mhz`]). The [`Tree`] writes the fake sysfs the agent
//! reads through the same readers as on a Pi ([`crate::thermal`]), plus a
//! fake firmware mailbox file.
//!
//! The model itself is pure and deterministic: no threads and no clock.
//! The harness that drives a scenario decides how simulated time maps to
//! wall time (for example 2 simulated hours in about a minute, 120×) and
//! calls [`Board::step`] with simulated seconds.
//!
//! [`optimum`] is the best steady state the model allows under the agent's
//! limit, and [`firmware_only`] what the firmware alone achieves, to print
//! beside a run's result.

mod board;
mod model;
mod procstat;
mod solver;
#[cfg(unix)]
mod tree;

pub use board::{Board, Totals};
pub use model::{snap_mhz, CaseFan, Model, UnknownModel, LEVELS_MHZ, MAX_MHZ, POWER_FACTORS, PRESET_NAMES};
pub use procstat::managed_busy_cores;
pub use solver::{firmware_only, optimum, optimum_below, Optimum, Phase};
#[cfg(unix)]
pub use tree::Tree;

/// The agent's limit on the (quantised) sensor, in °C: 5 K under the
/// firmware's 80 °C (thermal.md, goal G1).
pub const SAFE_SENSOR_C: f64 = 75.0;
