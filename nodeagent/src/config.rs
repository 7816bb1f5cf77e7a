//! `agent.toml`: what the agent reads, where it listens, what it aims for and the board's
//! model. Every key has a default (a Pi 4B in an enclosed stack, 75 C), so an empty file, or
//! none, is a working configuration.
//!
//! ```toml
//! sys_root = "/sys"          # sysfs to read (a simulated board writes its own)
//! sample_hz = 2.0            # policy samples per second (>= 2)
//! duty_period_s = 2.0        # one pause/run cycle when duty cycling
//! listen = "127.0.0.1:9477"  # JSON at /status, Prometheus text at /metrics ("" = off)
//! socket = "/run/sweeprun-agent.sock"  # where launchers register their ranks ("" = off; %h = host name)
//!
//! [control]
//! limit_c = 75.0             # the sensor stays at or below this
//! margin_k = 0.5
//! horizon_s = 12.0
//! dwell_s = 5.0
//! owns_fan = false           # drive the gpio-fan cooling device's cur_state
//!
//! [model]                    # the board: electrical data and a first thermal guess
//! idle_w = 2.85
//! core_w = 0.84
//! cores = 4
//! levels_mhz = [1500, 1000, 750, 600]
//! level_power = [1.0, 0.55, 0.40, 0.33]
//! r_k_per_w = 9.5            # learned online; this is the starting point
//! c_j_per_k = 20.0
//! fast_r_k_per_w = 1.2
//! fast_tau_s = 8.0
//! ambient_c = 30.0
//! ```

use crate::model::ModelConfig;
use crate::policy;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The agent's configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentConfig {
    /// The sysfs root the sensors and the clock cap live under.
    pub sys_root: PathBuf,
    /// Policy samples per second.
    pub sample_hz: f64,
    /// One pause/run cycle of duty cycling, s.
    pub duty_period_s: f64,
    /// Where the status endpoint listens (`None`: no endpoint).
    pub listen: Option<String>,
    /// The unix socket launchers register their ranks on (`None`: none).
    pub socket: Option<PathBuf>,
    /// What the policy aims for.
    pub control: policy::Config,
    /// The board.
    pub model: ModelConfig,
}

impl Default for AgentConfig {
    fn default() -> AgentConfig {
        AgentConfig {
            sys_root: PathBuf::from("/sys"),
            sample_hz: 2.0,
            duty_period_s: 2.0,
            listen: Some("127.0.0.1:9477".into()),
            socket: Some(PathBuf::from(DEFAULT_SOCKET)),
            control: policy::Config::default(),
            model: ModelConfig::default(),
        }
    }
}

/// Where the agent listens for registrations unless configured otherwise (and where
/// `sweeprun run --thermal auto` looks for it).
pub const DEFAULT_SOCKET: &str = "/run/sweeprun-agent.sock";

