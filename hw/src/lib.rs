//! Hardware layer of sweeprun: which CPUs a sweep may use, how to pin a
//! rank process to one of them, and what the board's thermal sensors say.
//!
//! # Scope
//!
//! * [`topology`]: usable and online CPUs, the calling thread's binding,
//!   pinning a process to one CPU, and the packages/cores/hardware threads
//!   the CPUs belong to ([`topology::Topology`]).
//! * [`placement`]: which CPU each local rank is pinned to (Open MPI's
//!   `--bind-to` / `--map-by`), and the line `mpirun --report-bindings`
//!   prints for a rank. Pure functions of a topology.
//! * [`process`]: children that die with their launcher, exclusive file locks.
//! * [`thermal`]: thermal zones, cooling devices (e.g. the Pi's `gpio-fan`)
//!   and cpufreq clocks, read from sysfs.
//!
//! Not here yet (see the design's "Hardware layer" section): the Pi firmware
//! mailbox (`/dev/vcio`), the fan GPIO level and the simulated board. This
//! crate only *reads* and pins; actuators such as writing
//! `scaling_max_freq` belong to the node agent.
//!
//! # The `hwloc` feature
//!
//! Off by default. On Linux it makes affinity and [`topology::Topology::current`]
//! go through hwloc (the `hwlocality` crate; building needs `libhwloc-dev`
//! and `libudev-dev`, running needs `libhwloc15`). Without it the same
//! functions use `sched_{get,set}affinity` and `/sys/devices/system/cpu`,
//! which is all a Pi needs. The answers are the same either way; only
//! [`topology::pin_current_process`] differs, in that with hwloc it
//! allocates and so must not run between fork and exec.
//!
//! # Fake roots
//!
//! Every sysfs reader takes the sysfs root as a parameter (normally
//! `Path::new("/sys")`), so tests and the simulated board can point it at a
//! fake tree in a temporary directory.
//!
//! # Platforms
//!
//! Linux is the only real backend. On every other target the same functions
//! exist and return [`Error::Unsupported`]; check [`IS_SUPPORTED_SYSTEM`] to
//! know ahead of time. The backend is chosen once, below, and the public
//! modules only call through it.

#![deny(missing_docs)]
// sysfs values are parsed into fixed-width integers; keep narrowing casts
// visible so a truncation is a decision, not an accident.
#![warn(clippy::cast_possible_truncation, clippy::cast_sign_loss)]

pub mod cpufreq;
mod error;
pub mod gpio;
pub mod hwmon;
pub mod mailbox;
pub mod placement;
pub mod process;
pub mod thermal;
pub mod topology;

pub use error::Error;

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
use linux as sys;

// The stub is also compiled into Linux test builds so that it keeps
// compiling (and its tests run) on the only platform CI has.
#[cfg(any(not(target_os = "linux"), test))]
mod unsupported;
#[cfg(not(target_os = "linux"))]
use unsupported as sys;

/// Whether this target has a real backend. When `false`, every reader and
/// [`topology::pin_current_process`] return [`Error::Unsupported`].
pub const IS_SUPPORTED_SYSTEM: bool = sys::IS_SUPPORTED;

// Only the Linux backend reads files, so only its tests need fake trees.
#[cfg(all(test, target_os = "linux"))]
mod testutil;
