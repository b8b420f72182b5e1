//! *embed*: an aligned face becomes its identity feature and the activation maps behind it.
//!
//! Pipeline position: after *align*, before *match*. The [`Embedder`] trait is the seam between
//! the pipeline and the inference runtime: [`tract::TractEmbedder`] runs on any CPU;
//! `tensorrt::TensorRtEmbedder` runs on the board's GPU (cargo feature `tensorrt`).

pub mod kernels;
#[cfg(feature = "tensorrt")]
pub mod tensorrt;
pub mod tract;

use facegate_contract::{AlignedFace, ModelCard};
use std::path::{Path, PathBuf};

pub use tract::TractEmbedder;

/// Which runtime embeds faces (`[embedder]`).
#[derive(Debug, Clone, PartialEq, Default)]
pub enum EmbedderConfig {
    /// tract on the CPU: any machine, the default.
    #[default]
    Tract,
    /// TensorRT on the board's GPU (a build with `--features tensorrt`).
    TensorRt(TensorRtConfig),
}

/// TensorRT settings (`[embedder]` with `runtime = "tensorrt"`).
#[derive(Debug, Clone, PartialEq)]
pub struct TensorRtConfig {
    /// The arithmetic asked for (the GPU may only do a lower one fast: see the log).
    pub precision: TrtPrecision,
    /// Scratch memory TensorRT may use while building, in MiB.
    pub workspace_mib: u32,
    /// Where built engines are kept (`<storage.dir>/engines`).
    pub engine_dir: PathBuf,
}

impl TensorRtConfig {
    /// TensorRT's build scratch memory by default, MiB.
    pub const DEFAULT_WORKSPACE_MIB: u32 = 256;
}

/// The arithmetic of a TensorRT engine.
#[derive(Debug, Clone, PartialEq)]
pub enum TrtPrecision {
    /// 32-bit floats.
    Fp32,
    /// Half precision where faster: the default.
    Fp16,
    /// 8-bit integers, calibrated on the faces found in the photos of a folder (through the
    /// device's own detection and alignment, so calibration sees what the camera will give).
    Int8 {
        /// The folder of photos.
        calibration: PathBuf,
    },
}

/// One face, embedded.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedding {
    /// The identity feature, unit length.
    pub feature: Vec<f32>,
    /// The sparsified activation maps, `filters x height x width` (channel-major), for
    /// occlusion detection and explanations.
    pub maps: Vec<f32>,
}

/// Why a face could not be embedded, or a model could not be used.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// The model card or its model file is unusable.
    #[error(transparent)]
    Card(#[from] facegate_contract::CardError),
    /// The card contradicts itself or the contract.
    #[error("model card {path}: {problems}")]
    InvalidCard {
        /// The card.
        path: PathBuf,
        /// Every problem, joined.
        problems: String,
    },
    /// The runtime refused the model (wrong shape, unsupported operator, corrupt file).
    #[error("model {path}: {message}")]
    Model {
        /// The model file.
        path: PathBuf,
        /// The runtime's explanation.
        message: String,
    },
    /// The aligned face does not have the size the model takes.
    #[error("aligned face is {got_w}x{got_h}, the model takes {want_w}x{want_h}")]
    FaceSize {
        /// Width given.
        got_w: u32,
        /// Height given.
        got_h: u32,
        /// Width expected.
        want_w: u32,
        /// Height expected.
        want_h: u32,
    },
    /// Running the model failed.
    #[error("inference failed: {0}")]
    Run(String),
}

/// The model file the card at `card_path` names, once the card is consistent and the file's
/// hash matches it: what every runtime checks before loading.
pub(crate) fn verified_model(card: &ModelCard, card_path: &Path) -> Result<PathBuf, EmbedError> {
    card.validate().map_err(|p| EmbedError::InvalidCard {
        path: card_path.to_owned(),
        problems: p.join("; "),
    })?;
    Ok(card.verify_model(card_path)?)
}

/// Refuses a face of another size than the model's `width x height`.
pub(crate) fn check_face_size(
    face: &AlignedFace,
    width: u32,
    height: u32,
) -> Result<(), EmbedError> {
    if face.width != width || face.height != height {
        return Err(EmbedError::FaceSize {
            got_w: face.width,
            got_h: face.height,
            want_w: width,
            want_h: height,
        });
    }
    Ok(())
}

/// Turns aligned faces into features; implemented once per inference runtime.
pub trait Embedder: Send + Sync {
    /// Embeds one aligned face (normalised planes, as the card prescribes).
    fn embed(&self, face: &AlignedFace) -> Result<Embedding, EmbedError>;

    /// Short name of the runtime, for logs and the bench table.
    fn runtime(&self) -> &'static str;
}
