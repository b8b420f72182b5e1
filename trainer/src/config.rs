//! The run configuration: every constant of docs/method.md, overridable in a TOML file.
//!
//! Position: read once by `facegate-train train` before anything else. Defaults are the
//! paper's (released code's) values; `validate` reports every out-of-range value by its field.

use crate::data::AugmentConfig;
use crate::loss::DistillKind;
use crate::model::NetConfig;
use crate::train::LossWeights;
use facegate_contract::card::TrainingMode;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// A whole training run.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Seed of every random choice (data order, crops, occluder, dropout, initialisation).
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Training data.
    pub data: DataSection,
    /// Network shape.
    #[serde(default)]
    pub model: ModelSection,
    /// Optimisation schedule.
    #[serde(default)]
    pub train: TrainSection,
    /// Loss weights.
    #[serde(default)]
    pub loss: LossSection,
    /// Variation of each training photo (off by default: the paper used none).
    #[serde(default)]
    pub augment: AugmentConfig,
    /// Distillation from a teacher embedder (absent: none, as in the paper).
    #[serde(default)]
    pub distill: Option<DistillSection>,
}

/// The teacher and how its knowledge enters the loss.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DistillSection {
    /// The teacher's ONNX file (relative to the config file), taking 1x3x112x112 RGB.
    pub teacher: PathBuf,
    /// Projection into the teacher's space, or the batch's relations.
    #[serde(default)]
    pub kind: DistillKind,
    /// Weight of the term in the total loss.
    #[serde(default = "default_distill_weight")]
    pub weight: f64,
}

fn default_distill_weight() -> f64 {
    10.0
}

fn default_seed() -> u64 {
    1
}

/// `[data]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSection {
    /// The manifest, relative to the config file's folder.
    pub manifest: PathBuf,
    /// Side of the stored aligned crops.
    #[serde(default = "default_source_size")]
    pub source_size: usize,
    /// Distinct unusable images tolerated before the run stops.
    #[serde(default = "default_max_bad")]
    pub max_bad_images: usize,
    /// Batches decoded ahead of the trainer.
    #[serde(default = "default_prefetch")]
    pub prefetch: usize,
    /// A verification pairs file (`a,b,same[,fold]`, as `prepare --layout lfw` writes): every
    /// person named in the folds of `test_folds` is left out of training, so those pairs test
    /// people the network never saw.
    #[serde(default)]
    pub test_pairs: Option<PathBuf>,
    /// The folds of `test_pairs` kept for testing (1-based; empty: every fold).
    #[serde(default)]
    pub test_folds: Vec<u32>,
    /// Share of occluded-branch batches given painted sunglasses or a mask at the landmarks
    /// instead of the paper's black window.
    #[serde(default)]
    pub painted_share: f32,
}

fn default_source_size() -> usize {
    110
}
fn default_max_bad() -> usize {
    100
}
fn default_prefetch() -> usize {
    2
}

/// `[model]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelSection {
    /// Network input side (96 in the paper; a multiple of 16).
    pub input_size: usize,
    /// Channel multiplier relative to the paper.
    pub width_multiplier: f32,
    /// Rank each map is thresholded at (24 of 576 in the paper).
    pub top_k: usize,
    /// Dropout probability before the classifier.
    pub dropout: f64,
    /// Restrict the maps to the face region, this many input pixels around the landmark hull.
    pub face_margin: Option<f32>,
}

impl Default for ModelSection {
    fn default() -> Self {
        let p = NetConfig::paper(2);
        Self {
            input_size: p.input_size,
            width_multiplier: p.width_multiplier,
            top_k: p.top_k,
            dropout: p.dropout,
            face_margin: None,
        }
    }
}

/// `[train]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainSection {
    /// Which ablation: `base`, `sad` or `full`.
    pub mode: TrainingMode,
    /// Images per batch (each branch).
    pub batch_size: usize,
    /// Adam learning rate (constant).
    pub lr: f64,
    /// Adam beta1.
    pub beta1: f32,
    /// Adam beta2.
    pub beta2: f32,
    /// Steps of stage 1 (backbone with softmax).
    pub stage1_steps: u64,
    /// Steps of stage 2 (head and classifier with the mode's loss); in `base` mode, more
    /// steps of stage 1, so every mode gets the same budget.
    pub stage2_steps: u64,
    /// Steps between checkpoints.
    pub checkpoint_every: u64,
    /// Steps between metrics lines.
    pub log_every: u64,
}