/// A socket path with `%h` replaced by this machine's host name (`%%` is a `%`): one path
/// template names every node's own socket where nodes share a filesystem (an emulated
/// cluster's nodes share /run; so do diskless boards that mount /run over NFS).
pub fn expand_socket(template: &Path) -> PathBuf {
    let Some(text) = template.to_str().filter(|t| t.contains('%')) else { return template.to_path_buf() };
    let host =
        nix::unistd::gethostname().map(|h| h.to_string_lossy().into_owned()).unwrap_or_else(|_| "localhost".into());
    let mut out = String::with_capacity(text.len() + host.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (c, chars.clone().next()) {
            ('%', Some('h')) => {
                out.push_str(&host);
                chars.next();
            }
            ('%', Some('%')) => {
                out.push('%');
                chars.next();
            }
            _ => out.push(c),
        }
    }
    PathBuf::from(out)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct File {
    sys_root: Option<PathBuf>,
    sample_hz: Option<f64>,
    duty_period_s: Option<f64>,
    listen: Option<String>,
    socket: Option<PathBuf>,
    #[serde(default)]
    control: ControlFile,
    #[serde(default)]
    model: ModelFile,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ControlFile {
    limit_c: Option<f64>,
    margin_k: Option<f64>,
    horizon_s: Option<f64>,
    dwell_s: Option<f64>,
    owns_fan: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ModelFile {
    idle_w: Option<f64>,
    core_w: Option<f64>,
    cores: Option<u32>,
    levels_mhz: Option<Vec<u32>>,
    level_power: Option<Vec<f64>>,
    r_k_per_w: Option<f64>,
    c_j_per_k: Option<f64>,
    fast_r_k_per_w: Option<f64>,
    fast_tau_s: Option<f64>,
    ambient_c: Option<f64>,
}

impl AgentConfig {
    /// Reads `path` (errors name the file and the key).
    pub fn load(path: &Path) -> Result<AgentConfig, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        AgentConfig::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses the text of an agent.toml.
    pub fn parse(text: &str) -> Result<AgentConfig, String> {
        let file: File = toml::from_str(text).map_err(|e| e.message().to_string() + &at(text, e.span()))?;
        let mut config = AgentConfig::default();
        if let Some(root) = file.sys_root {
            config.sys_root = root;
        }
        config.sample_hz = file.sample_hz.unwrap_or(config.sample_hz);
        config.duty_period_s = file.duty_period_s.unwrap_or(config.duty_period_s);
        if let Some(listen) = file.listen {
            config.listen = (!listen.is_empty()).then_some(listen);
        }
        if let Some(socket) = file.socket {
            config.socket = (!socket.as_os_str().is_empty()).then_some(socket);
        }
        let c = &mut config.control;
        c.limit_c = file.control.limit_c.unwrap_or(c.limit_c);
        c.margin_k = file.control.margin_k.unwrap_or(c.margin_k);
        c.horizon_s = file.control.horizon_s.unwrap_or(c.horizon_s);
        c.dwell_s = file.control.dwell_s.unwrap_or(c.dwell_s);
        c.owns_fan = file.control.owns_fan.unwrap_or(c.owns_fan);
        let m = &mut config.model;
        let f = file.model;
        m.idle_w = f.idle_w.unwrap_or(m.idle_w);
        m.core_w = f.core_w.unwrap_or(m.core_w);
        m.cores = f.cores.unwrap_or(m.cores);
        m.levels_mhz = f.levels_mhz.unwrap_or(m.levels_mhz.clone());
        m.level_power = f.level_power.unwrap_or(m.level_power.clone());
        m.r_k_per_w = f.r_k_per_w.unwrap_or(m.r_k_per_w);
        m.c_j_per_k = f.c_j_per_k.unwrap_or(m.c_j_per_k);
        m.fast_r_k_per_w = f.fast_r_k_per_w.unwrap_or(m.fast_r_k_per_w);
        m.fast_tau_s = f.fast_tau_s.unwrap_or(m.fast_tau_s);
        m.ambient_c = f.ambient_c.unwrap_or(m.ambient_c);
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), String> {
        let positive = |name: &str, x: f64| {
            if x.is_finite() && x > 0.0 {
                Ok(())
            } else {
                Err(format!("{name}: expected a positive number, got {x}"))
            }
        };
        if !(self.sample_hz.is_finite() && self.sample_hz >= 2.0) {
            return Err(format!("sample_hz: expected at least 2 samples per second, got {}", self.sample_hz));
        }
        positive("duty_period_s", self.duty_period_s)?;
        positive("control.horizon_s", self.control.horizon_s)?;
        positive("control.dwell_s", self.control.dwell_s)?;
        if !(self.control.margin_k.is_finite() && self.control.margin_k >= 0.0) {
            return Err(format!("control.margin_k: expected 0 or more, got {}", self.control.margin_k));
        }
        if !(20.0..=100.0).contains(&self.control.limit_c) {
            return Err(format!("control.limit_c: expected 20..100 C, got {}", self.control.limit_c));
        }
        let m = &self.model;
        for (name, x) in [
            ("model.idle_w", m.idle_w),
            ("model.core_w", m.core_w),
            ("model.r_k_per_w", m.r_k_per_w),
            ("model.c_j_per_k", m.c_j_per_k),
            ("model.fast_r_k_per_w", m.fast_r_k_per_w),
            ("model.fast_tau_s", m.fast_tau_s),
        ] {
            positive(name, x)?;
        }
        if !(-40.0..=80.0).contains(&m.ambient_c) {
            return Err(format!("model.ambient_c: expected -40..80 C, got {}", m.ambient_c));
        }
        for &power in &m.level_power {
            positive("model.level_power", power)?;
        }
        if m.cores == 0 {
            return Err("model.cores: expected at least 1".into());
        }
        if m.levels_mhz.is_empty() || m.levels_mhz.len() != m.level_power.len() {
            return Err(format!(
                "model.levels_mhz and model.level_power: expected lists of the same length, got {} and {}",
                m.levels_mhz.len(),
                m.level_power.len()
            ));
        }
        if m.levels_mhz.windows(2).any(|w| w[0] <= w[1]) || m.level_power.windows(2).any(|w| w[0] < w[1]) {
            return Err(
                "model.levels_mhz: expected the highest clock first, power not rising as the clock falls".into()
            );
        }
        Ok(())
    }
}

/// ` at line N` for a TOML error's span.
fn at(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    span.map(|s| format!(" (line {})", text[..s.start.min(text.len())].lines().count().max(1))).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_template_names_this_hosts_socket() {
        let host = nix::unistd::gethostname().unwrap().into_string().unwrap();
        assert_eq!(expand_socket(Path::new("/run/a-%h.sock")), PathBuf::from(format!("/run/a-{host}.sock")));
        assert_eq!(expand_socket(Path::new("/run/100%%-%h/%x")), PathBuf::from(format!("/run/100%-{host}/%x")));
        assert_eq!(expand_socket(Path::new(DEFAULT_SOCKET)), PathBuf::from(DEFAULT_SOCKET));
    }

    #[test]
    fn an_empty_file_is_the_defaults_and_keys_override_them() {
        assert_eq!(AgentConfig::parse("").unwrap(), AgentConfig::default());
        let config = AgentConfig::parse(
            "sys_root = \"/tmp/sim\"\nlisten = \"\"\n[control]\nlimit_c = 70.0\nowns_fan = true\n[model]\nr_k_per_w = 4.5\n",
        )
        .unwrap();
        assert_eq!(config.sys_root, PathBuf::from("/tmp/sim"));
        assert_eq!(config.listen, None);
        assert_eq!((config.control.limit_c, config.control.owns_fan), (70.0, true));
        assert_eq!(config.model.r_k_per_w, 4.5);
    }

    #[test]
    fn bad_values_and_unknown_keys_are_named() {
        for (text, expected) in [
            ("sample_hz = 1.0\n", "sample_hz: expected at least 2"),
            ("[control]\nlimit_c = 150.0\n", "control.limit_c: expected 20..100 C"),
            ("[control]\nlimt_c = 70.0\n", "unknown field `limt_c`"),
            ("[model]\nlevels_mhz = [1500, 1000]\n", "same length"),
            ("[model]\nlevels_mhz = [600, 750, 1000, 1500]\n", "highest clock first"),
            ("[model]\nr_k_per_w = -1.0\n", "model.r_k_per_w: expected a positive number"),
            ("sample_hz = \"fast\"\n", "line 1"),
        ] {
            let error = AgentConfig::parse(text).unwrap_err();
            assert!(error.contains(expected), "{text:?}: {error}");
        }
    }
}
