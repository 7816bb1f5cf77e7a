//! Where the ranks on this node run, and mpirun's binding report.
//!
//! [`place`] decides, from the [`Topology`] and the CPUs this process may
//! use, which CPU each local rank is pinned to, with Open MPI 4.1's
//! `--bind-to` and `--map-by` meanings. It is a pure function: the launcher
//! reads the machine ([`Topology::current`], [`usable_cpus`]) and passes it
//! in, so every placement rule is unit-tested on synthetic machines.
//!
//! [`report_binding`] renders one rank's binding the way
//! `mpirun --report-bindings` prints it, from the CPUs the rank reads back
//! with [`current_binding`].
//!
//! [`usable_cpus`]: crate::topology::usable_cpus
//! [`current_binding`]: crate::topology::current_binding

use std::collections::HashSet;
use std::fmt::Write;

use crate::topology::{Core, Topology};

/// What a rank is bound to (`--bind-to`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindTo {
    /// One CPU per rank, when there are at least as many CPUs as ranks.
    Core,
    /// Nothing: the OS scheduler places ranks.
    None,
}

/// In which order ranks take the CPUs (`--map-by`), with Open MPI 4.1's
/// meanings on one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapBy {
    /// Fill the cores in logical order: package 0's cores first, then
    /// package 1's. On SMT machines every core gets a rank before any core
    /// gets a second one on its next hardware thread.
    Core,
    /// Round robin across packages (sockets): rank 0 on package 0, rank 1
    /// on package 1, ..., each package filling its own cores as with
    /// [`MapBy::Core`]. On a one-package machine (a Pi) this is
    /// [`MapBy::Core`].
    Socket,
    /// Round robin across nodes. The launcher places only this node's
    /// ranks, which all go on this node, so on it this is [`MapBy::Core`].
    Node,
}

/// Where each local rank runs, from [`place`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// For rank `i`, the CPU to pin it to, or `None` to leave it unpinned.
    pub cpus: Vec<Option<usize>>,
    /// More ranks than usable CPUs. With [`BindTo::Core`] this is why every
    /// rank is unpinned, which the launcher should warn about; with
    /// [`BindTo::None`] it is for information. Never set when no usable CPU
    /// is known (then nothing can be said).
    pub oversubscribed: bool,
}

/// Decides where `ranks` local ranks run.
///
/// `topology` is normally [`Topology::current`], `usable_cpus` the
/// launcher's [`usable_cpus`](crate::topology::usable_cpus) (ranks inherit
/// the launcher's mask, so only those CPUs can be pinned to). Usable CPUs
/// the topology does not know still count and come last, in ascending
/// order; pass [`Topology::flat`] of them when no topology could be read.
///
/// With [`BindTo::Core`] and no more ranks than usable CPUs, rank `i` gets
/// the `i`-th CPU of the order `map_by` describes. With more ranks than
/// CPUs, every rank is unpinned and [`Placement::oversubscribed`] is set:
/// mpirun would refuse to start, a sweep still runs, only slower.
///
/// ```
/// use sweeprun_hw::placement::{place, BindTo, MapBy};
/// use sweeprun_hw::topology::Topology;
///
/// let pi = Topology::flat(&[0, 1, 2, 3]);
/// let placement = place(&pi, &[0, 1, 2, 3], 2, BindTo::Core, MapBy::Core);
/// assert_eq!(placement.cpus, vec![Some(0), Some(1)]);
/// assert!(!placement.oversubscribed);
/// ```
pub fn place(topology: &Topology, usable_cpus: &[usize], ranks: usize, bind_to: BindTo, map_by: MapBy) -> Placement {
    let order = cpu_order(topology, usable_cpus, map_by);
    let oversubscribed = !order.is_empty() && ranks > order.len();
    let cpus = if bind_to == BindTo::Core && ranks <= order.len() {
        order.into_iter().take(ranks).map(Some).collect()
    } else {
        vec![None; ranks]
    };
    Placement { cpus, oversubscribed }
}

