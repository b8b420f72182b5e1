//! facegate-train: trains the SAD/FAD face model, measures it, and exports it with its card.
//!
//! Layout: `config` (the run's TOML), `data` (manifest and batch loader), `model` (the network
//! of docs/method.md), `loss` (its training losses, one file each), `train` (occluder, objective,
//! optimiser step, run loop, checkpoints), `curves` (training curves SVG), `measure` (peak map),
//! `scores` (verification report from pair scores), `synth` (synthetic faces), `prepare`
//! (real photos to aligned crops through the device's detector), `teacher` (the pretrained
//! embedder distilled into the student), `eval` (the evaluation
//! report), `export` (ONNX file and model card, checked against tract-onnx).

pub mod backend;
pub mod bench;
pub mod config;
pub mod curves;
pub mod data;
pub mod eval;
pub mod export;
pub mod loss;
pub mod measure;
pub mod model;
pub mod plot;
pub mod prepare;
pub mod scores;
pub mod synth;
pub mod teacher;
pub mod train;
