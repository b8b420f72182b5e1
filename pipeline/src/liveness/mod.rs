//! *liveness*: is the face in front of the camera a person, or a photo, a phone or a tablet
//! held up to it (a presentation attack)?
//!
//! Pipeline position: after *detect*, beside *align*: it reads the camera frame around the
//! detector's box, not the aligned crop. Two small networks (MiniFASNet V2 and V1SE, from
//! minivision-ai's Silent-Face-Anti-Spoofing, Apache-2.0; see `models/liveness/README.md`) each
//! look at the face box grown by their own scale (2.7x and 4.0x: the frame of a phone or the
//! edge of a print is in view), and their softmax outputs are averaged as the authors do. The
//! live score is the averaged probability of "live face", 0..1. *decide* grants nothing to a
//! face whose score is below the configured threshold.

pub mod crop;

use facegate_contract::fsutil::sha256_file;
use facegate_detect::Face;
use image::RgbImage;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use tract_onnx::prelude::*;

/// The file in the liveness folder that lists its models.
pub const MANIFEST: &str = "liveness.json";

/// Settings of the liveness stage (`[liveness]`).
#[derive(Debug, Clone, PartialEq)]
pub struct LivenessConfig {
    /// Folder holding `liveness.json` and the ONNX files it names.
    pub dir: PathBuf,
    /// A face whose live score is below this is refused as a presentation attack.
    pub threshold: f32,
}

impl LivenessConfig {
    /// The live score a face must reach when the config names none: measured in
    /// docs/liveness.md (live faces' scores against printed photos and screens).
    pub const DEFAULT_THRESHOLD: f32 = 0.5;
}

/// The models as `liveness.json` lists them (written by `scripts/minifasnet-to-onnx.py`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// One entry per network; their outputs are averaged.
    pub models: Vec<ManifestModel>,
}

/// One liveness network.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestModel {
    /// The ONNX file, relative to the manifest.
    pub file: String,
    /// Its SHA-256: a file that does not match is refused.
    pub sha256: String,
    /// How much the face box is grown about its centre for this network.
    pub crop_scale: f32,
    /// Side of the square input, pixels.
    pub input_size: u32,
    /// Which softmax output means "live face".
    pub live_index: usize,
    /// Where the weights came from (for people; not read by the device).
    #[serde(default)]
    pub source: Option<String>,
}

/// Why the liveness models could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum LivenessError {
    /// The manifest or a model file is missing, altered or malformed.
    #[error("liveness model {path}: {message}")]
    Model {
        /// The file at fault.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A network failed on a face.
    #[error("liveness: {0}")]
    Run(String),
}

/// What the liveness stage says about one face.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LiveScore {
    /// Probability that a live face is in front of the camera, 0..1 (the networks' average).
    pub score: f32,
    /// The largest averaged probability of any other output (a kind of attack): what the
    /// authors print as the attack score when it is the largest of all.
    pub attack: f32,
}

struct Network {
    path: PathBuf,
    plan: std::sync::Arc<TypedRunnableModel>,
    scale: f32,
    size: u32,
    live_index: usize,
}

/// The loaded liveness networks.
pub struct Liveness {
    networks: Vec<Network>,
    threshold: f32,
}

impl std::fmt::Debug for Liveness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Liveness")
            .field("networks", &self.networks.len())
            .field("threshold", &self.threshold)
            .finish()
    }
}