/// Every usable CPU once, in the order ranks take them.
fn cpu_order(topology: &Topology, usable_cpus: &[usize], map_by: MapBy) -> Vec<usize> {
    let usable = topology.restricted_to(usable_cpus);
    let mut order = match map_by {
        MapBy::Core | MapBy::Node => spread_over_cores(&usable.cores().map(|(_, core)| core).collect::<Vec<_>>()),
        MapBy::Socket => {
            let per_package: Vec<Vec<usize>> = usable
                .packages()
                .iter()
                .map(|package| spread_over_cores(&package.cores.iter().collect::<Vec<_>>()))
                .collect();
            round_robin(&per_package)
        }
    };
    let known: HashSet<usize> = order.iter().copied().collect();
    let mut unknown: Vec<usize> = usable_cpus.iter().copied().filter(|cpu| !known.contains(cpu)).collect();
    unknown.sort_unstable();
    unknown.dedup();
    order.extend(unknown);
    order
}

/// The first hardware thread of every core in order, then the second of
/// every core that has one, and so on: ranks get cores of their own before
/// they share one.
fn spread_over_cores(cores: &[&Core]) -> Vec<usize> {
    let threads = cores.iter().map(|core| core.cpus.len()).max().unwrap_or(0);
    (0..threads).flat_map(|hwt| cores.iter().filter_map(move |core| core.cpus.get(hwt).copied())).collect()
}

/// One item from each list in turn, skipping lists that ran out.
fn round_robin(lists: &[Vec<usize>]) -> Vec<usize> {
    let longest = lists.iter().map(Vec::len).max().unwrap_or(0);
    (0..longest).flat_map(|i| lists.iter().filter_map(move |list| list.get(i).copied())).collect()
}

/// One line of Open MPI 4.1's `--report-bindings` for rank `rank`, bound to
/// `bound_cpus`, as process `pid` on `host` reports it (no trailing
/// newline), e.g.
///
/// ```text
/// [node1:01234] MCW rank 3 bound to socket 0[core 3[hwt 0]]: [./././B]
/// [node1:01234] MCW rank 4 is not bound (or bound to all available processors)
/// ```
///
/// The part before the colon names each core that has a bound CPU: its
/// package's logical number, its logical core number (counted across
/// packages) and the bound hardware threads as ranges (`hwt 0-1`). The map
/// after it has one `[...]` per package, cores separated by `/`, one
/// character per hardware thread: `B` bound, `.` not. A rank bound to no
/// CPU, or to every CPU of `topology`, is "not bound"; bound CPUs that
/// `topology` does not have are left out, as Open MPI does.
///
/// mpirun's topology leaves out CPUs a cgroup cpuset forbids, so an
/// unpinned rank (which may run on all the others) reads as not bound. To
/// match it, pass [`Topology::current`] restricted to the launcher's
/// [`usable_cpus`](crate::topology::usable_cpus) with
/// [`Topology::restricted_to`]. `pid` is printed as mpirun prints it, at
/// least 5 digits; mpirun prints its daemon's pid, a rank reporting itself
/// may print its own.
pub fn report_binding(host: &str, pid: u32, rank: usize, topology: &Topology, bound_cpus: &[usize]) -> String {
    // Open MPI 4.1 builds this line in orte/mca/rtc/hwloc/rtc_hwloc.c (and
    // orte/mca/ess/base/ess_base_fns.c for a rank reporting itself):
    // opal_output(0, "MCW rank %d bound to %s: %s", ...) with the two halves
    // from opal_hwloc_base_cset2str and opal_hwloc_base_cset2mapstr
    // (opal/mca/hwloc/base/hwloc_base_util.c), and opal_output's "[%s:%05d] "
    // prefix of host name and pid (opal/util/output.c).
    let mut line = format!("[{host}:{pid:05}] MCW rank {rank}");
    let bound: HashSet<usize> = bound_cpus.iter().copied().collect();
    let all_cpus = topology.cpus();
    if bound.is_empty() || all_cpus.iter().all(|cpu| bound.contains(cpu)) {
        line.push_str(" is not bound (or bound to all available processors)");
        return line;
    }
    line.push_str(" bound to ");
    let mut first = true;
    for (logical_core, (package, core)) in topology.cores().enumerate() {
        let threads: Vec<usize> =
            core.cpus.iter().enumerate().filter(|(_, cpu)| bound.contains(cpu)).map(|(hwt, _)| hwt).collect();
        if threads.is_empty() {
            continue;
        }
        if !first {
            line.push_str(", ");
        }
        first = false;
        // Writing to a String cannot fail.
        let _ = write!(line, "socket {package}[core {logical_core}[hwt {}]]", ranges(&threads));
    }
    line.push_str(": ");
    for package in topology.packages() {
        line.push('[');
        for (n, core) in package.cores.iter().enumerate() {
            if n > 0 {
                line.push('/');
            }
            line.extend(core.cpus.iter().map(|cpu| if bound.contains(cpu) { 'B' } else { '.' }));
        }
        line.push(']');
    }
    line
}

