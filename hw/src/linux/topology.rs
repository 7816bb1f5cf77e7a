//! CPU lists and the package/core topology from sysfs.

use std::collections::HashMap;
use std::path::Path;

use super::sysfs::{parse_error, read_optional_value, read_trimmed, read_value};
use crate::topology::{parse_cpu_list, Core, Package, Topology};
use crate::Error;

const ID: &str = "an integer id";

pub(crate) fn online_cpus(sys_root: &Path) -> Result<Vec<usize>, Error> {
    let path = sys_root.join("devices/system/cpu/online");
    let text = read_trimmed(&path)?;
    parse_cpu_list(&text).ok_or_else(|| parse_error(&path, "a CPU list like \"0-3,5\"", &text))
}

pub(crate) fn topology_from_sysfs(sys_root: &Path) -> Result<Topology, Error> {
    let cpu_dir = sys_root.join("devices/system/cpu");
    // Online CPUs come ascending, so packages and cores are created in the
    // order of their lowest CPU: hwloc's logical order.
    let mut packages: Vec<Package> = Vec::new();
    let mut package_index: HashMap<u32, usize> = HashMap::new();
    // (package index, die, core id) -> index of the core in its package.
    let mut core_index: HashMap<(usize, i64, u32), usize> = HashMap::new();
    for cpu in online_cpus(sys_root)? {
        let topology = cpu_dir.join(format!("cpu{cpu}/topology"));
        let package_path = topology.join("physical_package_id");
        let package_id: i64 = read_value(&package_path, ID)?;
        // -1: the firmware described no package (arm64 device trees before
        // Linux 5.x); hwloc then makes no package object, and the CPUs are
        // all on the one board.
        let package_id = match package_id {
            -1 => 0,
            id => u32::try_from(id)
                .map_err(|_| parse_error(&package_path, "a package id from -1 to 2^32-1", &id.to_string()))?,
        };
        let die: i64 = read_optional_value(&topology.join("die_id"), ID)?.unwrap_or(0);
        let core_id: u32 = read_value(&topology.join("core_id"), "a non-negative integer id")?;

        let package = *package_index.entry(package_id).or_insert_with(|| {
            packages.push(Package { id: package_id, cores: Vec::new() });
            packages.len() - 1
        });
        let cores = &mut packages[package].cores;
        let core = *core_index.entry((package, die, core_id)).or_insert_with(|| {
            cores.push(Core { id: core_id, cpus: Vec::new() });
            cores.len() - 1
        });
        cores[core].cpus.push(cpu);
    }
    Ok(Topology::from_packages(packages))
}
