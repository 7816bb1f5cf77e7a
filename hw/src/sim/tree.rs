//! The fake sysfs tree a simulated board shows the node agent: the same
//! files, in the same places and units, as on a Pi 4B.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::board::Board;
use super::model::{snap_mhz, LEVELS_MHZ, MAX_MHZ};
use crate::Error;

const ZONE: &str = "class/thermal/thermal_zone0";
const FAN: &str = "class/thermal/cooling_device0";
const CPUS: &str = "devices/system/cpu";
const POLICY: &str = "devices/system/cpu/cpufreq/policy0";
const MAILBOX: &str = "sweeprun-sim/mailbox";

/// A fake sysfs root for one [`Board`]:
///
/// * `class/thermal/thermal_zone0/{type,temp}`: `cpu-thermal`, the quantised
///   sensor in m°C;
/// * `class/thermal/cooling_device0/{type,cur_state,max_state}`: `gpio-fan`,
///   the *commanded* state (only for a case with a fan);
/// * `devices/system/cpu/cpufreq/policy0/`: `related_cpus` `0-3`,
///   `scaling_available_frequencies`, `scaling_{min,max,cur}_freq` and
///   `cpuinfo_{min,max}_freq` in kHz; `scaling_max_freq` is the agent's to
///   write. As on Linux, `cpu0`…`cpu3/cpufreq` are symlinks to it, so the
///   cap can be written through any of them;
/// * `sweeprun-sim/mailbox`: what the firmware mailbox would answer,
///   `temp_mc=<int>`, `throttled=0x<hex>` and `arm_hz=<int>`, one per line.
///
/// Every file is written to a temporary name and renamed into place, so a
/// reader sees the old value or the new one, never a torn one.
#[derive(Debug)]
pub struct Tree {
    root: PathBuf,
}

impl Tree {
    /// Lays out the tree for `board` under `root` (created if missing) and
    /// writes its current state, with the cap at 1500 MHz.
    pub fn create(root: &Path, board: &Board) -> io::Result<Tree> {
        let tree = Tree { root: root.to_owned() };
        tree.write(&format!("{ZONE}/type"), "cpu-thermal\n")?;
        if board.model().fan.is_some() {
            tree.write(&format!("{FAN}/type"), "gpio-fan\n")?;
            tree.write(&format!("{FAN}/max_state"), "1\n")?;
        }
        let last_cpu = board.model().cores.saturating_sub(1);
        let cpus = format!("0-{last_cpu}\n");
        tree.write(&format!("{CPUS}/online"), &cpus)?;
        tree.write(&format!("{CPUS}/possible"), &cpus)?;
        tree.write(&format!("{POLICY}/related_cpus"), &cpus)?;
        let all_cpus: Vec<String> = (0..=last_cpu).map(|cpu| cpu.to_string()).collect();
        tree.write(&format!("{POLICY}/affected_cpus"), &format!("{}\n", all_cpus.join(" ")))?;
        let mut levels_khz: Vec<u64> = LEVELS_MHZ.iter().map(|&mhz| khz(mhz)).collect();
        levels_khz.sort_unstable();
        let levels_khz: Vec<String> = levels_khz.iter().map(u64::to_string).collect();
        tree.write(&format!("{POLICY}/scaling_available_frequencies"), &format!("{}\n", levels_khz.join(" ")))?;
        let min_khz = khz(LEVELS_MHZ[LEVELS_MHZ.len() - 1]);
        let max_khz = khz(MAX_MHZ);
        for (file, value) in [
            ("cpuinfo_min_freq", min_khz),
            ("cpuinfo_max_freq", max_khz),
            ("scaling_min_freq", min_khz),
            ("scaling_max_freq", max_khz),
        ] {
            tree.write(&format!("{POLICY}/{file}"), &format!("{value}\n"))?;
        }
        for cpu in 0..=last_cpu {
            let dir = root.join(format!("{CPUS}/cpu{cpu}"));
            fs::create_dir_all(&dir)?;
            let link = dir.join("cpufreq");
            if fs::symlink_metadata(&link).is_err() {
                std::os::unix::fs::symlink("../cpufreq/policy0", &link)?;
            }
        }
        tree.update(board)?;
        Ok(tree)
    }

