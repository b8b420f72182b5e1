//! The model card: the JSON file that travels beside every exported model.
//!
//! Pipeline position: written by the trainer at export, read by the device at start-up before
//! the model is trusted. It says how to feed the model (input size, normalisation, alignment
//! template), what comes out (feature and map tensors), where each filter looks on a face (for
//! occlusion-aware matching and explanations), which thresholds were calibrated at which false
//! accept rate, and what data the model saw and was measured on. The model file's SHA-256 ties
//! the card to exactly one model.

use crate::align::{AlignmentTemplate, Normalisation};
use crate::fsutil;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The card format this build reads and writes. Bumped on any incompatible change.
pub const FORMAT_VERSION: u32 = 1;

/// Everything the device must know about a model, and the record of how it was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelCard {
    /// Card format version; see [`FORMAT_VERSION`].
    pub format_version: u32,
    /// A short stable name for the model, published in device state and events.
    pub model_id: String,
    /// The model file this card describes.
    pub model_file: ModelFile,
    /// Network family and the settings that change its shape or behaviour.
    pub architecture: Architecture,
    /// How an aligned face becomes the input tensor.
    pub input: InputSpec,
    /// Where the five landmarks land in the input frame.
    pub alignment: AlignmentTemplate,
    /// The tensors the model returns.
    pub outputs: Outputs,
    /// Per filter (one per feature dimension), where on an aligned face it responds.
    pub filter_peaks: Vec<FilterPeaks>,
    /// Calibrated decision thresholds.
    pub thresholds: Vec<Threshold>,
    /// Data the model was trained, calibrated and measured on.
    pub data: Vec<DatasetRef>,
    /// Measured results, each naming its dataset and protocol.
    pub metrics: Vec<Metric>,
    /// Where the training data and any teacher came from, under which terms, and what a user
    /// must know before relying on the model (absent in cards written before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Provenance>,
}

/// The origin and terms of what a model learned from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// The training photos: what, where from, under which terms.
    pub data: String,
    /// The pretrained embedder distilled into the model, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teacher: Option<TeacherProvenance>,
    /// What a user must know before relying on the model.
    #[serde(default)]
    pub caveats: Vec<String>,
}

/// A teacher model, as far as its origin is known.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeacherProvenance {
    /// Its name and where it is published.
    pub name: String,
    /// sha256 of the file distilled from.
    pub sha256: String,
    /// Licence of the code and weights.
    pub licence: String,
    /// What the teacher itself was trained on.
    pub training_data: String,
}

/// The model file, relative to the card's folder, and its content hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelFile {
    /// Path of the ONNX file, relative to the folder holding the card.
    pub path: String,
    /// Lower-case hex SHA-256 of the file.
    pub sha256: String,
}

/// Which training losses produced the model (the paper's ablations).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrainingMode {
    /// Softmax only: the paper's base CNN.
    Base,
    /// Softmax plus Spatial Activation Diversity.
    Sad,
    /// SAD plus Feature Activation Diversity with the occlusion branch.
    Full,
}

/// Network family and shape-changing settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Architecture {
    /// Network family, e.g. `casia-net-hypercolumn`.
    pub name: String,
    /// Which losses trained it.
    pub mode: TrainingMode,
    /// Channel width multiplier relative to the paper's network (1.0 = as published).
    pub width_multiplier: f32,
}

/// Channel order of the input tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelOrder {
    /// Red, green, blue.
    Rgb,
    /// Blue, green, red.
    Bgr,
}

/// Memory layout of an image-like tensor (batch dimension first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TensorLayout {
    /// Batch, channels, height, width.
    Nchw,
    /// Batch, height, width, channels.
    Nhwc,
}

/// The input tensor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    /// Input name in the ONNX graph.
    pub name: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Channel order.
    pub channels: ChannelOrder,
    /// Memory layout.
    pub layout: TensorLayout,
    /// Pixel normalisation.
    pub normalisation: Normalisation,
}

/// The model's outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outputs {
    /// The identity descriptor compared by cosine similarity.
    pub feature: FeatureOutput,
    /// The sparsified per-filter activation maps behind the feature.
    pub maps: MapsOutput,
}

