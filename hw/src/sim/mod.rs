//! A simulated Pi 4B, so the node agent can be tested on any machine.
//!
//! The thermal and power [`Model`] of the design notes (`thermal.md`,
//! sections 1, 3 and 5), with one preset per cooling case.

mod model;

pub use model::{snap_mhz, CaseFan, Model, UnknownModel, LEVELS_MHZ, MAX_MHZ, POWER_FACTORS, PRESET_NAMES};
