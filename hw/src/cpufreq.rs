//! cpufreq policies and the clock cap actuator.
//!
//! A policy (`<sys_root>/devices/system/cpu/cpufreq/policy<N>`) is a group
//! of CPUs that share one clock; `N` is its lowest CPU. A Pi 4B has one,
//! `policy0`, for CPUs 0-3, with the steps 600000, 750000, 1000000 and
//! 1500000 kHz. Writing a policy's `scaling_max_freq` caps the clock the
//! governor may ask for: [`ClockCap`] does that and undoes it.
//!
//! The per-CPU view (`cpu<N>/cpufreq`) is [`crate::thermal::cpu_freqs`].

use std::path::{Path, PathBuf};

use crate::{sys, Error};

/// One `<sys_root>/devices/system/cpu/cpufreq/policy<index>`. Frequencies
/// are in kHz, as the kernel writes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpufreqPolicy {
    /// The `N` in `policyN` (the policy's lowest CPU).
    pub index: u32,
    /// The online CPUs the policy drives (`affected_cpus`, or
    /// `related_cpus` when the driver has no `affected_cpus`), ascending.
    pub cpus: Vec<usize>,
    /// `scaling_cur_freq`: the clock the kernel *requested*. A Pi's
    /// firmware may run the cores slower while it throttles (see
    /// [`crate::mailbox::FirmwareSample::arm_clock_hz`]).
    pub cur_khz: u64,
    /// `scaling_min_freq`, if present.
    pub min_khz: Option<u64>,
    /// `scaling_max_freq`, if present: the cap [`ClockCap`] writes.
    pub max_khz: Option<u64>,
    /// `cpuinfo_min_freq`, if present: the lowest clock the hardware runs.
    pub hw_min_khz: Option<u64>,
    /// `cpuinfo_max_freq`, if present: the highest clock the hardware runs.
    pub hw_max_khz: Option<u64>,
    /// `scaling_available_frequencies`, ascending; empty when the driver
    /// has no fixed steps (e.g. `intel_pstate`).
    pub available_khz: Vec<u64>,
}

/// Reads every cpufreq policy under `<sys_root>/devices/system/cpu/cpufreq`,
/// sorted by index.
///
/// No cpufreq directory (no driver, as in most VMs) gives an empty `Vec`.
/// A missing `scaling_cur_freq`, or a file that cannot be parsed, is an
/// error naming the file; the optional files give `None` or an empty list.
pub fn cpufreq_policies(sys_root: &Path) -> Result<Vec<CpufreqPolicy>, Error> {
    sys::cpufreq_policies(sys_root)
}

impl CpufreqPolicy {
    /// The `scaling_max_freq` value that caps this policy at `mhz`: the
    /// highest available frequency that is at most `mhz`, or the lowest
    /// available one when all are higher (the cap cannot go below it).
    ///
    /// Without a list of available frequencies, `mhz` itself, kept within
    /// `cpuinfo_min_freq..=cpuinfo_max_freq` where those are known.
    pub fn cap_khz(&self, mhz: u32) -> u64 {
        let wanted = u64::from(mhz) * 1000;
        if let Some(&lowest) = self.available_khz.first() {
            return self.available_khz.iter().copied().filter(|&khz| khz <= wanted).max().unwrap_or(lowest);
        }
        let wanted = self.hw_max_khz.map_or(wanted, |max| wanted.min(max));
        self.hw_min_khz.map_or(wanted, |min| wanted.max(min))
    }
}

/// What [`ClockCap::cap_mhz`] wrote to one policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppliedCap {
    /// The policy's index (`policyN`).
    pub policy: u32,
    /// The value written to its `scaling_max_freq`, in kHz.
    pub khz: u64,
}

/// The clock-cap actuator: writes `scaling_max_freq` of every cpufreq
/// policy under a sysfs root, and puts back what was there before.
///
/// The first [`cap_mhz`](Self::cap_mhz) remembers each policy's
/// `scaling_max_freq`; later caps (tighter or looser) keep those originals.
/// [`undo`](Self::undo) writes them back, and so does dropping the
/// `ClockCap`, so an agent that exits or panics does not leave the node
/// slow. Writing `/sys` needs root.
#[derive(Debug)]
pub struct ClockCap {
    sys_root: PathBuf,
    /// `scaling_max_freq` files this cap has changed, with their values
    /// before the first change, in policy order.
    originals: Vec<(PathBuf, u64)>,
}

impl ClockCap {
    /// A cap on the policies under `sys_root` (normally `/sys`). Nothing is
    /// read or written until [`cap_mhz`](Self::cap_mhz).
    pub fn new(sys_root: impl Into<PathBuf>) -> ClockCap {
        ClockCap { sys_root: sys_root.into(), originals: Vec::new() }
    }

