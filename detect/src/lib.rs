//! Face detection: the second stage of the device pipeline (source -> **detect** -> align ->
//! embed -> match -> decide -> publish), and the first step of `facegate-train prepare`, so
//! training crops and device crops come from the same boxes and landmarks.
//!
//! The detector is MTCNN, converted from PyPI `mtcnn` 1.0.0 by `scripts/mtcnn-to-onnx.py` into
//! `models/detector/{pnet,rnet,onet}.onnx` and run by tract on the CPU.

pub mod boxes;
pub mod mtcnn;
pub mod nets;

pub use boxes::Candidate;
pub use mtcnn::{DetectError, Detector, DetectorConfig, Face};
pub use nets::NetError;
