//! `[commands]`: signed requests over MQTT.

use super::{Report, ranged};
use crate::config::raw::RawConfig;
use std::path::Path;

pub(super) fn check_commands(
    r: &mut Report,
    raw: &RawConfig,
    base: &Path,
) -> Option<crate::config::Commands> {
    let c = raw.commands.as_ref()?;
    if !*c.enabled.get_ref() {
        return None;
    }
    let Some(key) = &c.key_file else {
        r.at(
            &c.enabled,
            "commands.key_file",
            "enabled commands need a `key_file`",
        );
        return None;
    };
    let key_file = base.join(key.get_ref());
    if let Err(e) = crate::command_key::CommandKey::load(&key_file) {
        r.at(key, "commands.key_file", e.to_string());
    }
    let max_age_seconds = ranged(
        r,
        &c.max_age_seconds,
        1.0..=3600.0,
        crate::config::Commands::DEFAULT_MAX_AGE_SECONDS,
        "commands.max_age_seconds",
        "expected 1..=3600",
    );
    let refusals_per_second = ranged(
        r,
        &c.refusals_per_second,
        0.0..=1000.0,
        crate::config::Commands::DEFAULT_REFUSALS_PER_SECOND,
        "commands.refusals_per_second",
        "expected 0..=1000",
    );
    Some(crate::config::Commands {
        key_file,
        max_age_seconds,
        refusals_per_second,
    })
}