/// The identity feature output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureOutput {
    /// Output name in the ONNX graph.
    pub name: String,
    /// Feature length (320 for the paper's network).
    pub dim: u32,
}

/// The activation maps output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MapsOutput {
    /// Output name in the ONNX graph.
    pub name: String,
    /// One map per filter; equals the feature length.
    pub channels: u32,
    /// Map height in cells (24 at 96x96 input).
    pub height: u32,
    /// Map width in cells (24 at 96x96 input).
    pub width: u32,
    /// Memory layout.
    pub layout: TensorLayout,
}

/// Where one filter responds on aligned faces, measured on a held-out set.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterPeaks {
    /// Mean location of the filter's strongest positive response, if it has positive responses.
    pub positive: Option<Peak>,
    /// Mean location of its strongest negative response, if it has negative responses.
    pub negative: Option<Peak>,
}

/// A mean peak location and how consistent it is across faces.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Peak {
    /// Column in input pixels.
    pub x: f32,
    /// Row in input pixels.
    pub y: f32,
    /// Weighted mean distance of the per-face peaks from `(x, y)`, in pixels (consistency).
    pub sigma: f32,
}

/// What a threshold is applied to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Comparison {
    /// Cosine over the whole feature.
    Full,
    /// Cosine over the dimensions an occlusion left intact.
    Masked,
}

/// A decision threshold and the false accept rate it was calibrated at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    /// Which similarity it applies to.
    pub comparison: Comparison,
    /// Accept when the similarity is at or above this.
    pub score: f32,
    /// The false accept rate it was calibrated to (the target).
    pub target_far: f64,
    /// The false accept rate measured at `score` on the calibration set.
    pub measured_far: f64,
    /// Name of the calibration dataset (one of [`ModelCard::data`]).
    pub dataset: String,
    /// For a masked comparison: the occluded regions left out, as
    /// [`crate::occlusion::RegionSet::key`] writes them (`"mouth+chin"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regions: Option<String>,
}

/// The part a dataset played.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DatasetRole {
    /// The model learnt from it.
    Train,
    /// Thresholds and peak locations were calibrated on it.
    Calibration,
    /// Reported metrics were measured on it.
    Test,
}

/// A dataset the model met.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetRef {
    /// Short name, referred to by thresholds and metrics.
    pub name: String,
    /// Its role.
    pub role: DatasetRole,
    /// Whether the faces are generated rather than photographed.
    pub synthetic: bool,
    /// Number of distinct people.
    pub identities: u64,
    /// Number of images.
    pub images: u64,
    /// Where it came from and how to regenerate or obtain it.
    pub description: String,
}

/// One measured number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metric {
    /// Dataset name (one of [`ModelCard::data`]).
    pub dataset: String,
    /// Protocol, e.g. `verification`, `occluded-32x12`, `rank-1`.
    pub protocol: String,
    /// Metric name, e.g. `eer`, `tar@far=1e-3`.
    pub name: String,
    /// The value.
    pub value: f64,
}