    /// The sysfs root to hand to the readers.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Writes the board's current temperature, fan state, requested clock
    /// and mailbox answer. While the board's sensors are lost the zone's
    /// `temp` file and the mailbox file are removed instead.
    pub fn update(&self, board: &Board) -> io::Result<()> {
        if board.sensors_lost() {
            self.remove(&format!("{ZONE}/temp"))?;
            self.remove(MAILBOX)?;
        } else {
            let millidegrees = whole_millidegrees(board.sensor_c());
            self.write(&format!("{ZONE}/temp"), &format!("{millidegrees}\n"))?;
            let arm_hz = u64::from(board.clock_mhz()) * 1_000_000;
            let throttled = board.throttled_bits();
            self.write(MAILBOX, &format!("temp_mc={millidegrees}\nthrottled=0x{throttled:x}\narm_hz={arm_hz}\n"))?;
        }
        if board.model().fan.is_some() {
            self.write(&format!("{FAN}/cur_state"), if board.fan_commanded_on() { "1\n" } else { "0\n" })?;
        }
        // The kernel's request, not the firmware's clock: reading the real
        // clock takes the mailbox, as on a Pi.
        self.write(&format!("{POLICY}/scaling_cur_freq"), &format!("{}\n", khz(board.cap_mhz())))
    }

    /// The cap the agent wrote to `scaling_max_freq` (policy0's, which
    /// `cpu0/cpufreq` links to), snapped down to a clock level, in MHz.
    pub fn read_cap_mhz(&self) -> Result<u32, Error> {
        let path = self.root.join(POLICY).join("scaling_max_freq");
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(source) => return Err(Error::Io { path, source }),
        };
        let khz: u64 = text.trim().parse().map_err(|_| Error::Parse {
            path: path.clone(),
            what: format!("expected a non-negative integer in kHz, found {:?}", text.trim()),
        })?;
        let mhz = u32::try_from(khz / 1000).unwrap_or(u32::MAX);
        Ok(snap_mhz(mhz))
    }

    /// Writes `contents` to `rel` under the root through a temporary file
    /// and a rename.
    fn write(&self, rel: &str, contents: &str) -> io::Result<()> {
        let path = self.root.join(rel);
        let dir = path.parent().expect("tree paths have a parent");
        fs::create_dir_all(dir)?;
        let name = path.file_name().expect("tree paths name a file").to_string_lossy();
        let temp = dir.join(format!(".{name}.sweeprun-sim-tmp"));
        let mut file = fs::File::create(&temp)?;
        file.write_all(contents.as_bytes())?;
        drop(file);
        fs::rename(&temp, &path)
    }

    /// Removes `rel` under the root; already gone is fine.
    fn remove(&self, rel: &str) -> io::Result<()> {
        match fs::remove_file(self.root.join(rel)) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
            _ => Ok(()),
        }
    }
}

fn khz(mhz: u32) -> u64 {
    u64::from(mhz) * 1000
}