impl Default for TrainSection {
    fn default() -> Self {
        Self {
            mode: TrainingMode::Full,
            batch_size: 64,
            lr: 1e-3,
            beta1: 0.5,
            beta2: 0.999,
            stage1_steps: 20_000,
            stage2_steps: 20_000,
            checkpoint_every: 1_000,
            log_every: 10,
        }
    }
}

/// `[loss]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LossSection {
    /// Clean cross-entropy weight.
    pub ce: f64,
    /// Masked occluded cross-entropy weight.
    pub masked_ce: f64,
    /// Weight of each SAD term.
    pub sad: f64,
    /// FAD weight.
    pub fad: f64,
    /// Filter-weight diversity weight.
    pub filter_diversity: f64,
    /// Features FAD keeps; default 260/320 of the feature length.
    pub fad_keep: Option<usize>,
}

impl Default for LossSection {
    fn default() -> Self {
        let p = LossWeights::paper(320);
        Self {
            ce: p.ce,
            masked_ce: p.masked_ce,
            sad: p.sad,
            fad: p.fad,
            filter_diversity: p.filter_diversity,
            fad_keep: None,
        }
    }
}

/// Why a run config could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RunConfigError {
    /// The file could not be read.
    #[error("cannot read run config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML is malformed or has unknown keys (the message names line and key).
    #[error("run config {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// Values are out of range.
    #[error("run config {path} has values out of range:\n  - {}", problems.join("\n  - "))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// One line per bad field.
        problems: Vec<String>,
    },
}

impl RunConfig {
    /// Reads, parses and validates a run config; the manifest path is made relative to it.
    pub fn load(path: &Path) -> Result<Self, RunConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| RunConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut cfg: Self = toml::from_str(&text).map_err(|e| RunConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        let base = path.parent().unwrap_or_else(|| Path::new(""));
        cfg.data.manifest = base.join(&cfg.data.manifest);
        cfg.data.test_pairs = cfg.data.test_pairs.map(|p| base.join(p));
        if let Some(d) = cfg.distill.as_mut() {
            d.teacher = base.join(&d.teacher);
        }
        cfg.validate().map_err(|problems| RunConfigError::Invalid {
            path: path.to_owned(),
            problems,
        })?;
        Ok(cfg)
    }

    /// The network shape for `num_classes` identities.
    pub fn net(&self, num_classes: usize) -> NetConfig {
        NetConfig {
            input_size: self.model.input_size,
            width_multiplier: self.model.width_multiplier,
            num_classes,
            top_k: self.model.top_k,
            dropout: self.model.dropout,
            face_margin: self.model.face_margin,
            distill_dim: None,
        }
    }

    /// The loss weights, with FAD's selection size resolved for the network's feature length.
    pub fn weights(&self, feature_dim: usize) -> LossWeights {
        let l = &self.loss;
        LossWeights {
            ce: l.ce,
            masked_ce: l.masked_ce,
            sad: l.sad,
            fad: l.fad,
            filter_diversity: l.filter_diversity,
            fad_keep: l
                .fad_keep
                .unwrap_or(LossWeights::paper(feature_dim).fad_keep),
            distill: self.distill.as_ref().map_or(0.0, |d| d.weight),
            distill_kind: self.distill.as_ref().map(|d| d.kind).unwrap_or_default(),
        }
    }

