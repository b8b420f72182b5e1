//! *embed*: an aligned face becomes its identity feature and the activation maps behind it.
//!
//! Pipeline position: after *align*, before *match*. The [`Embedder`] trait is the seam between
//! the pipeline and the inference runtime: [`tract::TractEmbedder`] runs on any CPU; a TensorRT
//! implementation for the board's GPU plugs in behind the same trait (cargo feature `tensorrt`).

pub mod kernels;
pub mod tract;

use facegate_contract::AlignedFace;
use std::path::PathBuf;

pub use tract::TractEmbedder;

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

/// Turns aligned faces into features; implemented once per inference runtime.
pub trait Embedder: Send + Sync {
    /// Embeds one aligned face (normalised planes, as the card prescribes).
    fn embed(&self, face: &AlignedFace) -> Result<Embedding, EmbedError>;

    /// Short name of the runtime, for logs and the bench table.
    fn runtime(&self) -> &'static str;
}
