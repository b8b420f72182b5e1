//! Training data: the manifest of aligned face crops, and the loader that turns it into
//! deterministic mini-batches (random crops, the batch's occluded copy) on several threads.
//!
//! Position: the trainer's source stage, feeding `train`. Crops are expected already aligned to
//! the template (by `facegate-train prepare`, through the same alignment code as the device).

mod augment;
mod faces;
mod loader;
mod manifest;
mod paint;
mod pairs;

pub use augment::{AugmentConfig, Draw};
pub use faces::FaceSet;
pub(crate) use loader::push_crop;
pub use loader::{
    BatchData, BatchOccluder, Loader, LoaderConfig, LoaderError, Prefetch, TargetTable,
};
pub use manifest::{Entry, Manifest, ManifestError};
pub use paint::{Painted, five_points};
pub use pairs::{FoldPairs, fold_pairs};