    /// Every value out of its range, each naming its field.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut p = Vec::new();
        let m = &self.model;
        let t = &self.train;
        let d = &self.data;
        if m.input_size < 16 || !m.input_size.is_multiple_of(16) {
            p.push(format!(
                "model.input_size: {} must be a multiple of 16, at least 16",
                m.input_size
            ));
        }
        if !(m.width_multiplier > 0.0 && m.width_multiplier <= 4.0) {
            p.push(format!(
                "model.width_multiplier: {} must be in (0, 4]",
                m.width_multiplier
            ));
        }
        let positions = (m.input_size / 4).pow(2);
        if m.top_k == 0 || m.top_k > positions {
            p.push(format!(
                "model.top_k: {} must be in 1..={positions} (map positions)",
                m.top_k
            ));
        }
        if !(0.0..1.0).contains(&m.dropout) {
            p.push(format!("model.dropout: {} must be in [0, 1)", m.dropout));
        }
        if d.source_size < m.input_size {
            p.push(format!(
                "data.source_size: {} is smaller than model.input_size {}",
                d.source_size, m.input_size
            ));
        }
        if t.batch_size == 0 {
            p.push("train.batch_size: must be at least 1".into());
        }
        if !(0.0..=1.0).contains(&d.painted_share) {
            p.push(format!(
                "data.painted_share: {} must be between 0 and 1",
                d.painted_share
            ));
        }
        if let Some(margin) = m.face_margin
            && !(0.0..=m.input_size as f32).contains(&margin)
        {
            p.push(format!(
                "model.face_margin: {margin} must be between 0 and model.input_size"
            ));
        }
        if let Some(dist) = &self.distill
            && !(dist.weight >= 0.0 && dist.weight.is_finite())
        {
            p.push(format!(
                "distill.weight: {} must be a finite number >= 0",
                dist.weight
            ));
        }
        p.extend(self.augment.problems());
        if !(t.lr > 0.0 && t.lr < 1.0) {
            p.push(format!("train.lr: {} must be in (0, 1)", t.lr));
        }
        for (name, b) in [("train.beta1", t.beta1), ("train.beta2", t.beta2)] {
            if !(0.0..1.0).contains(&b) {
                p.push(format!("{name}: {b} must be in [0, 1)"));
            }
        }
        if t.stage1_steps + t.stage2_steps == 0 {
            p.push("train.stage1_steps + train.stage2_steps: nothing to train".into());
        }
        if t.checkpoint_every == 0 || t.log_every == 0 {
            p.push("train.checkpoint_every and train.log_every: must be at least 1".into());
        }
        let l = &self.loss;
        for (name, w) in [
            ("loss.ce", l.ce),
            ("loss.masked_ce", l.masked_ce),
            ("loss.sad", l.sad),
            ("loss.fad", l.fad),
            ("loss.filter_diversity", l.filter_diversity),
        ] {
            if !(w.is_finite() && w >= 0.0) {
                p.push(format!("{name}: {w} must be a finite weight >= 0"));
            }
        }
        let dim = self.net(2).feature_dim();
        if let Some(k) = l.fad_keep.filter(|&k| k == 0 || k > dim) {
            p.push(format!(
                "loss.fad_keep: {k} must be in 1..={dim} (feature length)"
            ));
        }
        if p.is_empty() { Ok(()) } else { Err(p) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_papers() {
        let cfg: RunConfig = toml::from_str("[data]\nmanifest = \"m.csv\"\n").unwrap();
        cfg.validate().unwrap();
        assert_eq!(cfg.net(10), NetConfig::paper(10));
        assert_eq!(cfg.weights(320), LossWeights::paper(320));
        assert_eq!(cfg.weights(320).fad_keep, 260);
        assert_eq!(
            (cfg.train.lr, cfg.train.beta1, cfg.train.batch_size),
            (1e-3, 0.5, 64)
        );
    }

    #[test]
    fn every_bad_value_is_named() {
        let text = "[data]\nmanifest = \"m.csv\"\nsource_size = 50\n[model]\ninput_size = 60\ntop_k = 0\n[train]\nmode = \"base\"\nstage1_steps = 0\nstage2_steps = 0\nlr = 2.0\nbeta1 = 1.0\n[loss]\nsad = -1\n";
        let cfg: RunConfig = toml::from_str(text).unwrap();
        let problems = cfg.validate().unwrap_err().join("\n");
        for field in [
            "train.stage1_steps",
            "model.input_size",
            "model.top_k",
            "data.source_size",
            "train.lr",
            "train.beta1",
            "loss.sad",
        ] {
            assert!(problems.contains(field), "{field} missing:\n{problems}");
        }
    }

    #[test]
    fn unknown_keys_and_missing_files_are_clear_errors() {
        let dir = std::env::temp_dir().join(format!("facegate-runcfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("run.toml");
        std::fs::write(
            &path,
            "[data]\nmanifest = \"m.csv\"\n[train]\nlearning_rate = 1\n",
        )
        .unwrap();
        let err = RunConfig::load(&path).unwrap_err().to_string();
        assert!(
            err.contains("learning_rate") && err.contains("run.toml"),
            "{err}"
        );
        let err = RunConfig::load(&dir.join("absent.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("absent.toml"), "{err}");
        std::fs::write(&path, "[data]\nmanifest = \"m.csv\"\n").unwrap();
        assert_eq!(
            RunConfig::load(&path).unwrap().data.manifest,
            dir.join("m.csv")
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}

#[cfg(test)]
mod shipped {
    use super::*;

    #[test]
    fn shipped_run_configs_are_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
        let paper = RunConfig::load(&dir.join("paper.toml")).unwrap();
        assert_eq!(paper.net(2), NetConfig::paper(2));
        let small = RunConfig::load(&dir.join("cpu-small.toml")).unwrap();
        assert_eq!(small.net(2).map_size(), 16);
    }
}