/// Ascending numbers as ranges, the way Open MPI's `bitmap2rangestr` writes
/// hardware threads: `[0, 1, 3]` is `0-1,3`.
fn ranges(sorted: &[usize]) -> String {
    let mut text = String::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        if !text.is_empty() {
            text.push(',');
        }
        // Writing to a String cannot fail.
        let _ = if start == end { write!(text, "{start}") } else { write!(text, "{start}-{end}") };
        i += 1;
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::Package;

    /// `packages` x `cores` x `threads`, numbered the way Linux numbers x86
    /// CPUs: the first hardware thread of every core (package by package),
    /// then the second of every core, so core `c` (counted across packages)
    /// holds CPUs `c`, `c + cores in all`, ...
    fn machine(packages: usize, cores: usize, threads: usize) -> Topology {
        let all_cores = packages * cores;
        Topology::from_packages((0..packages).map(|p| {
            Package {
                id: u32::try_from(p).unwrap(),
                cores: (0..cores)
                    .map(|c| {
                        let core = p * cores + c;
                        Core {
                            id: u32::try_from(c).unwrap(),
                            cpus: (0..threads).map(|t| core + t * all_cores).collect(),
                        }
                    })
                    .collect(),
            }
        }))
    }

    fn pi4b() -> Topology {
        machine(1, 4, 1)
    }

    fn pinned(cpus: &[usize]) -> Vec<Option<usize>> {
        cpus.iter().copied().map(Some).collect()
    }

    #[test]
    fn synthetic_machines_have_the_intended_shape() {
        assert_eq!(pi4b().cpus(), vec![0, 1, 2, 3]);
        let smt = machine(2, 4, 2);
        assert_eq!(smt.packages()[1].cores[0].cpus, vec![4, 12]);
        assert_eq!(smt.cores().count(), 8);
    }

    #[test]
    fn pi_fills_cores_in_order() {
        for map_by in [MapBy::Core, MapBy::Socket, MapBy::Node] {
            let placement = place(&pi4b(), &[0, 1, 2, 3], 3, BindTo::Core, map_by);
            assert_eq!(placement, Placement { cpus: pinned(&[0, 1, 2]), oversubscribed: false }, "{map_by:?}");
        }
        let all = place(&pi4b(), &[0, 1, 2, 3], 4, BindTo::Core, MapBy::Core);
        assert_eq!(all.cpus, pinned(&[0, 1, 2, 3]));
    }

    #[test]
    fn more_ranks_than_cpus_leaves_every_rank_unpinned_and_says_so() {
        let placement = place(&pi4b(), &[0, 1, 2, 3], 5, BindTo::Core, MapBy::Core);
        assert_eq!(placement, Placement { cpus: vec![None; 5], oversubscribed: true });
    }

    #[test]
    fn bind_to_none_pins_nothing_but_still_tells_oversubscription() {
        let fits = place(&pi4b(), &[0, 1, 2, 3], 4, BindTo::None, MapBy::Core);
        assert_eq!(fits, Placement { cpus: vec![None; 4], oversubscribed: false });
        let over = place(&pi4b(), &[0, 1, 2, 3], 6, BindTo::None, MapBy::Socket);
        assert_eq!(over, Placement { cpus: vec![None; 6], oversubscribed: true });
    }

    #[test]
    fn only_usable_cpus_are_used() {
        let placement = place(&pi4b(), &[1, 3], 2, BindTo::Core, MapBy::Core);
        assert_eq!(placement.cpus, pinned(&[1, 3]));
        let over = place(&pi4b(), &[1, 3], 3, BindTo::Core, MapBy::Core);
        assert_eq!(over, Placement { cpus: vec![None; 3], oversubscribed: true });
    }

    #[test]
    fn two_sockets_by_core_fill_socket_0_first() {
        let placement = place(&machine(2, 4, 1), &(0..8).collect::<Vec<_>>(), 6, BindTo::Core, MapBy::Core);
        assert_eq!(placement.cpus, pinned(&[0, 1, 2, 3, 4, 5]));
    }

    #[test]
    fn two_sockets_by_socket_alternate() {
        let placement = place(&machine(2, 4, 1), &(0..8).collect::<Vec<_>>(), 5, BindTo::Core, MapBy::Socket);
        assert_eq!(placement.cpus, pinned(&[0, 4, 1, 5, 2]));
    }

    #[test]
    fn map_by_node_places_like_map_by_core_on_this_node() {
        let cpus: Vec<usize> = (0..16).collect();
        let smt = machine(2, 4, 2);
        assert_eq!(
            place(&smt, &cpus, 11, BindTo::Core, MapBy::Node),
            place(&smt, &cpus, 11, BindTo::Core, MapBy::Core)
        );
    }

    // Some BIOSes number CPUs alternating between sockets (0, 2, 4, ... on
    // socket 0): logical order, not CPU numbers, decides.
    #[test]
    fn sockets_numbered_alternately_still_fill_by_logical_order() {
        let interleaved = Topology::from_packages((0..2).map(|p| Package {
            id: p,
            cores: (0..4).map(|c| Core { id: c, cpus: vec![(2 * c + p) as usize] }).collect(),
        }));
        let cpus: Vec<usize> = (0..8).collect();
        assert_eq!(place(&interleaved, &cpus, 8, BindTo::Core, MapBy::Core).cpus, pinned(&[0, 2, 4, 6, 1, 3, 5, 7]));
        assert_eq!(place(&interleaved, &cpus, 4, BindTo::Core, MapBy::Socket).cpus, pinned(&[0, 1, 2, 3]));
    }

    #[test]
    fn smt_gives_every_core_a_rank_before_any_core_gets_two() {
        // 1 socket x 4 cores x 2 threads: core c is CPUs c and c + 4.
        let smt = machine(1, 4, 2);
        let cpus: Vec<usize> = (0..8).collect();
        assert_eq!(place(&smt, &cpus, 4, BindTo::Core, MapBy::Core).cpus, pinned(&[0, 1, 2, 3]));
        assert_eq!(place(&smt, &cpus, 6, BindTo::Core, MapBy::Core).cpus, pinned(&[0, 1, 2, 3, 4, 5]));
        assert!(place(&smt, &cpus, 9, BindTo::Core, MapBy::Core).oversubscribed);
    }

    #[test]
    fn smt_two_sockets_by_socket() {
        // Socket 0: cores 0-3 = CPUs {0,8} {1,9} {2,10} {3,11}; socket 1: {4,12} ... {7,15}.
        let smt = machine(2, 4, 2);
        let cpus: Vec<usize> = (0..16).collect();
        assert_eq!(place(&smt, &cpus, 4, BindTo::Core, MapBy::Socket).cpus, pinned(&[0, 4, 1, 5]));
        let all = place(&smt, &cpus, 16, BindTo::Core, MapBy::Socket).cpus;
        assert_eq!(all, pinned(&[0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15]));
    }

    #[test]
    fn a_socket_that_runs_out_is_skipped() {
        // Socket 0 keeps one usable CPU, socket 1 all four.
        let placement = place(&machine(2, 4, 1), &[0, 4, 5, 6, 7], 5, BindTo::Core, MapBy::Socket);
        assert_eq!(placement.cpus, pinned(&[0, 4, 5, 6, 7]));
    }

    #[test]
    fn usable_cpus_the_topology_lacks_come_last() {
        let placement = place(&pi4b(), &[9, 1, 0, 8, 9], 4, BindTo::Core, MapBy::Core);
        assert_eq!(placement.cpus, pinned(&[0, 1, 8, 9]));
    }

    #[test]
    fn no_known_cpus_means_unpinned_without_claiming_oversubscription() {
        let placement = place(&Topology::flat(&[]), &[], 2, BindTo::Core, MapBy::Core);
        assert_eq!(placement, Placement { cpus: vec![None; 2], oversubscribed: false });
    }

    #[test]
    fn zero_ranks_place_nothing() {
        assert_eq!(
            place(&pi4b(), &[0, 1, 2, 3], 0, BindTo::Core, MapBy::Core),
            Placement { cpus: vec![], oversubscribed: false }
        );
    }

    // The expected lines below are verbatim `mpirun --report-bindings`
    // output, reproduced on synthetic machines of the same shape. The format
    // code (opal_hwloc_base_cset2str / cset2mapstr and opal_output's
    // "[%s:%05d] " prefix) is the same from Open MPI 1.7 through 4.1.

    // Open MPI 4.1 (HPC-X 2.11) on an Azure HB120rs_v2 node, 2 sockets x 60
    // cores, from the README of github.com/edwardsp/hpc-on-aks.
    #[test]
    fn report_matches_open_mpi_4_1_on_2_sockets_of_60_cores() {
        let expected = "[mpi-pod1:00232] MCW rank 0 bound to socket 0[core 0[hwt 0]]: \
            [B/././././././././././././././././././././././././././././././././././././././././././././././././././././././././././.]\
            [./././././././././././././././././././././././././././././././././././././././././././././././././././././././././././.]";
        let node = machine(2, 60, 1);
        assert_eq!(report_binding("mpi-pod1", 232, 0, &node, &[0]), expected);
    }

    // Open MPI 3.1.1 on a 2-core VM, from buildtest's MPI docs
    // (github.com/buildtesters/buildtest, docs/build_subcommand/mpi.rst).
    #[test]
    fn report_matches_open_mpi_on_one_socket_of_two_cores() {
        let vm = machine(1, 2, 1);
        assert_eq!(
            report_binding("buildtest", 17659, 0, &vm, &[0]),
            "[buildtest:17659] MCW rank 0 bound to socket 0[core 0[hwt 0]]: [B/.]"
        );
        assert_eq!(
            report_binding("buildtest", 17659, 1, &vm, &[1]),
            "[buildtest:17659] MCW rank 1 bound to socket 0[core 1[hwt 0]]: [./B]"
        );
    }

    // The rest are from reports on the Open MPI users mailing list (archive:
    // github.com/open-mpi/ompi-www, community/lists/users/), 2013-2015, Open
    // MPI 1.7-1.10; the archive wraps long lines, joined again here.

    // One socket of four cores, as on a Pi 4B (2014).
    #[test]
    fn report_matches_open_mpi_on_one_socket_of_four_cores() {
        assert_eq!(
            report_binding("host3", 7134, 0, &pi4b(), &[0]),
            "[host3:07134] MCW rank 0 bound to socket 0[core 0[hwt 0]]: [B/././.]"
        );
    }

    // Two sockets of four cores, two cores per rank (2013, -cpus-per-proc 2):
    // core numbers count across sockets.
    #[test]
    fn report_matches_open_mpi_for_two_cores_on_the_second_socket() {
        assert_eq!(
            report_binding("node05.cluster", 21399, 5, &machine(2, 4, 1), &[4, 5]),
            "[node05.cluster:21399] MCW rank 5 bound to socket 1[core 4[hwt 0]], socket 1[core 5[hwt 0]]: \
             [./././.][B/B/./.]"
        );
    }

    // Four sockets of eight cores (2013, magny-cours).
    #[test]
    fn report_matches_open_mpi_on_four_sockets() {
        assert_eq!(
            report_binding("node03.cluster", 15282, 6, &machine(4, 8, 1), &[24]),
            "[node03.cluster:15282] MCW rank 6 bound to socket 3[core 24[hwt 0]]: \
             [./././././././.][./././././././.][./././././././.][B/././././././.]"
        );
    }

    // Two sockets of six cores with two hardware threads each, bound to a
    // whole core (2015, Open MPI 1.8).
    #[test]
    fn report_matches_open_mpi_for_a_whole_smt_core() {
        let node = machine(2, 6, 2);
        // Core 7 is CPUs 7 and 19.
        assert_eq!(
            report_binding("bend001", 24667, 6, &node, &[7, 19]),
            "[bend001:24667] MCW rank 6 bound to socket 1[core 7[hwt 0-1]]: [../../../../../..][../BB/../../../..]"
        );
    }

    // Two sockets of eight cores with two hardware threads, bound to one
    // thread (2013, --bind-to hwthread).
    #[test]
    fn report_matches_open_mpi_for_one_thread_of_an_smt_core() {
        assert_eq!(
            report_binding("svbu-mpi058", 23916, 3, &machine(2, 8, 2), &[3]),
            "[svbu-mpi058:23916] MCW rank 3 bound to socket 0[core 3[hwt 0]]: \
             [../../../B./../../../..][../../../../../../../..]"
        );
    }

    // Open MPI 1.10.1 with --bind-to none (2015); the string itself is
    // unchanged in 4.1's orte/mca/rtc/hwloc/rtc_hwloc.c.
    #[test]
    fn report_matches_open_mpi_for_an_unbound_rank() {
        let expected =
            "[c2613.tusker.hcc.unl.edu:12049] MCW rank 0 is not bound (or bound to all available processors)";
        let node = machine(2, 8, 1);
        let all: Vec<usize> = (0..16).collect();
        assert_eq!(report_binding("c2613.tusker.hcc.unl.edu", 12049, 0, &node, &all), expected);
        assert_eq!(report_binding("c2613.tusker.hcc.unl.edu", 12049, 0, &node, &[]), expected);
    }

    #[test]
    fn report_of_a_rank_on_the_usable_part_of_a_restricted_machine() {
        // The launcher may use CPUs 1-3 only: on that view, 1-3 is "all".
        let usable = pi4b().restricted_to(&[1, 2, 3]);
        assert_eq!(
            report_binding("pi", 4321, 0, &usable, &[1, 2, 3]),
            "[pi:04321] MCW rank 0 is not bound (or bound to all available processors)"
        );
        assert_eq!(
            report_binding("pi", 4321, 1, &usable, &[2]),
            "[pi:04321] MCW rank 1 bound to socket 0[core 1[hwt 0]]: [./B/.]"
        );
    }

    #[test]
    fn report_pads_the_pid_to_five_digits_only() {
        let line = report_binding("n", 1234567, 0, &pi4b(), &[1]);
        assert!(line.starts_with("[n:1234567] MCW rank 0 bound to socket 0[core 1[hwt 0]]"), "{line}");
    }

    #[test]
    fn hardware_threads_are_written_as_ranges() {
        assert_eq!(ranges(&[0]), "0");
        assert_eq!(ranges(&[0, 1]), "0-1");
        assert_eq!(ranges(&[0, 2]), "0,2");
        assert_eq!(ranges(&[0, 1, 3, 5, 6, 7]), "0-1,3,5-7");
        // A 4-way SMT core (POWER) bound to threads 1 and 2.
        let power = Topology::from_packages([Package { id: 0, cores: vec![Core { id: 0, cpus: vec![0, 1, 2, 3] }] }]);
        assert_eq!(
            report_binding("p9", 99999, 0, &power, &[1, 2]),
            "[p9:99999] MCW rank 0 bound to socket 0[core 0[hwt 1-2]]: [.BB.]"
        );
    }
}