    /// Caps every policy at `mhz` (see [`CpufreqPolicy::cap_khz`] for the
    /// value chosen) and returns what was written, by policy.
    ///
    /// Errors name the file. A failure part-way leaves the policies already
    /// written capped, and remembered, so [`undo`](Self::undo) still
    /// restores them. No policy at all is [`Error::Unsupported`]: a cap
    /// that cannot act must not look like one that did.
    pub fn cap_mhz(&mut self, mhz: u32) -> Result<Vec<AppliedCap>, Error> {
        let policies = cpufreq_policies(&self.sys_root)?;
        if policies.is_empty() {
            return Err(Error::Unsupported("capping the CPU clock without cpufreq policies"));
        }
        let mut applied = Vec::with_capacity(policies.len());
        for policy in &policies {
            let path =
                self.sys_root.join(format!("devices/system/cpu/cpufreq/policy{}/scaling_max_freq", policy.index));
            if !self.originals.iter().any(|(p, _)| *p == path) {
                let Some(original) = policy.max_khz else {
                    return Err(Error::Io { path, source: std::io::ErrorKind::NotFound.into() });
                };
                self.originals.push((path.clone(), original));
            }
            let khz = policy.cap_khz(mhz);
            sys::write_value(&path, khz)?;
            applied.push(AppliedCap { policy: policy.index, khz });
        }
        Ok(applied)
    }

    /// Whether some policy is capped (written and not yet restored).
    pub fn is_capped(&self) -> bool {
        !self.originals.is_empty()
    }

    /// Writes back every `scaling_max_freq` this cap changed.
    ///
    /// Tries every file; the ones that fail stay remembered, so a later
    /// `undo` retries them. Returns the first error.
    pub fn undo(&mut self) -> Result<(), Error> {
        let mut first_error = None;
        self.originals.retain(|(path, original)| match sys::write_value(path, *original) {
            Ok(()) => false,
            Err(err) => {
                first_error.get_or_insert(err);
                true
            }
        });
        first_error.map_or(Ok(()), Err)
    }
}

