//! A relay on a GPIO line, through the Linux GPIO character device (`/dev/gpiochip*`, uAPI v2,
//! the `gpiocdev` crate). Part of the *door output*. The line is requested as an output,
//! inactive, and held by this process for as long as it runs; the kernel releases it (and
//! the relay drops) if the process dies. Not verified here: these machines have no GPIO chip.

use super::{DoorError, Relay};
use gpiocdev::line::Value;
use gpiocdev::request::Request;
use std::path::Path;

/// One requested output line.
pub struct GpioRelay {
    request: Request,
    line: u32,
}

impl GpioRelay {
    /// Requests `line` of `chip` as an output, initially inactive (door shut).
    pub fn open(chip: &Path, line: u32, active_low: bool) -> Result<Self, DoorError> {
        let mut builder = Request::builder();
        builder
            .on_chip(chip)
            .with_consumer("facegate-door")
            .with_line(line)
            .as_output(Value::Inactive);
        if active_low {
            builder.as_active_low();
        }
        let request = builder.request().map_err(|e| DoorError {
            what: format!("{} line {line}", chip.display()),
            message: e.to_string(),
        })?;
        Ok(Self { request, line })
    }
}

impl Relay for GpioRelay {
    fn set(&mut self, open: bool) -> Result<(), String> {
        let value = if open { Value::Active } else { Value::Inactive };
        self.request
            .set_value(self.line, value)
            .map_err(|e| e.to_string())
    }
}
