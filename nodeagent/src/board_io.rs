//! The agent's sensors and actuators on a board's files (a real Pi's /sys, or a simulated
//! board's tree): the hottest thermal zone, the gpio-fan cooling device, cpufreq; the
//! clock cap (`scaling_max_freq`, [`sweeprun_hw::cpufreq::ClockCap`]), pausing the
//! registered rank process groups ([`sweeprun_hw::pause::ProcessPauser`]), and the fan's
//! cooling state when the agent owns it.

use crate::agent::{Actuators, Reading, Sensors};
use std::path::{Path, PathBuf};
use sweeprun_hw::cpufreq::ClockCap;
use sweeprun_hw::mailbox::{self, FakeMailbox, Mailbox, Vcio};
use sweeprun_hw::pause::{process_run_state, ProcessPauser, RunState};
use sweeprun_hw::thermal;

/// A board's files and the rank process groups the agent manages.
pub struct BoardIo {
    sys_root: PathBuf,
    proc_root: PathBuf,
    cores: u32,
    clock: ClockCap,
    pauser: ProcessPauser,
    /// Registered rank process groups (their leaders' pids).
    groups: Vec<u32>,
    running: bool,
    fan_before: Option<(PathBuf, String)>,
    /// The firmware's mailbox: /dev/vcio on a Pi, the simulated board's file under a
    /// simulated tree, none elsewhere.
    firmware: Option<Box<dyn Mailbox + Send>>,
}

impl BoardIo {
    /// The board under `sys_root` (normally `/sys`), with `cores` cores for ranks.
    pub fn new(sys_root: &Path, cores: u32) -> BoardIo {
        BoardIo {
            sys_root: sys_root.to_path_buf(),
            proc_root: PathBuf::from("/proc"),
            cores,
            clock: ClockCap::new(sys_root),
            pauser: ProcessPauser::new(),
            groups: Vec::new(),
            running: true,
            fan_before: None,
            firmware: firmware_mailbox(sys_root),
        }
    }

    /// Manages the process group led by `pgid` from now on (paused with the others).
    /// Refused (false) unless `pgid` leads its own process group: a signal to a group
    /// that does not exist would fail on every pause.
    pub fn register(&mut self, pgid: u32) -> bool {
        let leader = nix::unistd::getpgid(Some(nix::unistd::Pid::from_raw(pgid as i32)))
            .is_ok_and(|group| group.as_raw() == pgid as i32);
        if !leader {
            return false;
        }
        if !self.groups.contains(&pgid) {
            self.groups.push(pgid);
            if !self.running {
                let _ = self.pauser.pause(pgid);
            }
        }
        true
    }

    /// Stops managing `pgid` (resuming it if it was paused).
    pub fn unregister(&mut self, pgid: u32) {
        self.groups.retain(|&g| g != pgid);
        let _ = self.pauser.resume(pgid);
    }

    /// The registered groups that still exist.
    fn live_groups(&mut self) -> usize {
        let proc_root = self.proc_root.clone();
        let (live, gone): (Vec<u32>, Vec<u32>) = self
            .groups
            .iter()
            .partition(|&&pid| !matches!(process_run_state(&proc_root, pid), Ok(RunState::Gone) | Err(_)));
        // A group whose leader is gone may still have members: let them run.
        for pid in gone {
            let _ = self.pauser.resume(pid);
        }
        self.groups = live;
        self.groups.len()
    }

    fn fan_device(&self) -> Option<PathBuf> {
        let devices = thermal::cooling_devices(&self.sys_root).ok()?;
        let fan = devices.iter().find(|d| d.kind == "gpio-fan")?;
        Some(self.sys_root.join(format!("class/thermal/cooling_device{}/cur_state", fan.index)))
    }
}

impl Sensors for BoardIo {
    fn read(&mut self) -> Reading {
        let temp_c = thermal::thermal_zones(&self.sys_root)
            .ok()
            .and_then(|zones| zones.iter().map(|z| z.temp_c).reduce(f64::max));
        let fan_on = thermal::cooling_devices(&self.sys_root)
            .ok()
            .and_then(|devices| devices.into_iter().find(|d| d.kind == "gpio-fan"))
            .map(|fan| fan.cur_state > 0);
        let clock_mhz = thermal::cpu_freqs(&self.sys_root)
            .ok()
            .and_then(|cpus| cpus.first().map(|cpu| cpu.cur_khz as f64 / 1000.0));
        let demand = self.live_groups().min(self.cores as usize) as f64;
        let firmware = self.firmware.as_mut().and_then(|m| mailbox::read_sample(m.as_mut()).ok());
        Reading {
            // The firmware's own reading when the kernel's is missing.
            temp_c: temp_c.or(firmware.map(|f| f.temp_c)),
            fan_on,
            // The measured clock (lower than requested while the firmware throttles).
            clock_mhz: firmware.map(|f| f.arm_clock_hz as f64 / 1e6).or(clock_mhz),
            demand,
            firmware_throttled: firmware.map(|f| f.throttled),
        }
    }
}

/// The firmware mailbox for a board at `sys_root`: a simulated board's file if the tree is
/// one, /dev/vcio on a real board if it opens.
fn firmware_mailbox(sys_root: &Path) -> Option<Box<dyn Mailbox + Send>> {
    let simulated = sys_root.join("sweeprun-sim/mailbox");
    if simulated.exists() {
        return Some(Box::new(FakeMailbox::new(simulated)));
    }
    if sys_root == Path::new("/sys") {
        return Vcio::open().ok().map(|vcio| Box::new(vcio) as Box<dyn Mailbox + Send>);
    }
    None
}

impl Actuators for BoardIo {
    fn clock_cap(&mut self, mhz: Option<u32>) -> Result<(), String> {
        match mhz {
            Some(mhz) => self.clock.cap_mhz(mhz).map(|_| ()).map_err(|e| e.to_string()),
            None => self.clock.undo().map_err(|e| e.to_string()),
        }
    }

    fn run(&mut self, running: bool) -> Result<(), String> {
        self.running = running;
        let mut failure = None;
        let mut gone = Vec::new();
        for &group in &self.groups {
            let done = if running { self.pauser.resume(group) } else { self.pauser.pause(group) };
            if let Err(e) = done {
                // A group that no longer exists is simply not managed any more.
                if nix::sys::signal::killpg(nix::unistd::Pid::from_raw(group as i32), None).is_err() {
                    gone.push(group);
                } else {
                    failure.get_or_insert(e.to_string());
                }
            }
        }
        self.groups.retain(|g| !gone.contains(g));
        failure.map_or(Ok(()), Err)
    }

    fn fan(&mut self, on: bool) -> Result<(), String> {
        let device = self.fan_device().ok_or("no gpio-fan cooling device")?;
        if self.fan_before.is_none() {
            let before = std::fs::read_to_string(&device).map_err(|e| format!("{}: {e}", device.display()))?;
            self.fan_before = Some((device.clone(), before.trim().to_string()));
        }
        std::fs::write(&device, if on { "1" } else { "0" }).map_err(|e| format!("{}: {e}", device.display()))
    }

    fn undo(&mut self) {
        let _ = self.clock.undo();
        let _ = self.pauser.undo();
        self.running = true;
        if let Some((device, before)) = self.fan_before.take() {
            let _ = std::fs::write(device, before);
        }
    }
}

impl Drop for BoardIo {
    fn drop(&mut self) {
        // Whatever ends the agent, no rank stays paused and no cap stays on.
        self.undo();
    }
}
