//! Training: the paper's occluder, the composed objective of each ablation mode, and one
//! optimiser step.
//!
//! Position: between the data loader (which yields aligned crops and their occluded copies) and
//! the checkpoints; the run loop, loader and checkpoints arrive with the rest of the trainer issue.

mod objective;
mod occluder;
mod step;

pub use objective::{Batch, Loss, LossTerms, LossWeights, ObjectiveError, objective};
pub use occluder::Occluder;
pub use step::{Stepper, adam_paper};
