//! Training: the paper's occluder, the composed objective of each ablation mode, and one
//! optimiser step.
//!
//! Position: after the data loader (aligned crops and their occluded copies); the run writes
//! checkpoints, metrics and the trained network, which export turns into ONNX.

pub mod checkpoint;
mod objective;
mod occluder;
mod run;
mod step;
pub mod trained;

pub use objective::{Batch, Loss, LossTerms, LossWeights, ObjectiveError, objective};
pub use occluder::Occluder;
pub use run::{RunError, RunOptions, RunSummary, run};
pub use step::{Stepper, adam_paper};
pub use trained::{TrainedError, TrainedModel, TrainingData};
