//! `[door]`: the local relay or door program.

use super::{Report, ranged};
use crate::config::raw::RawConfig;
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::Spanned;

pub(super) fn check_door(
    r: &mut Report,
    raw: &RawConfig,
    base: &Path,
) -> Option<crate::door::DoorConfig> {
    use crate::config::raw::DoorKind;
    use crate::door::DoorConfig;
    let d = raw.door.as_ref()?;
    let kind = *d.kind.get_ref();
    let only = |r: &mut Report, span: Option<Range<usize>>, name: &str, kinds: &str| {
        r.only_for(span, format!("door.{name}"), &format!("kind = {kinds}"));
    };
    let gpio_fields = [
        (d.chip.as_ref().map(Spanned::span), "chip"),
        (d.line.as_ref().map(Spanned::span), "line"),
        (d.active_low.as_ref().map(Spanned::span), "active_low"),
        (d.pulse_seconds.as_ref().map(Spanned::span), "pulse_seconds"),
    ];
    let command_fields = [
        (d.command.as_ref().map(Spanned::span), "command"),
        (
            d.timeout_seconds.as_ref().map(Spanned::span),
            "timeout_seconds",
        ),
    ];
    let seconds = |r: &mut Report, v: &Option<Spanned<f64>>, name: &str, default: f64| {
        let field = format!("door.{name}");
        ranged(
            r,
            v,
            0.1..=600.0,
            default,
            &field,
            "expected 0.1..=600 seconds",
        )
    };
    match kind {
        DoorKind::Off => {
            for (span, name) in gpio_fields.into_iter().chain(command_fields) {
                only(r, span, name, "\"gpio\" or \"command\"");
            }
            None
        }
        DoorKind::Gpio => {
            for (span, name) in command_fields {
                only(r, span, name, "\"command\"");
            }
            let Some(line) = &d.line else {
                r.at(
                    &d.kind,
                    "door.line",
                    "kind = \"gpio\" needs the `line` offset",
                );
                return None;
            };
            Some(DoorConfig::Gpio {
                chip: d.chip.as_ref().map_or_else(
                    || PathBuf::from("/dev/gpiochip0"),
                    |c| PathBuf::from(c.get_ref()),
                ),
                line: *line.get_ref(),
                active_low: d.active_low.as_ref().is_some_and(|a| *a.get_ref()),
                pulse_seconds: seconds(
                    r,
                    &d.pulse_seconds,
                    "pulse_seconds",
                    DoorConfig::DEFAULT_PULSE_SECONDS,
                ),
            })
        }
        DoorKind::Command => {
            for (span, name) in gpio_fields {
                only(r, span, name, "\"gpio\"");
            }
            let Some(cmd) = &d.command else {
                r.at(
                    &d.kind,
                    "door.command",
                    "kind = \"command\" needs `command = [program, args...]`",
                );
                return None;
            };
            let mut argv = cmd.get_ref().clone();
            match argv.first_mut() {
                None => {
                    r.at(
                        cmd,
                        "door.command",
                        "expected [program, args...], found an empty list",
                    );
                    return None;
                }
                // A program given as a relative path is relative to the config's folder.
                Some(p) if p.contains('/') && !p.starts_with('/') => {
                    *p = base.join(&*p).display().to_string();
                }
                Some(_) => {}
            }
            Some(DoorConfig::Command {
                argv,
                timeout_seconds: seconds(
                    r,
                    &d.timeout_seconds,
                    "timeout_seconds",
                    DoorConfig::DEFAULT_TIMEOUT_SECONDS,
                ),
            })
        }
    }
}
