//! cpufreq policies from sysfs.

use std::path::Path;

use super::sysfs::{numbered_entries, parse_error, read_optional_value, read_trimmed, read_value};
use crate::cpufreq::CpufreqPolicy;
use crate::Error;

const KHZ: &str = "a non-negative integer in kHz";

pub(crate) fn cpufreq_policies(sys_root: &Path) -> Result<Vec<CpufreqPolicy>, Error> {
    let dir = sys_root.join("devices/system/cpu/cpufreq");
    numbered_entries(&dir, "policy")?
        .into_iter()
        .map(|(index, policy)| {
            let cpus = match read_optional_list(&policy.join("affected_cpus"), "CPU numbers")? {
                Some(cpus) => cpus,
                None => read_optional_list(&policy.join("related_cpus"), "CPU numbers")?.unwrap_or_default(),
            };
            let mut available_khz =
                read_optional_list(&policy.join("scaling_available_frequencies"), "frequencies in kHz")?
                    .unwrap_or_default();
            available_khz.sort_unstable();
            Ok(CpufreqPolicy {
                index,
                cpus,
                cur_khz: read_value(&policy.join("scaling_cur_freq"), KHZ)?,
                min_khz: read_optional_value(&policy.join("scaling_min_freq"), KHZ)?,
                max_khz: read_optional_value(&policy.join("scaling_max_freq"), KHZ)?,
                hw_min_khz: read_optional_value(&policy.join("cpuinfo_min_freq"), KHZ)?,
                hw_max_khz: read_optional_value(&policy.join("cpuinfo_max_freq"), KHZ)?,
                available_khz,
            })
        })
        .collect()
}

/// A file of space-separated non-negative integers (`0 1 2 3`); a missing
/// file gives `None`.
fn read_optional_list<T: std::str::FromStr>(path: &Path, what: &str) -> Result<Option<Vec<T>>, Error> {
    let text = match read_trimmed(path) {
        Ok(text) => text,
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err),
    };
    text.split_whitespace()
        .map(|word| word.parse().map_err(|_| parse_error(path, format!("space-separated {what}"), &text)))
        .collect::<Result<_, _>>()
        .map(Some)
}
