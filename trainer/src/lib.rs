//! facegate-train: trains the SAD/FAD face model, measures it, and exports it with its card.
//!
//! Today it holds the verification report over a file of pair scores, built on the shared
//! metrics; training, data preparation and export arrive with the trainer and data issues.

pub mod scores;
