//! `[access]`: signed door decisions.

use super::{Report, ranged};
use crate::config::raw::RawConfig;
use std::path::Path;

pub(super) fn check_access(
    r: &mut Report,
    raw: &RawConfig,
    base: &Path,
    storage_dir: &Path,
) -> Option<crate::config::Signing> {
    let defaults = crate::config::Signing {
        key_file: storage_dir.join("access.key"),
        valid_seconds: crate::config::Signing::DEFAULT_VALID_SECONDS,
    };
    let Some(a) = &raw.access else {
        return Some(defaults);
    };
    if a.enabled.as_ref().is_some_and(|e| !*e.get_ref()) {
        return None;
    }
    let valid_seconds = ranged(
        r,
        &a.valid_seconds,
        0.5..=60.0,
        defaults.valid_seconds,
        "access.valid_seconds",
        "expected 0.5..=60 seconds",
    );
    let key_file = match &a.key_file {
        Some(k) if k.get_ref().trim().is_empty() => {
            r.at(k, "access.key_file", "must not be empty");
            defaults.key_file
        }
        Some(k) => base.join(k.get_ref()),
        None => defaults.key_file,
    };
    Some(crate::config::Signing {
        key_file,
        valid_seconds,
    })
}
