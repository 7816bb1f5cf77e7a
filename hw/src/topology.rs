//! Which CPUs a sweep may use, how they group into packages and cores, and
//! pinning a rank process to one of them.
//!
//! Ranks are processes, one per usable core. The launcher asks
//! [`usable_cpus`] how many ranks to start (this respects `taskset` and
//! cgroup cpusets, unlike counting `/sys` entries), and each rank calls
//! [`pin_current_process`] before it starts working, then may read
//! [`current_binding`] back to report where it runs.
//!
//! [`Topology`] describes packages (sockets), their cores and each core's
//! CPUs (hardware threads), which is what placement by socket and mpirun's
//! binding report need (see [`crate::placement`]).
//!
//! # Backends
//!
//! With the `hwloc` feature, [`usable_cpus`], [`current_binding`],
//! [`pin_current_process`] and [`Topology::current`] go through hwloc.
//! Without it they use `sched_{get,set}affinity` and
//! `/sys/devices/system/cpu`. Both give the same answers; the crate's tests
//! compare them when built with the feature.

use std::collections::HashSet;
use std::path::Path;

use crate::{sys, Error};

/// The CPUs this process may run on, sorted ascending.
///
/// This is the affinity mask of the process (its main thread), so it
/// reflects `taskset`, `numactl`, SLURM's and cgroup cpusets' restrictions.
/// It is never empty on success.
pub fn usable_cpus() -> Result<Vec<usize>, Error> {
    sys::usable_cpus()
}

/// The CPUs the kernel has online, from `<sys_root>/devices/system/cpu/online`.
///
/// `sys_root` is normally `/sys`. A CPU can be online yet not usable by this
/// process; see [`usable_cpus`].
pub fn online_cpus(sys_root: &Path) -> Result<Vec<usize>, Error> {
    sys::online_cpus(sys_root)
}

/// Restricts the calling thread, and every thread or process it creates
/// afterwards, to run only on `cpu`.
///
/// Affinity on Linux is per thread: call this from a rank process's main
/// thread *before* it spawns threads, so that they inherit the mask. Threads
/// that already exist keep their old mask.
///
/// Without the `hwloc` feature it does not allocate, so it may also be
/// called in a freshly spawned child between fork and exec
/// (`std::os::unix::process::CommandExt::pre_exec`). With `hwloc` it loads
/// the topology on first use and allocates: call it in the child process
/// itself, as a rank does first thing.
///
/// Fails with [`Error::Os`] if `cpu` is not one this process may use (see
/// [`usable_cpus`]) or does not exist.
pub fn pin_current_process(cpu: usize) -> Result<(), Error> {
    sys::pin_current_process(cpu)
}

/// The CPUs the calling thread is bound to, sorted ascending: after
/// [`pin_current_process`], just that CPU.
///
/// Threads inherit the mask of the thread that created them, so in a rank's
/// main thread this is the rank's binding, whether the rank pinned itself or
/// was started bound (by `taskset`, mpirun or SLURM). Unlike [`usable_cpus`],
/// which reads the main thread's mask, this reads the calling thread's.
pub fn current_binding() -> Result<Vec<usize>, Error> {
    sys::current_binding()
}

/// How the machine's CPUs group into packages (sockets) and cores.
///
/// A CPU here is what the kernel numbers as a CPU: a hardware thread
/// (hwloc's PU). Every CPU belongs to exactly one core, and every core to
/// exactly one package. The order of packages and of cores is their
/// *logical* order, the one hwloc numbers them in and mpirun's binding
/// report counts in: core numbers count across packages (package 1's first
/// core on a 2 x 4 machine is core 4). Within a core, CPUs are ascending and
/// a CPU's position is its hardware-thread number (`hwt`).
///
/// Built by [`Topology::current`] for this machine, by
/// [`Topology::from_sysfs`] from a sysfs tree, or by
/// [`Topology::from_packages`] and [`Topology::flat`] for anything else
/// (tests, simulated boards, a fallback when the machine's cannot be read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    packages: Vec<Package>,
}

