//! How a face model is measured: verification (ROC, TAR at a FAR, EER), closed-set
//! identification (rank-k) and set-to-set template distance.
//!
//! Pipeline position: outside the live pipeline. The trainer's evaluation uses these to write
//! the numbers in a model card, and the device uses the same ROC to understand the thresholds it
//! is given, so a threshold means the same thing on both sides.

mod identification;
mod roc;
mod template;

pub use identification::rank_k_accuracy;
pub use roc::{Eer, Roc, RocPoint};
pub use template::template_distance;

/// Why a metric could not be computed from the given scores.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MetricsError {
    /// A set that the metric divides by is empty.
    #[error("no {what} scores: the metric needs at least one")]
    Empty {
        /// Which set was empty (e.g. "genuine").
        what: &'static str,
    },
    /// A score is NaN, which has no place in an ordering.
    #[error("{what} score {index} is NaN")]
    NaN {
        /// Which set held it.
        what: &'static str,
        /// Its position in that set.
        index: usize,
    },
    /// Sizes that must agree do not.
    #[error("{what}: expected {expected}, got {got}")]
    Shape {
        /// What was being sized.
        what: &'static str,
        /// The size implied by the other inputs.
        expected: usize,
        /// The size given.
        got: usize,
    },
    /// A probe's identity has no entry in the gallery, so closed-set rank is undefined.
    #[error("probe {probe} has identity {identity}, which the gallery does not hold")]
    NotInGallery {
        /// Index of the probe.
        probe: usize,
        /// Its identity label.
        identity: u32,
    },
    /// A parameter is out of its range.
    #[error("{0}")]
    Parameter(&'static str),
}