/// Why a card could not be read, trusted or written.
#[derive(Debug, thiserror::Error)]
pub enum CardError {
    /// The card file could not be read.
    #[error("cannot read model card {path}: {source}")]
    Read {
        /// The card's path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The card is not JSON of the expected form (the message names line and column).
    #[error("model card {path} is malformed: {source}")]
    Parse {
        /// The card's path.
        path: PathBuf,
        /// The JSON error, with line and column.
        source: serde_json::Error,
    },
    /// The card was written by an incompatible format version.
    #[error("model card {path} has format_version {found}; this build reads version {supported}")]
    UnsupportedVersion {
        /// The card's path.
        path: PathBuf,
        /// The version in the file.
        found: u32,
        /// The version this build reads.
        supported: u32,
    },
    /// The card parsed but contradicts itself or the contract.
    #[error("model card {path} is invalid:\n  - {}", problems.join("\n  - "))]
    Invalid {
        /// The card's path (empty when validating a card in memory).
        path: PathBuf,
        /// Each problem, naming its field.
        problems: Vec<String>,
    },
    /// The model file could not be hashed.
    #[error("cannot read model file {path} named by the card: {source}")]
    ModelRead {
        /// The model's path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The model file is not the one the card describes.
    #[error("model file {path} does not match its card: sha256 is {actual}, card says {expected}")]
    ModelHash {
        /// The model's path.
        path: PathBuf,
        /// Hash from the card.
        expected: String,
        /// Hash of the file.
        actual: String,
    },
    /// The card could not be written.
    #[error("cannot write model card {path}: {source}")]
    Write {
        /// The card's path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

#[derive(Deserialize)]
struct VersionOnly {
    format_version: u32,
}

impl ModelCard {
    /// Reads and validates a card. The model file itself is not touched; see
    /// [`ModelCard::verify_model`].
    pub fn load(path: &Path) -> Result<Self, CardError> {
        let text = std::fs::read_to_string(path).map_err(|source| CardError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_json(&text, path)
    }

    /// Parses and validates a card from JSON text; `path` is only used in errors.
    pub fn from_json(text: &str, path: &Path) -> Result<Self, CardError> {
        let parse = |source| CardError::Parse {
            path: path.to_owned(),
            source,
        };
        // The version decides how the rest is read, so it is checked first.
        let version: VersionOnly = serde_json::from_str(text).map_err(parse)?;
        if version.format_version != FORMAT_VERSION {
            return Err(CardError::UnsupportedVersion {
                path: path.to_owned(),
                found: version.format_version,
                supported: FORMAT_VERSION,
            });
        }
        let card: Self = serde_json::from_str(text).map_err(parse)?;
        card.validate().map_err(|problems| CardError::Invalid {
            path: path.to_owned(),
            problems,
        })?;
        Ok(card)
    }

    /// Validates, then writes the card atomically as pretty-printed JSON.
    pub fn save(&self, path: &Path) -> Result<(), CardError> {
        self.validate().map_err(|problems| CardError::Invalid {
            path: path.to_owned(),
            problems,
        })?;
        let mut json = serde_json::to_string_pretty(self).map_err(|e| CardError::Write {
            path: path.to_owned(),
            source: std::io::Error::other(e),
        })?;
        json.push('\n');
        fsutil::write_atomic(path, json.as_bytes()).map_err(|source| CardError::Write {
            path: path.to_owned(),
            source,
        })
    }

    /// Where the model file lies, given where the card lies.
    pub fn model_path(&self, card_path: &Path) -> PathBuf {
        card_path
            .parent()
            .unwrap_or_else(|| Path::new(""))
            .join(&self.model_file.path)
    }

    /// Checks that the model file beside the card is the one the card describes, and returns its
    /// path. A device must not run a model whose card does not match it.
    pub fn verify_model(&self, card_path: &Path) -> Result<PathBuf, CardError> {
        let path = self.model_path(card_path);
        let actual = fsutil::sha256_file(&path).map_err(|source| CardError::ModelRead {
            path: path.clone(),
            source,
        })?;
        if actual != self.model_file.sha256 {
            return Err(CardError::ModelHash {
                path,
                expected: self.model_file.sha256.clone(),
                actual,
            });
        }
        Ok(path)
    }

    /// Side of one activation-map cell in input pixels (4 at 96x96 input and 24x24 maps).
    pub fn cell_size(&self) -> f32 {
        self.input.width as f32 / self.outputs.maps.width.max(1) as f32
    }

    /// Every way the card contradicts itself or the contract, each naming its field.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut p = Vec::new();
        let (w, h) = (self.input.width, self.input.height);
        let dim = self.outputs.feature.dim;
        let maps = &self.outputs.maps;
        if self.model_id.trim().is_empty() {
            p.push("model_id: must not be empty".to_owned());
        }
        let sha = &self.model_file.sha256;
        if sha.len() != 64
            || !sha
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            p.push(format!(
                "model_file.sha256: expected 64 lower-case hex digits, got {sha:?}"
            ));
        }
        if self.model_file.path.is_empty() {
            p.push("model_file.path: must not be empty".to_owned());
        }
        if !(self.architecture.width_multiplier > 0.0 && self.architecture.width_multiplier <= 4.0)
        {
            p.push(format!(
                "architecture.width_multiplier: expected 0 < m <= 4, got {}",
                self.architecture.width_multiplier
            ));
        }
        if w == 0 || h == 0 {
            p.push(format!(
                "input: width and height must be positive, got {w}x{h}"
            ));
        }
        if let Some(c) = (0..3).find(|&c| {
            let s = self.input.normalisation.std[c];
            !(s.is_finite() && s != 0.0 && self.input.normalisation.mean[c].is_finite())
        }) {
            p.push(format!(
                "input.normalisation: channel {c} needs a finite mean and a finite non-zero std"
            ));
        }
        if (self.alignment.width, self.alignment.height) != (w, h) {
            p.push(format!(
                "alignment: template frame {}x{} differs from input {w}x{h}",
                self.alignment.width, self.alignment.height
            ));
        }
        if let Err(e) = self.alignment.check() {
            p.push(format!("alignment: {e}"));
        }
        if dim == 0 {
            p.push("outputs.feature.dim: must be positive".to_owned());
        }
        if maps.channels != dim {
            p.push(format!(
                "outputs.maps.channels: {} differs from outputs.feature.dim {dim} (one map per feature)",
                maps.channels
            ));
        }
        if maps.width == 0 || maps.height == 0 || w % maps.width != 0 || h % maps.height != 0 {
            p.push(format!(
                "outputs.maps: {}x{} cells must divide the input {w}x{h} evenly",
                maps.width, maps.height
            ));
        }
        if self.filter_peaks.len() != dim as usize {
            p.push(format!(
                "filter_peaks: {} entries, expected one per feature dimension ({dim})",
                self.filter_peaks.len()
            ));
        }
        for (j, f) in self.filter_peaks.iter().enumerate() {
            for (sign, peak) in [("positive", f.positive), ("negative", f.negative)] {
                let Some(peak) = peak else { continue };
                let inside = (0.0..=w as f32).contains(&peak.x)
                    && (0.0..=h as f32).contains(&peak.y)
                    && peak.sigma.is_finite()
                    && peak.sigma >= 0.0;
                if !inside {
                    p.push(format!(
                        "filter_peaks[{j}].{sign}: ({}, {}) sigma {} is outside the {w}x{h} input",
                        peak.x, peak.y, peak.sigma
                    ));
                }
            }
        }
        let names: Vec<&str> = self.data.iter().map(|d| d.name.as_str()).collect();
        for (i, t) in self.thresholds.iter().enumerate() {
            if !(-1.0..=1.0).contains(&t.score) {
                p.push(format!(
                    "thresholds[{i}].score: {} is not a cosine in -1..=1",
                    t.score
                ));
            }
            for (field, far) in [
                ("target_far", t.target_far),
                ("measured_far", t.measured_far),
            ] {
                if !(0.0..=1.0).contains(&far) {
                    p.push(format!(
                        "thresholds[{i}].{field}: {far} is not a rate in 0..=1"
                    ));
                }
            }
            if !names.contains(&t.dataset.as_str()) {
                p.push(format!(
                    "thresholds[{i}].dataset: {:?} is not listed in data",
                    t.dataset
                ));
            }
        }
        for (i, m) in self.metrics.iter().enumerate() {
            if !names.contains(&m.dataset.as_str()) {
                p.push(format!(
                    "metrics[{i}].dataset: {:?} is not listed in data",
                    m.dataset
                ));
            }
            if !m.value.is_finite() {
                p.push(format!("metrics[{i}].value: not a finite number"));
            }
        }
        if p.is_empty() { Ok(()) } else { Err(p) }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A complete, valid card for the paper's network.
    /// A valid card with one full threshold (0.5 at FAR 1e-3), for tests across the crate.
    pub(crate) fn card() -> ModelCard {
        ModelCard {
            format_version: FORMAT_VERSION,
            model_id: "test-model".into(),
            model_file: ModelFile {
                path: "model.onnx".into(),
                // SHA-256 of "abc".
                sha256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".into(),
            },
            architecture: Architecture {
                name: "casia-net-hypercolumn".into(),
                mode: TrainingMode::Full,
                width_multiplier: 1.0,
            },
            input: InputSpec {
                name: "input".into(),
                width: 96,
                height: 96,
                channels: ChannelOrder::Rgb,
                layout: TensorLayout::Nchw,
                normalisation: Normalisation::SYMMETRIC,
            },
            alignment: AlignmentTemplate::square(96),
            outputs: Outputs {
                feature: FeatureOutput {
                    name: "feature".into(),
                    dim: 320,
                },
                maps: MapsOutput {
                    name: "maps".into(),
                    channels: 320,
                    height: 24,
                    width: 24,
                    layout: TensorLayout::Nchw,
                },
            },
            filter_peaks: vec![
                FilterPeaks {
                    positive: Some(Peak {
                        x: 30.0,
                        y: 40.0,
                        sigma: 3.5
                    }),
                    negative: None,
                };
                320
            ],
            thresholds: vec![Threshold {
                comparison: Comparison::Full,
                score: 0.42,
                target_far: 1e-3,
                measured_far: 9.5e-4,
                dataset: "synth-val".into(),
                regions: None,
            }],
            data: vec![DatasetRef {
                name: "synth-val".into(),
                role: DatasetRole::Calibration,
                synthetic: true,
                identities: 100,
                images: 2000,
                description: "facegate-train synth --seed 2".into(),
            }],
            metrics: vec![Metric {
                dataset: "synth-val".into(),
                protocol: "verification".into(),
                name: "eer".into(),
                value: 0.031,
            }],
            provenance: None,
        }
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("facegate-card-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_valid_card_round_trips_through_a_file() {
        let dir = scratch("roundtrip");
        let path = dir.join("model.card.json");
        let c = card();
        c.save(&path).unwrap();
        let back = ModelCard::load(&path).unwrap();
        assert_eq!(back, c);
        assert_eq!(back.cell_size(), 4.0);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn model_hash_is_checked() {
        let dir = scratch("hash");
        let path = dir.join("model.card.json");
        std::fs::write(dir.join("model.onnx"), b"abc").unwrap();
        let c = card();
        assert_eq!(c.verify_model(&path).unwrap(), dir.join("model.onnx"));
        std::fs::write(dir.join("model.onnx"), b"abd").unwrap();
        let err = c.verify_model(&path).unwrap_err();
        assert!(matches!(err, CardError::ModelHash { .. }), "{err}");
        std::fs::remove_file(dir.join("model.onnx")).unwrap();
        assert!(matches!(
            c.verify_model(&path),
            Err(CardError::ModelRead { .. })
        ));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn validation_names_every_inconsistent_field() {
        let mut c = card();
        c.outputs.maps.channels = 256;
        c.filter_peaks.truncate(10);
        c.thresholds[0].score = 1.5;
        c.thresholds[0].dataset = "nowhere".into();
        c.model_file.sha256 = "ABC".into();
        let problems = c.validate().unwrap_err();
        let joined = problems.join("\n");
        for field in [
            "outputs.maps.channels",
            "filter_peaks",
            "thresholds[0].score",
            "thresholds[0].dataset",
            "model_file.sha256",
        ] {
            assert!(joined.contains(field), "{field} missing from:\n{joined}");
        }
        assert_eq!(problems.len(), 5, "{joined}");
    }

    #[test]
    fn maps_must_tile_the_input() {
        let mut c = card();
        c.outputs.maps.width = 25;
        let joined = c.validate().unwrap_err().join("\n");
        assert!(joined.contains("outputs.maps"), "{joined}");
    }

    #[test]
    fn malformed_json_names_file_and_line() {
        let text = "{\n  \"format_version\": 1,\n  \"model_id\": 7\n}";
        let err = ModelCard::from_json(text, Path::new("models/x.card.json")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("models/x.card.json"), "{msg}");
        assert!(msg.contains("line 3"), "{msg}");
    }

    #[test]
    fn unknown_fields_and_future_versions_are_refused() {
        let mut v = serde_json::to_value(card()).unwrap();
        v["surprise"] = serde_json::json!(true);
        let err = ModelCard::from_json(&v.to_string(), Path::new("c.json")).unwrap_err();
        assert!(err.to_string().contains("surprise"), "{err}");
        let mut v = serde_json::to_value(card()).unwrap();
        v["format_version"] = serde_json::json!(2);
        let err = ModelCard::from_json(&v.to_string(), Path::new("c.json")).unwrap_err();
        assert!(
            matches!(err, CardError::UnsupportedVersion { found: 2, .. }),
            "{err}"
        );
    }
}
