//! Backends: where ranks run and how the scheduler's messages reach them. Each backend
//! provides a [`crate::sched::Transport`]; the scheduler and the ledger are the same for all.
//!
//! - [`local`]: rank processes on this machine, over pipes (the default).
//! - [`inproc`]: a rank as a thread of the launcher (MPI rank 0 computes too).
//! - `mpi` (cargo feature `mpi`): MPI ranks under `mpirun`/`srun`, and the `mpirun`
//!   front end that starts them.

pub mod inproc;
pub mod local;
#[cfg(feature = "mpi")]
pub mod mpi;
pub mod mpirun;

/// Where a sweep's ranks run (`--backend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// Rank processes on this machine.
    Local,
    /// MPI ranks, started by the system's `mpirun` (or `srun --mpi=pmix`); needs a
    /// sweeprun built with the `mpi` feature.
    Mpi,
}

impl Backend {
    /// The name in `--backend` and in the sidecar.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Local => "local",
            Backend::Mpi => "mpi",
        }
    }
}
