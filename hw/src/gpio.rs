//! The fan pin's level, read through rppal (feature `rpi`).
//!
//! Read only: the pin is neither configured nor released to another mode,
//! because the kernel's `gpio-fan` driver owns it. Prefer the fan's cooling
//! device (`cur_state` in [`crate::thermal::cooling_devices`]), which says
//! what the kernel commanded without touching GPIO registers; the raw level
//! is a cross-check, and the `gpio-fan` overlay may drive the pin
//! active-low, so `High` need not mean "on".

use crate::{sys, Error};

/// A pin's logic level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinLevel {
    /// 0.
    Low,
    /// 1.
    High,
}

/// Whether this build can read GPIO levels at all: Linux with the `rpi`
/// feature. When `false`, [`fan_pin_level`] always returns
/// [`Error::Unsupported`]; when `true` it still does off a Raspberry Pi.
pub const IS_GPIO_SUPPORTED: bool = sys::IS_GPIO_SUPPORTED;

/// Reads the level of GPIO `pin` (BCM numbering; GPIO12 is the `gpio-fan`
/// overlay's default) from the GPIO registers (`/dev/gpiomem`), without
/// changing its mode, bias or level.
///
/// [`Error::Unsupported`] without the `rpi` feature, on targets other than
/// Linux, and on machines rppal does not recognise as a Raspberry Pi;
/// [`Error::Gpio`] when the registers cannot be opened (permissions) or
/// the pin does not exist.
pub fn fan_pin_level(pin: u8) -> Result<PinLevel, Error> {
    sys::fan_pin_level(pin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fan_pin_level_is_read_on_a_pi_and_unsupported_elsewhere() {
        match fan_pin_level(12) {
            Ok(_) if IS_GPIO_SUPPORTED => {}
            Err(Error::Unsupported(what)) => assert!(what.contains("GPIO"), "{what}"),
            // A Pi whose /dev/gpiomem this user may not open.
            Err(Error::Gpio { pin, .. }) if IS_GPIO_SUPPORTED => assert_eq!(pin, 12),
            other => panic!("unexpected answer (GPIO supported: {IS_GPIO_SUPPORTED}): {other:?}"),
        }
    }

    #[cfg(not(all(feature = "rpi", target_os = "linux")))]
    #[test]
    fn without_the_rpi_feature_the_error_says_how_to_get_it() {
        let err = fan_pin_level(12).unwrap_err();
        assert!(err.to_string().contains("`rpi` feature"), "{err}");
        const { assert!(!IS_GPIO_SUPPORTED) };
    }
}
