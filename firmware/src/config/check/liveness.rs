//! `[liveness]`: the presentation-attack check.

use super::Report;
use crate::config::raw::RawConfig;
use std::path::Path;

pub(super) fn check_liveness(
    r: &mut Report,
    raw: &RawConfig,
    base: &Path,
) -> Option<facegate_pipeline::liveness::LivenessConfig> {
    let mut settings = facegate_pipeline::liveness::LivenessConfig {
        dir: facegate_pipeline::model::models_dir().join("liveness"),
        threshold: facegate_pipeline::liveness::LivenessConfig::DEFAULT_THRESHOLD,
    };
    let Some(l) = &raw.liveness else {
        return Some(settings);
    };
    if l.enabled.as_ref().is_some_and(|e| !*e.get_ref()) {
        return None;
    }
    if let Some(t) = &l.threshold {
        if (0.0..1.0).contains(t.get_ref()) {
            settings.threshold = *t.get_ref();
        } else {
            r.at(
                t,
                "liveness.threshold",
                "expected a live score 0..1 (below 1)",
            );
        }
    }
    if let Some(m) = &l.models {
        if m.get_ref().trim().is_empty() {
            r.at(m, "liveness.models", "must not be empty");
        } else {
            settings.dir = base.join(m.get_ref());
            if !settings
                .dir
                .join(facegate_pipeline::liveness::MANIFEST)
                .is_file()
            {
                r.at(
                    m,
                    "liveness.models",
                    format!(
                        "expected a folder with {} ({} has none)",
                        facegate_pipeline::liveness::MANIFEST,
                        settings.dir.display()
                    ),
                );
            }
        }
    }
    Some(settings)
}
