//! Training data: the manifest of aligned face crops, and the loader that turns it into
//! deterministic mini-batches (random crops, the batch's occluded copy) on several threads.
//!
//! Position: the trainer's source stage, feeding `train`. Crops are expected already aligned to
//! the template (by `facegate-train prepare`, through the same alignment code as the device).

mod faces;
mod loader;
mod manifest;

pub use faces::FaceSet;
pub use loader::{BatchData, Loader, LoaderConfig, LoaderError, Prefetch};
pub use manifest::{Entry, Manifest, ManifestError};
