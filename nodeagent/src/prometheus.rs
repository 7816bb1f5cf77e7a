//! Prometheus text exposition of a [`Snapshot`].
//!
//! Hand-written rather than pulled from a client library: the agent exports
//! a handful of gauges, and the format for that is a few lines of text.

use std::fmt::{Display, Write};

use crate::Snapshot;

/// One `# HELP` / `# TYPE` header followed by its samples.
struct Family<'a> {
    out: &'a mut String,
    name: &'static str,
}

impl<'a> Family<'a> {
    fn gauge(out: &'a mut String, name: &'static str, help: &str) -> Self {
        // Writing to a String cannot fail.
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        Family { out, name }
    }

    fn sample(&mut self, labels: &[(&str, &str)], value: impl Display) {
        let _ = write!(self.out, "{}", self.name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (label, raw)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{label}=\"{}\"", escape_label_value(raw));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }
}

/// Label values are quoted; the format requires `\`, `"` and newline to be
/// escaped. Zone and device types come from drivers, so do not trust them.
fn escape_label_value(raw: &str) -> String {
    let mut escaped = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            c => escaped.push(c),
        }
    }
    escaped
}

pub(crate) fn render(snapshot: &Snapshot) -> String {
    let mut out = String::new();

    let mut zones =
        Family::gauge(&mut out, "sweeprun_thermal_zone_celsius", "Temperature of a thermal zone, in degrees Celsius.");
    for zone in &snapshot.zones {
        let index = zone.index.to_string();
        // f64's Display is the shortest exact form (48.312), which
        // Prometheus parses; readings are finite by construction.
        zones.sample(&[("zone", &index), ("type", &zone.kind)], zone.temp_c);
    }

    let mut state = Family::gauge(
        &mut out,
        "sweeprun_cooling_device_state",
        "Current state of a cooling device, 0 (off) to its max state.",
    );
    for device in &snapshot.cooling {
        let index = device.index.to_string();
        state.sample(&[("device", &index), ("type", &device.kind)], device.cur_state);
    }
    let mut max_state =
        Family::gauge(&mut out, "sweeprun_cooling_device_max_state", "Highest state a cooling device supports.");
    for device in &snapshot.cooling {
        let index = device.index.to_string();
        max_state.sample(&[("device", &index), ("type", &device.kind)], device.max_state);
    }

    let mut cur = Family::gauge(
        &mut out,
        "sweeprun_cpu_frequency_khz",
        "CPU clock requested by the kernel (scaling_cur_freq), in kHz.",
    );
    for freq in &snapshot.cpufreq {
        cur.sample(&[("cpu", &freq.cpu.to_string())], freq.cur_khz);
    }
    let mut min = Family::gauge(
        &mut out,
        "sweeprun_cpu_frequency_min_khz",
        "Lowest CPU clock the governor may pick (scaling_min_freq), in kHz.",
    );
    for freq in &snapshot.cpufreq {
        if let Some(khz) = freq.min_khz {
            min.sample(&[("cpu", &freq.cpu.to_string())], khz);
        }
    }
    let mut max = Family::gauge(
        &mut out,
        "sweeprun_cpu_frequency_max_khz",
        "Highest CPU clock the governor may pick (scaling_max_freq), in kHz.",
    );
    for freq in &snapshot.cpufreq {
        if let Some(khz) = freq.max_khz {
            max.sample(&[("cpu", &freq.cpu.to_string())], khz);
        }
    }

    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(escape_label_value("cpu-thermal"), "cpu-thermal");
    }
}
