//! The finished run's network description (`model.json` beside `model.bpk`): what export needs
//! to rebuild the network and to fill the model card, without the run config or its data.

use crate::model::{FaceNet, NetConfig};
use burn::prelude::*;
use burn::store::ModuleRecord;
use facegate_contract::card::TrainingMode;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// File name of the description in a run folder.
pub const DESCRIPTION: &str = "model.json";
/// File name of the trained weights in a run folder.
pub const WEIGHTS: &str = "model.bpk";

/// The data a model was trained on, as the card reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingData {
    /// The manifest, as given in the run config.
    pub manifest: PathBuf,
    /// Distinct identities.
    pub identities: u64,
    /// Images listed.
    pub images: u64,
    /// Side of the stored aligned crops.
    pub source_size: usize,
}

/// The teacher a run distilled from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeacherRecord {
    /// The teacher's file as given.
    pub path: PathBuf,
    /// Its sha256.
    pub sha256: String,
    /// Distillation term and weight.
    pub kind: String,
    /// The term's weight.
    pub weight: f64,
}

/// A trained network: its shape, how it was trained and on what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainedModel {
    /// Input side in pixels.
    pub input_size: usize,
    /// Channel multiplier relative to the paper.
    pub width_multiplier: f32,
    /// Top-k of the sparsification.
    pub top_k: usize,
    /// Dropout before the classifier.
    pub dropout: f64,
    /// Classifier outputs (training identities).
    pub num_classes: usize,
    /// The loss the head was trained with.
    pub mode: TrainingMode,
    /// Margin of the face region the maps are restricted to (absent: the whole frame).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub face_margin: Option<f32>,
    /// Teacher embedding length of the distillation projection (absent: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distill_dim: Option<usize>,
    /// The teacher distilled from, as the card records it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teacher: Option<TeacherRecord>,
    /// Steps of the whole schedule.
    pub steps: u64,
    /// The run seed.
    pub seed: u64,
    /// The training data.
    pub data: TrainingData,
}

/// Why a trained network could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TrainedError {
    /// The description is missing or malformed.
    #[error("{path}: {message} (a finished `facegate-train train` run folder holds it)")]
    Description {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The weights are missing, unreadable or of another shape.
    #[error("{path}: {message}")]
    Weights {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

impl TrainedModel {
    /// The network shape.
    pub fn net(&self) -> NetConfig {
        NetConfig {
            input_size: self.input_size,
            width_multiplier: self.width_multiplier,
            num_classes: self.num_classes,
            top_k: self.top_k,
            dropout: self.dropout,
            face_margin: self.face_margin,
            distill_dim: self.distill_dim,
        }
    }

    /// Writes the description into `run_dir` (atomically).
    pub fn save(&self, run_dir: &Path) -> std::io::Result<()> {
        let json = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        facegate_contract::fsutil::write_atomic(&run_dir.join(DESCRIPTION), json.as_bytes())
    }

    /// Reads the description and weights of the finished run in `run_dir` onto `device`.
    pub fn load(run_dir: &Path, device: &Device) -> Result<(Self, FaceNet), TrainedError> {
        let path = run_dir.join(DESCRIPTION);
        let described = |message: String| TrainedError::Description {
            path: path.clone(),
            message,
        };
        let text = std::fs::read_to_string(&path).map_err(|e| described(e.to_string()))?;
        let model: Self = serde_json::from_str(&text).map_err(|e| described(e.to_string()))?;
        let path = run_dir.join(WEIGHTS);
        let weights = |message: String| TrainedError::Weights {
            path: path.clone(),
            message,
        };
        let record = ModuleRecord::load(&path).map_err(|e| weights(e.to_string()))?;
        let net = model
            .net()
            .init(device)
            .try_load_record(record)
            .map_err(|e| weights(format!("does not fit the network in {DESCRIPTION}: {e}")))?;
        Ok((model, net))
    }
}