/// One package (socket) of a [`Topology`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    /// The kernel's `physical_package_id` (hwloc's OS index). Not always
    /// `0..n`; `0` when the firmware gives none (older arm64 kernels write
    /// `-1`).
    pub id: u32,
    /// The package's cores, in logical order.
    pub cores: Vec<Core>,
}

/// One core of a [`Package`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Core {
    /// The kernel's `core_id` (hwloc's OS index): unique within its package
    /// only, and not always contiguous (`0, 1, 2, 8, 9, 10` happens).
    pub id: u32,
    /// The core's CPUs (hardware threads), ascending: one without SMT, two
    /// with 2-way hyper-threading.
    pub cpus: Vec<usize>,
}

impl Topology {
    /// This machine's topology: every online CPU, including ones a cgroup
    /// cpuset forbids this process (restrict with
    /// [`restricted_to`](Topology::restricted_to) and [`usable_cpus`]).
    ///
    /// Through hwloc with the `hwloc` feature, else
    /// [`from_sysfs`](Topology::from_sysfs) on `/sys`.
    pub fn current() -> Result<Topology, Error> {
        sys::current_topology()
    }

    /// Reads the topology of the online CPUs under `sys_root` (normally
    /// `/sys`): `devices/system/cpu/online`, then each online CPU's
    /// `devices/system/cpu/cpu<N>/topology/{physical_package_id,core_id}`
    /// (and `die_id` where present, so that equal core ids on two dies of
    /// one package stay two cores).
    ///
    /// Packages and cores are ordered by their lowest CPU, which is hwloc's
    /// logical order on the machines we know of. Fails with the file that
    /// could not be read or parsed.
    pub fn from_sysfs(sys_root: &Path) -> Result<Topology, Error> {
        sys::topology_from_sysfs(sys_root)
    }

    /// A topology made of the given packages, in the given (logical) order.
    ///
    /// Each core's CPUs are sorted. A CPU listed again after its first
    /// appearance is dropped, and so are cores and packages left with no
    /// CPUs, so the result always has every CPU exactly once.
    ///
    /// ```
    /// use sweeprun_hw::topology::{Core, Package, Topology};
    /// // A Raspberry Pi 4B: one package, four cores, no SMT.
    /// let cores = (0..4).map(|n| Core { id: n, cpus: vec![n as usize] }).collect();
    /// let pi = Topology::from_packages([Package { id: 0, cores }]);
    /// assert_eq!(pi.cpus(), vec![0, 1, 2, 3]);
    /// ```
    pub fn from_packages(packages: impl IntoIterator<Item = Package>) -> Topology {
        let mut seen = HashSet::new();
        let packages = packages
            .into_iter()
            .filter_map(|package| {
                let cores: Vec<Core> = package
                    .cores
                    .into_iter()
                    .filter_map(|core| {
                        let mut cpus = core.cpus;
                        cpus.sort_unstable();
                        cpus.dedup();
                        cpus.retain(|&cpu| seen.insert(cpu));
                        (!cpus.is_empty()).then_some(Core { id: core.id, cpus })
                    })
                    .collect();
                (!cores.is_empty()).then_some(Package { id: package.id, cores })
            })
            .collect();
        Topology { packages }
    }

    /// One package whose cores have one CPU each, in the order given: what
    /// can be said about CPUs whose topology is unknown (no sysfs topology,
    /// an unsupported platform with CPUs from elsewhere).
    pub fn flat(cpus: &[usize]) -> Topology {
        let cores = cpus.iter().map(|&cpu| Core { id: u32::try_from(cpu).unwrap_or(u32::MAX), cpus: vec![cpu] });
        Topology::from_packages([Package { id: 0, cores: cores.collect() }])
    }

