//! # sweeprun-kernel
//!
//! The backtest kernel of sweeprun: price data ([`prices`]), strategies evaluated as
//! batches of parameter combos ([`sma`]), metrics ([`metrics`]) and the overfitting
//! statistics of a sweep ([`overfitting`]).
//!
//! The kernel touches no sockets, clocks or signals, and reads files only to parse
//! price data; that keeps it fast, testable and portable across x86-64 and aarch64.
#![deny(missing_docs)]

pub mod arch;
pub mod date;
pub mod decimal;
pub mod metrics;
pub mod momentum;
pub mod overfitting;
pub mod prices;
pub mod sma;
pub mod wire;

pub use metrics::Metrics;