/// A whole-degree reading in m°C, as the kernel writes it.
fn whole_millidegrees(sensor_c: f64) -> i64 {
    // The reading is a whole number of degrees far inside i64's range.
    #[allow(clippy::cast_possible_truncation)]
    let millidegrees = (sensor_c * 1000.0).round() as i64;
    millidegrees
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use crate::sim::Model;
    use crate::thermal::{cooling_devices, cpu_freqs, thermal_zones, CoolingDevice, CpuFreq, ThermalZone};

    fn board(name: &str) -> Board {
        Board::new(Model::from_name(name).unwrap(), 30.0, 3.0)
    }

    #[test]
    fn the_existing_readers_read_the_tree() {
        let dir = tempfile::tempdir().unwrap();
        let mut board = board("pi4-case-fan-on");
        let tree = Tree::create(dir.path(), &board).unwrap();
        board.step(60.0, 4.0, 1000);
        tree.update(&board).unwrap();

        let zones = thermal_zones(tree.root()).unwrap();
        assert_eq!(zones, vec![ThermalZone { index: 0, kind: "cpu-thermal".into(), temp_c: board.sensor_c() }]);
        assert_eq!(
            cooling_devices(tree.root()).unwrap(),
            vec![CoolingDevice { index: 0, kind: "gpio-fan".into(), cur_state: 1, max_state: 1 }]
        );
        let expected: Vec<CpuFreq> = (0..4)
            .map(|cpu| CpuFreq { cpu, cur_khz: 1_000_000, min_khz: Some(600_000), max_khz: Some(1_500_000) })
            .collect();
        assert_eq!(cpu_freqs(tree.root()).unwrap(), expected);
        let policy = tree.root().join(POLICY);
        assert_eq!(fs::read_to_string(policy.join("related_cpus")).unwrap(), "0-3\n");
        assert_eq!(
            fs::read_to_string(policy.join("scaling_available_frequencies")).unwrap(),
            "600000 750000 1000000 1500000\n"
        );
    }

    #[test]
    fn a_failed_fan_still_reads_as_commanded_on() {
        let dir = tempfile::tempdir().unwrap();
        let mut board = board("pi4-case-fan-on");
        board.fail_fan();
        let tree = Tree::create(dir.path(), &board).unwrap();
        assert_eq!(cooling_devices(tree.root()).unwrap()[0].cur_state, 1);
    }

    #[test]
    fn fan_off_case_reads_state_0_and_boards_without_a_fan_have_no_device() {
        let dir = tempfile::tempdir().unwrap();
        let tree = Tree::create(dir.path(), &board("pi4-case-fan-off")).unwrap();
        assert_eq!(cooling_devices(tree.root()).unwrap()[0].cur_state, 0);
        let dir = tempfile::tempdir().unwrap();
        let tree = Tree::create(dir.path(), &board("pi4-bare")).unwrap();
        assert_eq!(cooling_devices(tree.root()).unwrap(), vec![]);
    }

    #[test]
    fn the_cap_reads_back_through_any_cpu() {
        let dir = tempfile::tempdir().unwrap();
        let board = board("pi4-case-fan-off");
        let tree = Tree::create(dir.path(), &board).unwrap();
        assert_eq!(tree.read_cap_mhz().unwrap(), 1500);
        let cpu2 = tree.root().join("devices/system/cpu/cpu2/cpufreq/scaling_max_freq");
        fs::write(&cpu2, "1000000\n").unwrap();
        assert_eq!(tree.read_cap_mhz().unwrap(), 1000);
        let cpu0 = tree.root().join("devices/system/cpu/cpu0/cpufreq/scaling_max_freq");
        fs::write(&cpu0, "900000").unwrap();
        assert_eq!(tree.read_cap_mhz().unwrap(), 750, "snapped down to a level");
        assert!(cpu_freqs(tree.root()).unwrap().iter().all(|f| f.max_khz == Some(900_000)));
        // Updating the tree leaves the agent's cap alone.
        tree.update(&board).unwrap();
        assert_eq!(tree.read_cap_mhz().unwrap(), 750);
        fs::write(&cpu0, "fast\n").unwrap();
        let err = tree.read_cap_mhz().unwrap_err();
        assert!(err.to_string().contains("scaling_max_freq"), "{err}");
    }

    #[test]
    fn mailbox_reports_temperature_throttling_and_the_real_clock() {
        let dir = tempfile::tempdir().unwrap();
        let mut board = board("pi4-case-fan-off");
        let tree = Tree::create(dir.path(), &board).unwrap();
        let mailbox = tree.root().join(MAILBOX);
        let idle_mc = whole_millidegrees(board.sensor_c());
        assert_eq!(
            fs::read_to_string(&mailbox).unwrap(),
            format!("temp_mc={idle_mc}\nthrottled=0x0\narm_hz=1500000000\n")
        );
        // Full load, fan off, 33 °C: the firmware throttles within minutes.
        board.step(300.0, 4.0, 1500);
        tree.update(&board).unwrap();
        let text = fs::read_to_string(&mailbox).unwrap();
        assert!(text.contains("throttled=0x6000"), "{text}");
        assert!(text.contains(&format!("arm_hz={}\n", u64::from(board.clock_mhz()) * 1_000_000)), "{text}");
        assert!(board.clock_mhz() < 1500);
        // The kernel still requests the uncapped clock.
        assert_eq!(cpu_freqs(tree.root()).unwrap()[0].cur_khz, 1_500_000);
    }

    #[test]
    fn lost_sensors_make_the_temperature_unreadable_until_restored() {
        let dir = tempfile::tempdir().unwrap();
        let mut board = board("pi4-case-fan-on");
        let tree = Tree::create(dir.path(), &board).unwrap();
        board.set_sensors_lost(true);
        tree.update(&board).unwrap();
        tree.update(&board).unwrap();
        assert!(matches!(thermal_zones(tree.root()), Err(Error::Io { .. })));
        assert!(!tree.root().join(MAILBOX).exists());
        board.set_sensors_lost(false);
        tree.update(&board).unwrap();
        assert_eq!(thermal_zones(tree.root()).unwrap()[0].temp_c, board.sensor_c());
        assert!(tree.root().join(MAILBOX).exists());
    }

    #[test]
    fn creating_twice_over_the_same_root_is_fine() {
        let dir = tempfile::tempdir().unwrap();
        let board = board("pi4-case-fan-on");
        Tree::create(dir.path(), &board).unwrap();
        let tree = Tree::create(dir.path(), &board).unwrap();
        assert_eq!(cpu_freqs(tree.root()).unwrap().len(), 4);
        let leftovers: Vec<_> = fs::read_dir(tree.root().join(POLICY))
            .unwrap()
            .filter_map(|entry| entry.ok())
            .filter(|entry| entry.file_name().to_string_lossy().ends_with("-tmp"))
            .collect();
        assert!(leftovers.is_empty());
    }
}
