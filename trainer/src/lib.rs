//! facegate-train: trains the SAD/FAD face model, measures it, and exports it with its card.
//!
//! Layout: `data` (manifest and batch loader), `model` (the network of method.md), `loss` (its training losses, one file each),
//! `scores` (verification report from pair scores), `train` (occluder, objective, optimiser
//! step). The run loop, data loading, checkpoints and ONNX export arrive with the rest of the
//! trainer issue.

pub mod data;
pub mod loss;
pub mod model;
pub mod scores;
pub mod train;
