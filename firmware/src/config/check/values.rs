//! Sections read as a whole into their stage's settings (`[detection]`, `[matching]`,
//! `[quality]`, `[decision]`): range rules on their values.

// `!(x > 0.0)` is meant: a NaN from the file must fail the rule too.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

use super::{Report, rule};
use crate::config::raw::RawConfig;

pub(super) fn check_detection(r: &mut Report, raw: &RawConfig) -> crate::config::Detection {
    let Some(d) = &raw.detection else {
        return crate::config::Detection::default();
    };
    let v = d.get_ref();
    rule(
        r,
        d,
        !(12.0..=4096.0).contains(&v.min_face),
        "detection.min_face",
        "expected 12..=4096 pixels",
    );
    rule(
        r,
        d,
        !(0.0..=1.0).contains(&v.min_score),
        "detection.min_score",
        "expected a probability in 0..=1",
    );
    *v
}

pub(super) fn check_matching(r: &mut Report, raw: &RawConfig) -> crate::config::MatchRules {
    let Some(m) = &raw.matching else {
        return crate::config::MatchRules::default();
    };
    let v = m.get_ref();
    let far_ok = v.target_far > 0.0 && v.target_far <= 0.1;
    rule(
        r,
        m,
        !far_ok,
        "matching.target_far",
        "expected a false accept rate in (0, 0.1]",
    );
    rule(
        r,
        m,
        v.max_faces == 0 || v.max_faces > 32,
        "matching.max_faces",
        "expected 1..=32",
    );
    let o = &v.occlusion;
    rule(
        r,
        m,
        !(o.radius_sigmas > 0.0),
        "matching.occlusion.radius_sigmas",
        "must be positive",
    );
    rule(
        r,
        m,
        !(o.min_radius_cells >= 0.0),
        "matching.occlusion.min_radius_cells",
        "must not be negative",
    );
    let share_ok = o.displaced_share > 0.0 && o.displaced_share <= 1.0;
    rule(
        r,
        m,
        !share_ok,
        "matching.occlusion.displaced_share",
        "expected a share in (0, 1]",
    );
    *v
}

pub(super) fn check_quality(
    r: &mut Report,
    raw: &RawConfig,
) -> facegate_pipeline::quality::QualityRules {
    let Some(q) = &raw.quality else {
        return Default::default();
    };
    let v = q.get_ref();
    rule(
        r,
        q,
        !(v.min_eye_distance >= 0.0),
        "quality.min_eye_distance",
        "must not be negative",
    );
    rule(
        r,
        q,
        !(v.max_yaw > 0.0),
        "quality.max_yaw",
        "must be positive",
    );
    rule(
        r,
        q,
        !(v.pitch_range.0 < v.pitch_range.1),
        "quality.pitch_range",
        "expected [low, high] with low < high",
    );
    rule(
        r,
        q,
        !(v.max_roll_degrees > 0.0 && v.max_roll_degrees <= 90.0),
        "quality.max_roll_degrees",
        "expected (0, 90]",
    );
    rule(
        r,
        q,
        !(v.min_sharpness >= 0.0),
        "quality.min_sharpness",
        "must not be negative",
    );
    *v
}

pub(super) fn check_decision(
    r: &mut Report,
    raw: &RawConfig,
) -> facegate_pipeline::decide::DecideRules {
    let Some(d) = &raw.decision else {
        return Default::default();
    };
    let v = d.get_ref();
    rule(
        r,
        d,
        v.agreeing_frames == 0,
        "decision.agreeing_frames",
        "must be at least 1",
    );
    rule(
        r,
        d,
        !(0.0..0.5).contains(&v.uncertain_margin),
        "decision.uncertain_margin",
        "expected [0, 0.5)",
    );
    rule(
        r,
        d,
        !(v.cooldown_seconds >= 0.0),
        "decision.cooldown_seconds",
        "must not be negative",
    );
    rule(
        r,
        d,
        !(v.track_overlap > 0.0 && v.track_overlap <= 1.0),
        "decision.track_overlap",
        "expected (0, 1]",
    );
    *v
}