    /// The packages, in logical order.
    pub fn packages(&self) -> &[Package] {
        &self.packages
    }

    /// Every core with the number of its package, in logical order: the
    /// `n`-th item is logical core `n`.
    pub fn cores(&self) -> impl Iterator<Item = (usize, &Core)> {
        self.packages.iter().enumerate().flat_map(|(package, p)| p.cores.iter().map(move |core| (package, core)))
    }

    /// Every CPU, sorted ascending.
    pub fn cpus(&self) -> Vec<usize> {
        let mut cpus: Vec<usize> = self.cores().flat_map(|(_, core)| core.cpus.iter().copied()).collect();
        cpus.sort_unstable();
        cpus
    }

    /// Whether there are no CPUs at all.
    pub fn is_empty(&self) -> bool {
        self.packages.is_empty()
    }

    /// The same topology with only the given CPUs, in the same order; cores
    /// and packages left empty disappear, so logical numbers close up the
    /// way hwloc's do for CPUs a cgroup forbids. CPUs that are not in this
    /// topology are ignored.
    pub fn restricted_to(&self, cpus: &[usize]) -> Topology {
        let keep: HashSet<usize> = cpus.iter().copied().collect();
        Topology::from_packages(self.packages.iter().map(|package| {
            Package {
                id: package.id,
                cores: package
                    .cores
                    .iter()
                    .map(|core| Core {
                        id: core.id,
                        cpus: core.cpus.iter().copied().filter(|cpu| keep.contains(cpu)).collect(),
                    })
                    .collect(),
            }
        }))
    }
}

/// Largest CPU number [`parse_cpu_list`] accepts. Kernels top out at 8192
/// CPUs; the bound keeps a garbled range like `0-4000000000` from
/// allocating gigabytes.
const MAX_CPU_NUMBER: usize = 1 << 16;

/// Parses the kernel's cpulist format (`0-3,5,7-8`), as found in
/// `/sys/devices/system/cpu/{online,possible,present}` and
/// `/proc/self/status` (`Cpus_allowed_list`).
///
/// Returns the CPUs sorted ascending without duplicates, or `None` if the
/// text is malformed (including reversed ranges and numbers above 65536).
/// Surrounding whitespace, such as the trailing newline, is ignored; an
/// empty list (the kernel writes a bare newline for an empty mask) gives an
/// empty `Vec`.
///
/// ```
/// use sweeprun_hw::topology::parse_cpu_list;
/// assert_eq!(parse_cpu_list("0-2,5\n"), Some(vec![0, 1, 2, 5]));
/// assert_eq!(parse_cpu_list("3-1"), None);
/// ```
pub fn parse_cpu_list(s: &str) -> Option<Vec<usize>> {
    let s = s.trim();
    let mut cpus = Vec::new();
    if s.is_empty() {
        return Some(cpus);
    }
    for item in s.split(',') {
        let (first, last) = match item.split_once('-') {
            Some((a, b)) => (parse_cpu_number(a)?, parse_cpu_number(b)?),
            None => {
                let n = parse_cpu_number(item)?;
                (n, n)
            }
        };
        if first > last {
            return None;
        }
        cpus.extend(first..=last);
    }
    cpus.sort_unstable();
    cpus.dedup();
    Some(cpus)
}

