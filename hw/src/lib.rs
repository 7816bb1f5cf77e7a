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
//!   and per-CPU cpufreq clocks, read from sysfs.
//! * [`hwmon`]: hwmon temperatures (`class/hwmon/hwmon*/temp*_input`).
//! * [`cpufreq`]: cpufreq policies (CPUs sharing a clock, available steps)
//!   and [`cpufreq::ClockCap`], the actuator that writes `scaling_max_freq`.
//! * [`mailbox`]: the Pi firmware mailbox (`/dev/vcio`): SoC temperature,
//!   throttled flags and the measured ARM clock in one call, and a fake
//!   mailbox answering from a text file.
//! * [`gpio`]: the fan pin's level, read only (the `rpi` feature).
//! * [`pause`]: [`pause::ProcessPauser`], the actuator that stops and
//!   resumes process groups, and a process's run state from `/proc`.
//! * [`sim`]: a simulated Pi 4B (thermal model, firmware, fake sysfs tree,
//!   fake mailbox file) and its steady-state optimum.
//!
//! Each actuator remembers what it changed and puts it back on `undo()` and
//! on drop, so a node agent that exits does not leave the node slowed down
//! or a rank stopped. The policy (when to cap, when to pause) belongs to the
//! node agent.
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
//! # The `rpi` feature
//!
//! Off by default. On Linux it lets [`gpio::fan_pin_level`] read a pin
//! through rppal (`/dev/gpiomem`); without it, or off a Raspberry Pi, that
//! function returns [`Error::Unsupported`].
//!
//! # Fake roots
//!
//! Every sysfs reader, and the clock cap, takes the sysfs root as a
//! parameter (normally `Path::new("/sys")`), and the run-state reader the
//! proc root (`/proc`), so tests and the simulated board can point them at a
//! fake tree in a temporary directory. The firmware mailbox is a trait, with
//! [`mailbox::FakeMailbox`] answering from a file for the same purpose.
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
pub mod pause;
pub mod placement;
pub mod process;
pub mod sim;
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

/// Whether this target has a real backend. When `false`, every reader,
/// actuator and [`topology::pin_current_process`] return
/// [`Error::Unsupported`] (the fake mailbox still works).
pub const IS_SUPPORTED_SYSTEM: bool = sys::IS_SUPPORTED;

// Only the Linux backend reads files, so only its tests need fake trees.
#[cfg(all(test, target_os = "linux"))]
mod testutil;
