//! Which CPUs a sweep may use, and pinning a rank process to one of them.
//!
//! Ranks are processes, one per usable core. The launcher asks
//! [`usable_cpus`] how many ranks to start (this respects `taskset` and
//! cgroup cpusets, unlike counting `/sys` entries), and each rank calls
//! [`pin_current_process`] before it starts working.

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
/// It does not allocate, so it may also be called in a freshly spawned
/// child between fork and exec (`std::os::unix::process::CommandExt::pre_exec`).
///
/// Fails with [`Error::Os`] if `cpu` is not one this process may use (see
/// [`usable_cpus`]) or does not exist.
pub fn pin_current_process(cpu: usize) -> Result<(), Error> {
    sys::pin_current_process(cpu)
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

    #[cfg(target_os = "linux")]
    mod linux {
        use std::io::{self, Read};
        use std::os::unix::process::CommandExt;
        use std::process::{Command, Stdio};

        use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
        use nix::unistd::Pid;

        use super::super::*;
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
            let err = std::thread::spawn(|| pin_current_process(usize::MAX).unwrap_err()).join().unwrap();
            assert!(matches!(err, Error::Os { .. }), "{err:?}");
        }

        // What a launcher does: pin the child after fork, before it execs
        // the rank. The child reports its own mask from /proc.
        #[test]
        fn pin_works_in_a_freshly_spawned_child() {
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
