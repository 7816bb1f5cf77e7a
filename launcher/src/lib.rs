//! # sweeprun
//!
//! The mpirun-style launcher of backtest parameter sweeps: reads a sweep spec
//! ([`spec`]), expands its parameter grid ([`grid`]), hands chunks of combos to N ranks
//! ([`sched`], over a [`backend`]'s transport: local processes, or MPI ranks), gathers
//! every row exactly once into one table ([`ledger`], rows formatted by [`table`]) and prints a top-K summary
//! ([`report`]).
//!
//! Exit codes: 0 done, 1 runtime failure, 2 bad input or usage, 130 interrupted.
#![deny(missing_docs)]

/// `eprintln!` in one `write` call: Rust's stderr is unbuffered, so `eprintln!` may write a
/// line and its newline separately, and mpirun, which merges many ranks' stderr, can then
/// splice another rank's line in between.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::error::say_line(&format!($($arg)*))
    };
}

pub mod array;
pub mod backend;
pub mod bench;
pub mod block_store;
pub mod cli;
pub mod command;
pub mod command_table;
pub mod error;
mod expr;
pub mod float_text;
pub mod grid;
pub mod ledger;
pub mod overfitting;
pub mod progress;
pub mod protocol;
pub mod report;
pub mod run;
pub mod sched;
pub mod signals;
pub mod spec;
pub mod strategy;
pub mod sweep_report;
pub mod table;
pub mod tearsheet;
pub mod thermal;
pub mod verify;
pub mod worker;

#[cfg(test)]
mod fuzz_tests;