impl Drop for ClockCap {
    fn drop(&mut self) {
        // Nothing to report to: a file that cannot be restored now could not
        // be by the caller either.
        let _ = self.undo();
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use crate::testutil::FakeSysfs;

    const POLICY0: &str = "devices/system/cpu/cpufreq/policy0";

    /// A Pi 4B: one policy for CPUs 0-3.
    fn pi_tree() -> FakeSysfs {
        let sys = FakeSysfs::new();
        sys.write(&format!("{POLICY0}/affected_cpus"), "0 1 2 3\n");
        sys.write(&format!("{POLICY0}/related_cpus"), "0 1 2 3\n");
        sys.write(&format!("{POLICY0}/scaling_cur_freq"), "1500000\n");
        sys.write(&format!("{POLICY0}/scaling_min_freq"), "600000\n");
        sys.write(&format!("{POLICY0}/scaling_max_freq"), "1500000\n");
        sys.write(&format!("{POLICY0}/cpuinfo_min_freq"), "600000\n");
        sys.write(&format!("{POLICY0}/cpuinfo_max_freq"), "1500000\n");
        // The kernel ends the list with a space.
        sys.write(&format!("{POLICY0}/scaling_available_frequencies"), "600000 750000 1000000 1500000 \n");
        sys.write("devices/system/cpu/cpufreq/ondemand/up_threshold", "50\n");
        sys
    }

    fn max_freq(sys: &FakeSysfs, policy: &str) -> String {
        std::fs::read_to_string(sys.root().join(policy).join("scaling_max_freq")).unwrap().trim().to_owned()
    }

    #[test]
    fn pi_policy_is_read_with_its_cpus_and_steps() {
        let sys = pi_tree();
        assert_eq!(
            cpufreq_policies(sys.root()).unwrap(),
            vec![CpufreqPolicy {
                index: 0,
                cpus: vec![0, 1, 2, 3],
                cur_khz: 1_500_000,
                min_khz: Some(600_000),
                max_khz: Some(1_500_000),
                hw_min_khz: Some(600_000),
                hw_max_khz: Some(1_500_000),
                available_khz: vec![600_000, 750_000, 1_000_000, 1_500_000],
            }]
        );
    }

    #[test]
    fn policies_fall_back_to_related_cpus_and_tolerate_missing_extras() {
        let sys = FakeSysfs::new();
        let dir = "devices/system/cpu/cpufreq/policy4";
        sys.write(&format!("{dir}/related_cpus"), "4 5 6 7\n");
        sys.write(&format!("{dir}/scaling_cur_freq"), "2400000\n");
        let policies = cpufreq_policies(sys.root()).unwrap();
        assert_eq!(policies.len(), 1);
        assert_eq!(policies[0].index, 4);
        assert_eq!(policies[0].cpus, vec![4, 5, 6, 7]);
        assert_eq!((policies[0].max_khz, policies[0].available_khz.len()), (None, 0));
    }

    #[test]
    fn missing_cpufreq_dir_means_no_policies() {
        assert_eq!(cpufreq_policies(FakeSysfs::new().root()).unwrap(), vec![]);
    }

    #[test]
    fn garbled_available_frequencies_is_an_error_naming_the_file() {
        let sys = pi_tree();
        sys.write(&format!("{POLICY0}/scaling_available_frequencies"), "600000 fast\n");
        let err = cpufreq_policies(sys.root()).unwrap_err();
        assert!(err.to_string().contains("policy0/scaling_available_frequencies: expected"), "{err}");
    }

    #[test]
    fn cap_picks_the_highest_step_at_or_below_the_request() {
        let policy = &cpufreq_policies(pi_tree().root()).unwrap()[0];
        assert_eq!(policy.cap_khz(1500), 1_500_000);
        assert_eq!(policy.cap_khz(1499), 1_000_000);
        assert_eq!(policy.cap_khz(1000), 1_000_000);
        assert_eq!(policy.cap_khz(800), 750_000);
        assert_eq!(policy.cap_khz(100), 600_000, "never below the lowest step");
        assert_eq!(policy.cap_khz(5000), 1_500_000);
    }

    #[test]
    fn cap_without_steps_stays_within_the_hardware_range() {
        let mut policy = cpufreq_policies(pi_tree().root()).unwrap().remove(0);
        policy.available_khz.clear();
        assert_eq!(policy.cap_khz(1234), 1_234_000);
        assert_eq!(policy.cap_khz(100), 600_000);
        assert_eq!(policy.cap_khz(9000), 1_500_000);
        policy.hw_min_khz = None;
        policy.hw_max_khz = None;
        assert_eq!(policy.cap_khz(100), 100_000);
    }

    #[test]
    fn clock_cap_writes_every_policy_and_undo_restores_the_originals() {
        let sys = pi_tree();
        let little = "devices/system/cpu/cpufreq/policy4";
        sys.write(&format!("{little}/affected_cpus"), "4 5\n");
        sys.write(&format!("{little}/scaling_cur_freq"), "1800000\n");
        sys.write(&format!("{little}/scaling_max_freq"), "1800000\n");
        sys.write(&format!("{little}/scaling_available_frequencies"), "408000 1200000 1800000\n");

        let mut cap = ClockCap::new(sys.root());
        assert!(!cap.is_capped());
        assert_eq!(
            cap.cap_mhz(1200).unwrap(),
            vec![AppliedCap { policy: 0, khz: 1_000_000 }, AppliedCap { policy: 4, khz: 1_200_000 }]
        );
        assert!(cap.is_capped());
        assert_eq!((max_freq(&sys, POLICY0).as_str(), max_freq(&sys, little).as_str()), ("1000000", "1200000"));
        // A second, tighter cap keeps the first originals.
        cap.cap_mhz(700).unwrap();
        assert_eq!((max_freq(&sys, POLICY0).as_str(), max_freq(&sys, little).as_str()), ("600000", "408000"));
        cap.undo().unwrap();
        assert!(!cap.is_capped());
        assert_eq!((max_freq(&sys, POLICY0).as_str(), max_freq(&sys, little).as_str()), ("1500000", "1800000"));
        // Nothing left to undo: a no-op, and the files stay as they are.
        sys.write(&format!("{POLICY0}/scaling_max_freq"), "750000\n");
        cap.undo().unwrap();
        assert_eq!(max_freq(&sys, POLICY0), "750000");
    }

    #[test]
    fn dropping_a_clock_cap_restores_the_clock() {
        let sys = pi_tree();
        sys.write(&format!("{POLICY0}/scaling_max_freq"), "1000000\n");
        {
            let mut cap = ClockCap::new(sys.root());
            cap.cap_mhz(600).unwrap();
            assert_eq!(max_freq(&sys, POLICY0), "600000");
        }
        assert_eq!(max_freq(&sys, POLICY0), "1000000", "the original, not the highest step");
    }

    #[test]
    fn failed_undo_names_the_file_and_is_retried() {
        let sys = pi_tree();
        let mut cap = ClockCap::new(sys.root());
        cap.cap_mhz(750).unwrap();
        // A directory where the file was: writing it fails on any uid.
        let file = sys.root().join(POLICY0).join("scaling_max_freq");
        std::fs::remove_file(&file).unwrap();
        std::fs::create_dir(&file).unwrap();
        let err = cap.undo().unwrap_err();
        match &err {
            Error::Write { path, .. } => assert_eq!(path, &file),
            other => panic!("expected a write error, got {other:?}"),
        }
        assert_eq!(err.to_string(), format!("cannot write {}", file.display()));
        assert!(cap.is_capped(), "kept for a retry");
        std::fs::remove_dir(&file).unwrap();
        sys.write(&format!("{POLICY0}/scaling_max_freq"), "750000\n");
        cap.undo().unwrap();
        assert_eq!(max_freq(&sys, POLICY0), "1500000");
    }

    #[test]
    fn capping_without_policies_is_unsupported_and_writes_nothing() {
        let sys = FakeSysfs::new();
        let mut cap = ClockCap::new(sys.root());
        assert!(matches!(cap.cap_mhz(1000), Err(Error::Unsupported(_))));
        assert!(!cap.is_capped());
    }

    #[test]
    fn capping_a_policy_without_scaling_max_freq_names_the_file() {
        let sys = pi_tree();
        std::fs::remove_file(sys.root().join(POLICY0).join("scaling_max_freq")).unwrap();
        let err = ClockCap::new(sys.root()).cap_mhz(1000).unwrap_err();
        assert!(err.to_string().ends_with("policy0/scaling_max_freq"), "{err}");
    }
}
