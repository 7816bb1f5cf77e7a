//! GPIO levels through rppal (feature `rpi`), or a clear refusal without it.

use crate::gpio::PinLevel;
use crate::Error;

pub(crate) const IS_GPIO_SUPPORTED: bool = cfg!(feature = "rpi");

#[cfg(feature = "rpi")]
pub(crate) fn fan_pin_level(pin: u8) -> Result<PinLevel, Error> {
    use rppal::gpio::{Error as GpioError, Gpio, Level};

    let gpio_error = |err: GpioError| match err {
        GpioError::UnknownModel => Error::Unsupported("reading a GPIO level off a Raspberry Pi (rppal: unknown model)"),
        other => Error::Gpio { pin, source: Box::new(other) },
    };
    // `get` hands out an unconfigured `Pin`: `read` reads the level register
    // and dropping it only releases rppal's in-process claim (it has no
    // reset-on-drop; `InputPin` and friends do). Never `into_input()`: that
    // would switch a kernel-driven fan pin to input and stop the fan.
    let pin = Gpio::new().map_err(gpio_error)?.get(pin).map_err(gpio_error)?;
    Ok(match pin.read() {
        Level::Low => PinLevel::Low,
        Level::High => PinLevel::High,
    })
}

#[cfg(not(feature = "rpi"))]
pub(crate) fn fan_pin_level(_pin: u8) -> Result<PinLevel, Error> {
    Err(Error::Unsupported("reading a GPIO level without the `rpi` feature"))
}
