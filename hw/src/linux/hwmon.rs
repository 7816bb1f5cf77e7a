//! hwmon devices from sysfs.

use std::fs;
use std::io;
use std::path::Path;

use super::sysfs::{numbered_entries, read_trimmed, read_value};
use super::thermal::{millidegrees_to_celsius, MILLIDEGREES};
use crate::hwmon::{Hwmon, HwmonTemp};
use crate::Error;

pub(crate) fn hwmon_devices(sys_root: &Path) -> Result<Vec<Hwmon>, Error> {
    let dir = sys_root.join("class/hwmon");
    numbered_entries(&dir, "hwmon")?
        .into_iter()
        .map(|(index, device)| {
            let name = read_trimmed(&device.join("name"))?;
            let temps = temp_channels(&device)?
                .into_iter()
                .map(|channel| {
                    let millidegrees: i64 = read_value(&device.join(format!("temp{channel}_input")), MILLIDEGREES)?;
                    let label = match read_trimmed(&device.join(format!("temp{channel}_label"))) {
                        Ok(label) => Some(label),
                        Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => None,
                        Err(err) => return Err(err),
                    };
                    Ok(HwmonTemp { channel, label, temp_c: millidegrees_to_celsius(millidegrees) })
                })
                .collect::<Result<_, Error>>()?;
            Ok(Hwmon { index, name, temps })
        })
        .collect()
}

/// The `N` of every `tempN_input` in `device`, ascending.
fn temp_channels(device: &Path) -> Result<Vec<u32>, Error> {
    let io_error = |source| Error::Io { path: device.to_owned(), source };
    let mut channels = Vec::new();
    for entry in fs::read_dir(device).map_err(io_error)? {
        let name = entry.map_err(io_error)?.file_name();
        let Some(digits) = name.to_str().and_then(|n| n.strip_prefix("temp")?.strip_suffix("_input")) else {
            continue;
        };
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(channel) = digits.parse() {
                channels.push(channel);
            }
        }
    }
    channels.sort_unstable();
    Ok(channels)
}
