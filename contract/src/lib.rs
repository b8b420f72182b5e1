//! The contract between the facegate trainer and the device.
//!
//! Everything both sides must compute identically lives here once: the model card that travels
//! with every exported model, the face alignment that turns 5 landmarks into the network's input,
//! the similarity used to compare features, where each filter fires on a face (peaks), and the
//! metrics that measure a model. The trainer writes cards and measures with these functions; the
//! firmware reads cards and matches with them. Neither side keeps a copy of any of it.

pub mod align;
pub mod card;
pub mod fsutil;
pub mod metrics;
pub mod occlusion;
pub mod peaks;
pub mod similarity;
pub mod thresholds;

pub use align::{
    AlignError, AlignedFace, AlignmentTemplate, Landmarks5, Normalisation, Point,
    SimilarityTransform,
};
pub use card::{CardError, ModelCard};
pub use similarity::{FeatureMask, SimilarityError, cosine, cosine_masked};