/// One decimal CPU number: digits only (no sign, no spaces), at most
/// [`MAX_CPU_NUMBER`].
fn parse_cpu_number(s: &str) -> Option<usize> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok().filter(|&n| n <= MAX_CPU_NUMBER)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_list_single_range() {
        assert_eq!(parse_cpu_list("0-3"), Some(vec![0, 1, 2, 3]));
    }

    #[test]
    fn cpu_list_mixed_items_with_trailing_newline() {
        assert_eq!(parse_cpu_list("0-3,5,7-8\n"), Some(vec![0, 1, 2, 3, 5, 7, 8]));
    }

    #[test]
    fn cpu_list_single_cpu_and_degenerate_range() {
        assert_eq!(parse_cpu_list("0"), Some(vec![0]));
        assert_eq!(parse_cpu_list("4-4"), Some(vec![4]));
    }

    #[test]
    fn cpu_list_unordered_and_overlapping_items_are_sorted_and_deduplicated() {
        assert_eq!(parse_cpu_list("6,0-2,1"), Some(vec![0, 1, 2, 6]));
    }

    #[test]
    fn cpu_list_empty_means_no_cpus() {
        assert_eq!(parse_cpu_list(""), Some(vec![]));
        assert_eq!(parse_cpu_list("\n"), Some(vec![]));
    }

    #[test]
    fn cpu_list_malformed_is_rejected() {
        for bad in ["a", "1,,2", ",1", "1,", "-3", "1-", "3-1", "1-2-3", "1 ,2", "+1", "0x1", "1.5", "1:2", "0-3:2/4"] {
            assert_eq!(parse_cpu_list(bad), None, "{bad:?} should be rejected");
        }
    }

    #[test]
    fn cpu_list_huge_range_is_rejected_instead_of_allocated() {
        assert_eq!(parse_cpu_list("0-4000000000"), None);
        assert_eq!(parse_cpu_list("99999999999999999999999"), None);
    }

    fn core(id: u32, cpus: &[usize]) -> Core {
        Core { id, cpus: cpus.to_vec() }
    }

    #[test]
    fn from_packages_sorts_each_core_and_keeps_every_cpu_once() {
        let topology = Topology::from_packages([
            Package { id: 3, cores: vec![core(0, &[4, 0, 0]), core(1, &[1, 5])] },
            // CPU 5 again, and a core and a package left empty: dropped.
            Package { id: 7, cores: vec![core(0, &[5]), core(1, &[2, 6])] },
            Package { id: 9, cores: vec![core(0, &[])] },
        ]);
        assert_eq!(
            topology.packages(),
            [
                Package { id: 3, cores: vec![core(0, &[0, 4]), core(1, &[1, 5])] },
                Package { id: 7, cores: vec![core(1, &[2, 6])] },
            ]
        );
        assert_eq!(topology.cpus(), vec![0, 1, 2, 4, 5, 6]);
    }

    #[test]
    fn cores_are_numbered_across_packages() {
        let topology = Topology::from_packages([
            Package { id: 0, cores: vec![core(0, &[0]), core(1, &[1])] },
            Package { id: 1, cores: vec![core(0, &[2])] },
        ]);
        let numbered: Vec<(usize, usize, u32)> =
            topology.cores().enumerate().map(|(logical, (package, core))| (logical, package, core.id)).collect();
        assert_eq!(numbered, vec![(0, 0, 0), (1, 0, 1), (2, 1, 0)]);
    }

    #[test]
    fn restricted_to_closes_up_cores_and_packages() {
        let topology = Topology::from_packages([
            Package { id: 0, cores: vec![core(0, &[0, 4]), core(1, &[1, 5])] },
            Package { id: 1, cores: vec![core(0, &[2, 6]), core(1, &[3, 7])] },
        ]);
        let restricted = topology.restricted_to(&[5, 1, 3, 99]);
        assert_eq!(
            restricted.packages(),
            [Package { id: 0, cores: vec![core(1, &[1, 5])] }, Package { id: 1, cores: vec![core(1, &[3])] }]
        );
        assert!(topology.restricted_to(&[]).is_empty());
    }

    #[test]
    fn flat_is_one_package_of_single_cpu_cores() {
        let flat = Topology::flat(&[2, 0]);
        assert_eq!(flat.packages(), [Package { id: 0, cores: vec![core(2, &[2]), core(0, &[0])] }]);
        assert!(Topology::flat(&[]).is_empty());
    }

    #[cfg(target_os = "linux")]
    mod linux {
        use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
        use nix::unistd::Pid;

        use super::super::*;
        use crate::sys::affinity;
        use crate::testutil::FakeSysfs;

        /// The calling thread's CPUs (not the process's, unlike `usable_cpus`).
        fn current_thread_cpus() -> Vec<usize> {
            let set = sched_getaffinity(Pid::from_raw(0)).unwrap();
            (0..CpuSet::count()).filter(|&cpu| set.is_set(cpu).unwrap()).collect()
        }

        #[test]
        fn usable_cpus_are_nonempty_sorted_and_online() {
            let usable = usable_cpus().unwrap();
            let online = online_cpus(Path::new("/sys")).unwrap();
            assert!(!usable.is_empty());
            assert!(usable.windows(2).all(|w| w[0] < w[1]), "{usable:?}");
            for cpu in &usable {
                assert!(online.contains(cpu), "usable {cpu} not in online {online:?}");
            }
        }

        /// Writes `cpu<N>/topology/{physical_package_id,core_id}` for
        /// `(cpu, package, core)` triples, and the online list.
        fn cpu_tree(online: &str, cpus: &[(usize, i64, u32)]) -> FakeSysfs {
            let sys = FakeSysfs::new();
            sys.write("devices/system/cpu/online", &format!("{online}\n"));
            for &(cpu, package, core) in cpus {
                sys.write(
                    &format!("devices/system/cpu/cpu{cpu}/topology/physical_package_id"),
                    &format!("{package}\n"),
                );
                sys.write(&format!("devices/system/cpu/cpu{cpu}/topology/core_id"), &format!("{core}\n"));
            }
            sys
        }

        #[test]
        fn topology_of_a_pi4b_tree() {
            let sys = cpu_tree("0-3", &[(0, 0, 0), (1, 0, 1), (2, 0, 2), (3, 0, 3)]);
            // Neighbours that are not CPUs are ignored.
            sys.write("devices/system/cpu/cpufreq/policy0/scaling_cur_freq", "1500000\n");
            sys.write("devices/system/cpu/cpuidle/current_driver", "psci_idle\n");
            let cores = (0..4).map(|n| Core { id: n, cpus: vec![n as usize] }).collect();
            assert_eq!(Topology::from_sysfs(sys.root()).unwrap(), Topology::from_packages([Package { id: 0, cores }]));
        }

        // Linux numbers x86 SMT siblings far apart: the first thread of
        // every core first, then the second ones.
        #[test]
        fn topology_groups_smt_siblings_into_cores() {
            let sys = cpu_tree(
                "0-7",
                &[(0, 0, 0), (1, 0, 1), (2, 1, 0), (3, 1, 1), (4, 0, 0), (5, 0, 1), (6, 1, 0), (7, 1, 1)],
            );
            let topology = Topology::from_sysfs(sys.root()).unwrap();
            assert_eq!(
                topology.packages(),
                [
                    Package { id: 0, cores: vec![Core { id: 0, cpus: vec![0, 4] }, Core { id: 1, cpus: vec![1, 5] }] },
                    Package { id: 1, cores: vec![Core { id: 0, cpus: vec![2, 6] }, Core { id: 1, cpus: vec![3, 7] }] },
                ]
            );
        }

        #[test]
        fn topology_orders_by_lowest_cpu_not_by_id() {
            // Package and core ids as some firmware hands them out.
            let sys = cpu_tree("0-3", &[(0, 1, 8), (1, 1, 0), (2, 0, 9), (3, 0, 2)]);
            let topology = Topology::from_sysfs(sys.root()).unwrap();
            let ids: Vec<(u32, Vec<u32>)> =
                topology.packages().iter().map(|p| (p.id, p.cores.iter().map(|c| c.id).collect())).collect();
            assert_eq!(ids, vec![(1, vec![8, 0]), (0, vec![9, 2])]);
        }

        #[test]
        fn topology_covers_online_cpus_only() {
            // CPU 1 is offline; it may keep its topology files or not.
            let sys = cpu_tree("0,2", &[(0, 0, 0), (1, 0, 1), (2, 0, 2)]);
            assert_eq!(Topology::from_sysfs(sys.root()).unwrap().cpus(), vec![0, 2]);
        }

        #[test]
        fn topology_keeps_equal_core_ids_on_two_dies_apart() {
            let sys = cpu_tree("0-1", &[(0, 0, 0), (1, 0, 0)]);
            sys.write("devices/system/cpu/cpu0/topology/die_id", "0\n");
            sys.write("devices/system/cpu/cpu1/topology/die_id", "1\n");
            let topology = Topology::from_sysfs(sys.root()).unwrap();
            assert_eq!(topology.packages()[0].cores.len(), 2, "{topology:?}");
        }

        #[test]
        fn topology_without_a_package_id_is_one_package() {
            let sys = cpu_tree("0-1", &[(0, -1, 0), (1, -1, 1)]);
            let topology = Topology::from_sysfs(sys.root()).unwrap();
            assert_eq!(topology.packages().len(), 1);
            assert_eq!(topology.packages()[0].id, 0);
        }

        #[test]
        fn topology_garbled_core_id_names_the_file() {
            let sys = cpu_tree("0", &[(0, 0, 0)]);
            sys.write("devices/system/cpu/cpu0/topology/core_id", "-3\n");
            let err = Topology::from_sysfs(sys.root()).unwrap_err();
            assert!(matches!(err, Error::Parse { .. }), "{err:?}");
            assert!(err.to_string().contains("cpu0/topology/core_id"), "{err}");
        }

        #[test]
        fn topology_missing_file_is_an_io_error_naming_it() {
            let sys = cpu_tree("0-1", &[(0, 0, 0)]);
            let err = Topology::from_sysfs(sys.root()).unwrap_err();
            assert!(matches!(err, Error::Io { .. }), "{err:?}");
            assert!(err.to_string().ends_with("cpu1/topology/physical_package_id"), "{err}");
        }

        #[test]
        fn topology_of_this_machine_has_every_usable_cpu() {
            let topology = Topology::current().unwrap();
            let all = topology.cpus();
            for cpu in usable_cpus().unwrap() {
                assert!(all.contains(&cpu), "usable {cpu} not in {topology:?}");
            }
        }

        // The public functions against the sched_{get,set}affinity and sysfs
        // path. Without `hwloc` both sides are the same code and this only
        // checks the plumbing; with it, it holds hwloc to the same answers.
        // Pinning happens in a thread of its own, so that the harness's
        // other threads keep their masks.
        #[test]
        fn backend_answers_match_the_sched_and_sysfs_path() {
            assert_eq!(usable_cpus().unwrap(), affinity::usable_cpus().unwrap());
            assert_eq!(Topology::current().unwrap(), Topology::from_sysfs(Path::new("/sys")).unwrap());
            std::thread::spawn(|| {
                let original = sched_getaffinity(Pid::from_raw(0)).unwrap();
                assert_eq!(current_binding().unwrap(), affinity::current_binding().unwrap());
                for cpu in usable_cpus().unwrap() {
                    pin_current_process(cpu).unwrap();
                    assert_eq!(affinity::current_binding().unwrap(), vec![cpu]);
                    assert_eq!(current_binding().unwrap(), vec![cpu]);
                    affinity::pin_current_process(cpu).unwrap();
                    assert_eq!(current_binding().unwrap(), vec![cpu]);
                }
                sched_setaffinity(Pid::from_raw(0), &original).unwrap();
                assert_eq!(current_binding().unwrap(), affinity::current_binding().unwrap());
            })
            .join()
            .unwrap();
            // Pinning a thread leaves the process's (main thread's) mask alone.
            assert_eq!(usable_cpus().unwrap(), affinity::usable_cpus().unwrap());
        }

        #[test]
        fn current_binding_is_the_calling_threads_mask() {
            std::thread::spawn(|| assert_eq!(current_binding().unwrap(), current_thread_cpus())).join().unwrap();
        }

        #[test]
        fn online_cpus_reads_the_fake_root() {
            let sys = FakeSysfs::new();
            sys.write("devices/system/cpu/online", "0-3\n");
            assert_eq!(online_cpus(sys.root()).unwrap(), vec![0, 1, 2, 3]);
        }

        #[test]
        fn online_cpus_garbled_names_the_file() {
            let sys = FakeSysfs::new();
            sys.write("devices/system/cpu/online", "zero-three\n");
            let err = online_cpus(sys.root()).unwrap_err();
            assert!(matches!(err, Error::Parse { .. }), "{err:?}");
            let path = sys.root().join("devices/system/cpu/online");
            assert!(err.to_string().contains(&path.display().to_string()), "{err}");
        }

        #[test]
        fn online_cpus_missing_file_is_an_io_error_naming_it() {
            let sys = FakeSysfs::new();
            let err = online_cpus(sys.root()).unwrap_err();
            assert!(matches!(err, Error::Io { .. }), "{err:?}");
            assert!(err.to_string().ends_with("devices/system/cpu/online"), "{err}");
        }

        // Affinity is per thread, so pinning happens in a thread of its own:
        // the test harness's other threads keep their masks whatever happens.
        #[test]
        fn pin_round_trip_in_a_dedicated_thread() {
            let first = usable_cpus().unwrap()[0];
            std::thread::spawn(move || {
                let original = sched_getaffinity(Pid::from_raw(0)).unwrap();
                let original_cpus = current_thread_cpus();

                pin_current_process(first).unwrap();
                assert_eq!(current_thread_cpus(), vec![first]);

                sched_setaffinity(Pid::from_raw(0), &original).unwrap();
                assert_eq!(current_thread_cpus(), original_cpus);
            })
            .join()
            .unwrap();
        }

        #[test]
        fn pin_to_a_cpu_that_does_not_exist_fails() {
            let beyond_online = online_cpus(Path::new("/sys")).unwrap().last().unwrap() + 1;
            for cpu in [usize::MAX, beyond_online] {
                let err = std::thread::spawn(move || pin_current_process(cpu).unwrap_err()).join().unwrap();
                assert!(matches!(err, Error::Os { .. }), "CPU {cpu}: {err:?}");
            }
        }

        // What a launcher may do: pin the child after fork, before it execs
        // the rank. The child reports its own mask from /proc. Not with
        // `hwloc`, whose pinning allocates and so is not fork-safe.
        #[cfg(not(feature = "hwloc"))]
        #[test]
        fn pin_works_in_a_freshly_spawned_child() {
            use std::io::{self, Read};
            use std::os::unix::process::CommandExt;
            use std::process::{Command, Stdio};

            let last = *usable_cpus().unwrap().last().unwrap();
            let mut command = Command::new("cat");
            command.arg("/proc/self/status").stdout(Stdio::piped());
            // SAFETY: the closure runs between fork and exec, where only
            // async-signal-safe work is allowed. pin_current_process makes
            // one sched_setaffinity call on a stack-allocated CpuSet and
            // builds its error without allocating; the mapped io::Error is a
            // plain ErrorKind, which does not allocate either.
            unsafe {
                command.pre_exec(move || pin_current_process(last).map_err(|_| io::Error::from(io::ErrorKind::Other)));
            }
            let mut child = command.spawn().unwrap();
            let mut status = String::new();
            child.stdout.take().unwrap().read_to_string(&mut status).unwrap();
            assert!(child.wait().unwrap().success());

            let allowed = status
                .lines()
                .find_map(|line| line.strip_prefix("Cpus_allowed_list:"))
                .expect("Cpus_allowed_list in /proc/self/status");
            assert_eq!(parse_cpu_list(allowed), Some(vec![last]));
        }
    }
}
