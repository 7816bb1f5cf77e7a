//! Affinity and topology through hwloc (the `hwloc` feature).
//!
//! The topology is loaded once per process and kept: loading walks sysfs
//! and takes milliseconds, and the binding calls need it.
//!
//! It is loaded with disallowed CPUs included, so that it describes every
//! online CPU, as the sysfs reader does; binding still refuses CPUs this
//! process may not use, as `sched_setaffinity` does.

use std::error::Error as StdError;
use std::io;
use std::sync::OnceLock;

use hwlocality::bitmap::BitmapIndex;
use hwlocality::cpu::binding::CpuBindingFlags;
use hwlocality::cpu::cpuset::CpuSet;
use hwlocality::errors::{HybridError, RawHwlocError};
use hwlocality::object::types::ObjectType;
use hwlocality::object::TopologyObject;
use hwlocality::topology::builder::BuildFlags;
use nix::unistd::getpid;

use crate::topology::{Core, Package, Topology};
use crate::Error;

pub(crate) fn usable_cpus() -> Result<Vec<usize>, Error> {
    // The main thread's mask (its tid is the pid), like the sched backend;
    // hwloc's PROCESS flag would instead merge the masks of all threads.
    let set = loaded()?.tid_cpu_binding(getpid().as_raw()).map_err(|err| Error::Os {
        call: "hwloc_linux_get_tid_cpubind (reading this process's CPU mask)",
        source: raw_to_io(err),
    })?;
    Ok(cpus_in(&set))
}

pub(crate) fn current_binding() -> Result<Vec<usize>, Error> {
    let set = loaded()?.cpu_binding(CpuBindingFlags::THREAD).map_err(|err| Error::Os {
        call: "hwloc_get_cpubind (reading this thread's CPU mask)",
        source: hybrid_to_io(err),
    })?;
    Ok(cpus_in(&set))
}

pub(crate) fn pin_current_process(cpu: usize) -> Result<(), Error> {
    const CALL: &str = "hwloc_set_cpubind (pinning to one CPU)";
    // A number hwloc bitmaps cannot hold names no CPU; say so instead of
    // letting CpuSet::set panic.
    let index =
        BitmapIndex::try_from(cpu).map_err(|_| Error::Os { call: CALL, source: io::ErrorKind::InvalidInput.into() })?;
    let mut set = CpuSet::new();
    set.set(index);
    // THREAD: the calling thread, which is what sched_setaffinity(0) binds
    // and what threads created afterwards inherit.
    loaded()?.bind_cpu(&set, CpuBindingFlags::THREAD).map_err(|err| Error::Os { call: CALL, source: hybrid_to_io(err) })
}

pub(crate) fn current_topology() -> Result<Topology, Error> {
    let topology = loaded()?;
    // Cores in hwloc's logical order, each filed under its package in the
    // order packages first appear, which is their logical order too.
    let mut packages: Vec<(Option<usize>, Package)> = Vec::new();
    let mut add = |package: Option<&TopologyObject>, core: Core| {
        let key = package.map(TopologyObject::logical_index);
        let index = match packages.iter().position(|(k, _)| *k == key) {
            Some(index) => index,
            None => {
                packages.push((key, Package { id: package.map_or(0, os_id), cores: Vec::new() }));
                packages.len() - 1
            }
        };
        packages[index].1.cores.push(core);
    };
    for core in topology.objects_with_type(ObjectType::Core) {
        let cpus = core.cpuset().map(|set| cpus_in(&set)).unwrap_or_default();
        add(core.first_ancestor_with_type(ObjectType::Package), Core { id: os_id(core), cpus });
    }
    // hwloc makes no core objects where the kernel gives no core ids; each
    // such CPU is then a core of its own.
    for pu in topology.objects_with_type(ObjectType::PU) {
        if pu.first_ancestor_with_type(ObjectType::Core).is_none() {
            let cpu = pu.os_index().unwrap_or_default();
            add(pu.first_ancestor_with_type(ObjectType::Package), Core { id: os_id(pu), cpus: vec![cpu] });
        }
    }
    Ok(Topology::from_packages(packages.into_iter().map(|(_, package)| package)))
}

/// The process's topology, loaded on first use.
fn loaded() -> Result<&'static hwlocality::Topology, Error> {
    static LOADED: OnceLock<hwlocality::Topology> = OnceLock::new();
    if let Some(topology) = LOADED.get() {
        return Ok(topology);
    }
    let topology = hwlocality::Topology::builder()
        .with_flags(BuildFlags::INCLUDE_DISALLOWED)
        .map_err(|err| Error::Os { call: "hwloc_topology_set_flags", source: hybrid_to_io(err) })?
        .build()
        .map_err(|err| Error::Os {
            call: "hwloc_topology_load (discovering the CPU topology)",
            source: raw_to_io(err),
        })?;
    // Two threads may both load it; the first one stored wins.
    Ok(LOADED.get_or_init(|| topology))
}

/// The kernel's id for a package or core (hwloc's OS index), `0` when hwloc
/// has none.
fn os_id(object: &TopologyObject) -> u32 {
    object.os_index().and_then(|index| u32::try_from(index).ok()).unwrap_or(0)
}

fn cpus_in(set: &CpuSet) -> Vec<usize> {
    set.iter_set().map(usize::from).collect()
}

/// The errno hwloc saw, as an `io::Error` so that `Display` shows the OS's
/// words for it (e.g. "Invalid argument").
fn raw_to_io(err: RawHwlocError) -> io::Error {
    match err.errno {
        Some(errno) => io::Error::from_raw_os_error(errno.0),
        None => io::Error::other(err),
    }
}

/// Like [`raw_to_io`]; a refusal caught on the Rust side (a CPU hwloc does
/// not know, flags that do not apply) is an invalid input.
fn hybrid_to_io<E: StdError + Send + Sync + 'static>(err: HybridError<E>) -> io::Error {
    match err {
        HybridError::Hwloc(raw) => raw_to_io(raw),
        HybridError::Rust(err) => io::Error::new(io::ErrorKind::InvalidInput, err),
    }
}
