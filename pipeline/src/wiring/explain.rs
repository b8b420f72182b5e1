//! `facegate explain PHOTO`: what the device makes of one photo, face by face, with the heat map
//! of the first face. Uses the same stages as the running device, without the decision across
//! frames (one photo is one frame).

use super::{PipelineError, Settings};
use crate::analyse::analyse;
use crate::decide::Band;
use crate::event::{Outcome, PersonRef};
use crate::matching::{Basis, Matcher, RegionExplanation};
use crate::model::Models;
use crate::quality::Quality;
use crate::source::files::read_image;
use facegate_contract::occlusion::Region;
use serde::Serialize;
use std::path::Path;

/// One face of the photo, explained.
#[derive(Debug, Clone, Serialize)]
pub struct FaceExplanation {
    /// `[x1, y1, x2, y2]`.
    pub bbox: [f32; 4],
    /// Detector confidence.
    pub detector_score: f32,
    /// Quality measures and problems.
    pub quality: Quality,
    /// The outcome a single frame would give.
    pub result: Outcome,
    /// The liveness check's score (probability of a live face), when the check is on.
    pub live_score: Option<f32>,
    /// The best candidate, whatever the outcome.
    pub candidate: Option<PersonRef>,
    /// Its decision score.
    pub score: Option<f32>,
    /// The threshold held against.
    pub threshold: Option<f32>,
    /// Full or masked comparison.
    pub basis: Option<Basis>,
    /// Full-feature cosine.
    pub full_score: Option<f32>,
    /// Masked cosine, when something was occluded.
    pub masked_score: Option<f32>,
    /// Occluded regions.
    pub occluded: Vec<Region>,
    /// Per region verdicts.
    pub regions: Vec<RegionExplanation>,
}

/// The whole photo, explained.
#[derive(Debug, Clone, Serialize)]
pub struct PhotoExplanation {
    /// The photo.
    pub photo: String,
    /// `no_face` when nothing was found, else one entry per face.
    pub result: Option<Outcome>,
    /// The faces.
    pub faces: Vec<FaceExplanation>,
}

/// The explanation and the first face's heat map (PNG).
#[derive(Debug, Clone)]
pub struct Explained {
    /// What was found.
    pub summary: PhotoExplanation,
    /// Heat map of the first face.
    pub heatmap: Option<Vec<u8>>,
}

/// Explains `photo` against `matcher`.
pub fn explain_photo(
    models: &Models,
    cfg: &Settings,
    matcher: &Matcher,
    photo: &Path,
) -> Result<Explained, PipelineError> {
    let image = read_image(photo)?;
    // Poor faces are matched too: the technician wants to see why.
    let lenient = crate::quality::QualityRules {
        min_eye_distance: 0.0,
        max_yaw: f32::INFINITY,
        pitch_range: (f32::NEG_INFINITY, f32::INFINITY),
        max_roll_degrees: f32::INFINITY,
        min_sharpness: 0.0,
    };
    let limits = crate::analyse::Limits {
        quality: &lenient,
        ..cfg.limits()
    };
    let frame = analyse(models, limits, Some(matcher), &image)?;
    let mut heat = None;
    let mut faces = Vec::new();
    for (i, f) in frame.faces.iter().enumerate() {
        let quality = cfg.quality.assess(&f.face.landmarks, &f.aligned.crop);
        let m = f.matched.as_ref();
        let best = m.and_then(|m| m.best.as_ref());
        let band = match best {
            _ if !quality.is_good() => Band::LowQuality,
            _ if f.refused_by(models.liveness.as_ref()) => Band::Spoof,
            Some(c) => cfg.decision.band(c.score, c.threshold),
            None => Band::Unknown,
        };
        if i == 0 {
            heat = f.heatmap(models, matcher);
        }
        let b = &f.face.bbox;
        faces.push(FaceExplanation {
            bbox: [b.x1, b.y1, b.x2, b.y2],
            detector_score: f.face.score,
            quality,
            result: band.into(),
            live_score: f.live.map(|l| l.score),
            candidate: best.map(|c| {
                let p = &matcher.index().people()[c.person];
                PersonRef {
                    id: p.id.clone(),
                    name: cfg.privacy.publish_names.then(|| p.name.clone()),
                }
            }),
            score: best.map(|c| c.score),
            threshold: best.map(|c| c.threshold),
            basis: best.map(|c| c.basis),
            full_score: best.map(|c| c.full_score),
            masked_score: best.and_then(|c| c.masked_score),
            occluded: m.map(|m| m.occluded.iter().collect()).unwrap_or_default(),
            regions: m.map(|m| m.regions.clone()).unwrap_or_default(),
        });
    }
    Ok(Explained {
        summary: PhotoExplanation {
            photo: photo.display().to_string(),
            result: faces.is_empty().then_some(Outcome::NoFace),
            faces,
        },
        heatmap: heat,
    })
}