impl Liveness {
    /// Loads every network `config.dir/liveness.json` lists, each checked against its SHA-256.
    pub fn load(config: &LivenessConfig) -> Result<Self, LivenessError> {
        let manifest_path = config.dir.join(MANIFEST);
        let bad = |path: &Path, message: String| LivenessError::Model {
            path: path.to_owned(),
            message,
        };
        let text = std::fs::read_to_string(&manifest_path)
            .map_err(|e| bad(&manifest_path, format!("cannot read: {e}")))?;
        let manifest: Manifest = serde_json::from_str(&text)
            .map_err(|e| bad(&manifest_path, format!("not a liveness manifest: {e}")))?;
        if manifest.models.is_empty() {
            return Err(bad(&manifest_path, "lists no models".into()));
        }
        let mut networks = Vec::new();
        for entry in &manifest.models {
            let path = config.dir.join(&entry.file);
            let sum = sha256_file(&path).map_err(|e| bad(&path, format!("cannot read: {e}")))?;
            if sum != entry.sha256 {
                return Err(bad(
                    &path,
                    format!(
                        "SHA-256 {sum} does not match {MANIFEST}'s {}: the file was changed or \
                         replaced",
                        entry.sha256
                    ),
                ));
            }
            if !(1.0..=10.0).contains(&entry.crop_scale) || !(16..=512).contains(&entry.input_size)
            {
                return Err(bad(
                    &manifest_path,
                    format!(
                        "{}: crop_scale must be 1..10 and input_size 16..512",
                        entry.file
                    ),
                ));
            }
            let n = entry.input_size as usize;
            let plan = tract_onnx::onnx()
                .model_for_path(&path)
                .and_then(|m| m.with_input_fact(0, f32::fact([1, 3, n, n]).into()))
                .and_then(|m| m.into_optimized())
                .and_then(|m| m.into_runnable())
                .map_err(|e| bad(&path, format!("{e:#}")))?;
            networks.push(Network {
                path,
                plan,
                scale: entry.crop_scale,
                size: entry.input_size,
                live_index: entry.live_index,
            });
        }
        let liveness = Self {
            networks,
            threshold: config.threshold,
        };
        // Run once on a grey frame, so a model with the wrong outputs fails at start-up.
        let probe = RgbImage::from_pixel(64, 64, image::Rgb([128, 128, 128]));
        liveness
            .score_box(&probe, [16.0, 16.0, 32.0, 32.0])
            .map_err(|e| bad(&manifest_path, e.to_string()))?;
        Ok(liveness)
    }

    /// How many networks are averaged.
    pub fn networks(&self) -> usize {
        self.networks.len()
    }

    /// Each network's ONNX file and input side (for benchmarks against other runtimes).
    pub fn model_files(&self) -> Vec<(PathBuf, u32)> {
        self.networks
            .iter()
            .map(|n| (n.path.clone(), n.size))
            .collect()
    }

    /// The threshold a live face must reach.
    pub fn threshold(&self) -> f32 {
        self.threshold
    }

    /// The live score of `face` in `frame`.
    pub fn score(&self, frame: &RgbImage, face: &Face) -> Result<LiveScore, LivenessError> {
        let b = &face.bbox;
        self.score_box(frame, [b.x1, b.y1, b.x2 - b.x1, b.y2 - b.y1])
    }

    /// The live score of the face box `(x, y, width, height)` in `frame`.
    pub fn score_box(&self, frame: &RgbImage, face: [f32; 4]) -> Result<LiveScore, LivenessError> {
        let (w, h) = frame.dimensions();
        if w < 2 || h < 2 {
            return Err(LivenessError::Run(format!("a {w}x{h} frame is too small")));
        }
        let mut live_sum = 0.0;
        let mut other_sum: Vec<f32> = Vec::new();
        for net in &self.networks {
            let area = crop::grown_box(w, h, face, net.scale);
            let n = net.size as usize;
            let input = Tensor::from_shape(&[1, 3, n, n], &crop::bgr_planes(frame, area, net.size))
                .map_err(|e| LivenessError::Run(format!("{e:#}")))?;
            let out = net
                .plan
                .run(tvec![input.into_tvalue()])
                .map_err(|e| LivenessError::Run(format!("{e:#}")))?;
            let probs = out
                .first()
                .ok_or_else(|| LivenessError::Run("a network has no output".into()))?
                .to_plain_array_view::<f32>()
                .map_err(|e| LivenessError::Run(format!("{e:#}")))?
                .iter()
                .copied()
                .collect::<Vec<f32>>();
            if probs.iter().any(|p| !p.is_finite()) {
                return Err(LivenessError::Run(
                    "a network gave a non-finite score".into(),
                ));
            }
            let live = probs.get(net.live_index).copied().ok_or_else(|| {
                LivenessError::Run(format!(
                    "output has {} values, live_index is {}",
                    probs.len(),
                    net.live_index
                ))
            })?;
            live_sum += live;
            let others = probs
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != net.live_index)
                .map(|(_, p)| *p);
            for (i, p) in others.enumerate() {
                match other_sum.get_mut(i) {
                    Some(s) => *s += p,
                    None => other_sum.push(p),
                }
            }
        }
        let n = self.networks.len() as f32;
        Ok(LiveScore {
            score: live_sum / n,
            attack: other_sum.iter().fold(0.0f32, |a, &b| a.max(b)) / n,
        })
    }

    /// Whether `score` passes the threshold.
    pub fn is_live(&self, score: LiveScore) -> bool {
        score.score >= self.threshold
    }
}
