//! One frame through detect -> liveness -> align -> quality -> embed -> match: every face found,
//! with what the matcher made of it. No decision is taken here (that is *decide*'s, across
//! frames).

use crate::align::Aligned;
use crate::embed::{EmbedError, Embedding};
use crate::liveness::{LiveScore, LivenessError};
use crate::matching::{Candidate, MatchResult, Matcher};
use crate::model::Models;
use crate::quality::{Quality, QualityRules};
use facegate_detect::{DetectError, Face};
use image::RgbImage;
use serde::Deserialize;
use std::time::Instant;

/// One face of a frame, analysed.
#[derive(Debug, Clone)]
pub struct FaceAnalysis {
    /// The detector's box, score and landmarks.
    pub face: Face,
    /// The aligned face.
    pub aligned: Aligned,
    /// Its quality.
    pub quality: Quality,
    /// Its embedding (also for poor faces: enrollment reports occlusion on them).
    pub embedding: Embedding,
    /// What the gallery says, for faces good enough to decide on.
    pub matched: Option<MatchResult>,
    /// The liveness check's score, for faces that were matched while it is on.
    pub live: Option<LiveScore>,
    /// Milliseconds for the liveness check.
    pub liveness_ms: f32,
    /// Milliseconds for alignment + quality.
    pub align_ms: f32,
    /// Milliseconds for the embedding.
    pub embed_ms: f32,
    /// Milliseconds for the search and explanation.
    pub match_ms: f32,
}

/// Every face of a frame.
#[derive(Debug, Clone)]
pub struct FrameAnalysis {
    /// The faces, best detector score first.
    pub faces: Vec<FaceAnalysis>,
    /// Milliseconds for detection.
    pub detect_ms: f32,
}

/// Why a frame could not be analysed.
#[derive(Debug, thiserror::Error)]
pub enum AnalyseError {
    /// Detection failed (image size, runtime).
    #[error("detection: {0}")]
    Detect(#[from] DetectError),
    /// Embedding failed.
    #[error("embedding: {0}")]
    Embed(#[from] EmbedError),
    /// The liveness check failed.
    #[error("{0}")]
    Liveness(#[from] LivenessError),
}

impl FaceAnalysis {
    /// The gallery's best candidate for this face, with the match it belongs to; `None` for a
    /// face not matched (low quality) or an empty gallery.
    pub fn candidate(&self) -> Option<(&MatchResult, &Candidate)> {
        let m = self.matched.as_ref()?;
        Some((m, m.best.as_ref()?))
    }

    /// Whether the liveness check refused this face (a presentation attack): no grant then,
    /// whatever it matched. `false` when the check is off or did not run (no candidate).
    pub fn refused_by(&self, liveness: Option<&crate::liveness::Liveness>) -> bool {
        match (liveness, self.live) {
            (Some(check), Some(live)) => !check.is_live(live),
            _ => false,
        }
    }

    /// The heat map of this face's match (PNG), against `matcher`'s best template when there
    /// is a candidate, else of where its filters fired.
    pub fn heatmap(&self, models: &Models, matcher: &Matcher) -> Option<Vec<u8>> {
        use crate::heatmap::{self, HeatmapInput};
        let contributions: Vec<f32> = self
            .candidate()
            .map(|(_, c)| {
                let t = matcher.index().template(c.template);
                self.embedding
                    .feature
                    .iter()
                    .zip(&t)
                    .map(|(a, b)| a * b)
                    .collect()
            })
            .unwrap_or_default();
        let maps = &models.card.outputs.maps;
        let picture = heatmap::render(
            &models.regions,
            &HeatmapInput {
                crop: &self.aligned.crop,
                maps: &self.embedding.maps,
                map_size: (maps.height as usize, maps.width as usize),
                contributions: &contributions,
                regions: self.matched.as_ref().map_or(&[][..], |m| &m.regions),
            },
        );
        heatmap::png(&picture).ok()
    }
}

fn ms(since: Instant) -> f32 {
    since.elapsed().as_secs_f32() * 1000.0
}

/// Which faces are analysed and how strictly.
#[derive(Debug, Clone, Copy)]
pub struct Limits<'a> {
    /// Quality rules; faces that fail them are not matched.
    pub quality: &'a QualityRules,
    /// Faces below this detector score are ignored.
    pub min_score: f32,
    /// At most this many faces, most confident first.
    pub max_faces: usize,
}

/// Analyses `image`: faces are matched only when `matcher` is given and their quality passes;
/// a matched face's liveness is checked when the models include the check.
pub fn analyse(
    models: &Models,
    limits: Limits,
    matcher: Option<&Matcher>,
    image: &RgbImage,
) -> Result<FrameAnalysis, AnalyseError> {
    let t = Instant::now();
    let faces = models.detector.detect(image)?;
    let detect_ms = ms(t);
    let mut out = Vec::new();
    let kept = faces.into_iter().filter(|f| f.score >= limits.min_score);
    for face in kept.take(limits.max_faces) {
        let t = Instant::now();
        let Ok(aligned) = models.aligner.align(image, &face.landmarks) else {
            // Degenerate landmarks: nothing a camera frame can be aligned from.
            continue;
        };
        let quality = limits.quality.assess(&face.landmarks, &aligned.crop);
        let align_ms = ms(t);
        let t = Instant::now();
        let embedding = models.embedder.embed(&aligned.input)?;
        let embed_ms = ms(t);
        let t = Instant::now();
        let matched = match matcher {
            Some(m) if quality.is_good() => Some(m.find(&embedding.feature, &embedding.maps)),
            _ => None,
        };
        let match_ms = ms(t);
        let t = Instant::now();
        let live = match (&models.liveness, &matched) {
            (Some(check), Some(_)) => Some(check.score(image, &face)?),
            _ => None,
        };
        let liveness_ms = ms(t);
        out.push(FaceAnalysis {
            face,
            aligned,
            quality,
            embedding,
            matched,
            live,
            liveness_ms,
            align_ms,
            embed_ms,
            match_ms,
        });
    }
    Ok(FrameAnalysis {
        faces: out,
        detect_ms,
    })
}

/// Face detection settings (`[detection]`).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Detection {
    /// Smallest face searched for, in pixels (box side). Larger is faster.
    pub min_face: f32,
    /// Faces the detector is less sure of than this are ignored.
    pub min_score: f32,
}

impl Default for Detection {
    fn default() -> Self {
        Self {
            min_face: 40.0,
            min_score: 0.9,
        }
    }
}

impl Detection {
    /// The detector's settings.
    pub fn detector(&self) -> facegate_detect::DetectorConfig {
        facegate_detect::DetectorConfig {
            min_face: self.min_face,
            ..Default::default()
        }
    }
}
