//! Backends: where ranks run and how the scheduler's messages reach them. Each backend
//! provides a [`crate::sched::Transport`]; the scheduler and the ledger are the same for all.
//!
//! - [`local`]: rank processes on this machine, over pipes (the default).
//! - [`inproc`]: a rank as a thread of the launcher (MPI rank 0 computes too).
//! - `mpi` (cargo feature `mpi`): MPI ranks under `mpirun`/`srun`, and the `mpirun`
//!   front end that starts them.
//! - [`slurm`]: the sweep as a SLURM batch job (MPI ranks under `srun` in the job),
//!   submitted and followed from here.

pub mod inproc;
pub mod local;
#[cfg(feature = "mpi")]
pub mod mpi;
pub mod mpirun;
pub mod slurm;

/// Where a sweep's ranks run (`--backend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// Rank processes on this machine.
    Local,
    /// MPI ranks, started by the system's `mpirun` (or `srun --mpi=pmix`); needs a
    /// sweeprun built with the `mpi` feature.
    Mpi,
    /// A SLURM batch job: `sbatch` of a script running the sweep with `srun --mpi=pmix`
    /// (MPI ranks on every node of the job), followed until its table is written.
    Slurm,
}

impl Backend {
    /// The name in `--backend` and in the sidecar.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Local => "local",
            Backend::Mpi => "mpi",
            Backend::Slurm => "slurm",
        }
    }
}
