//! TensorRT for facegate's embedder on the board's GPU (JetPack 6: TensorRT 10; TensorRT 8.6
//! works too).
//!
//! Pipeline position: inside *embed*, behind the firmware's `Embedder` trait (its `tensorrt`
//! feature). This crate knows nothing of faces: it builds an engine from ONNX bytes, caches it
//! on disk under a key that changes whenever the model, TensorRT or the GPU does, and runs it.
//!
//! [`cache`] and [`Precision`] are pure Rust and build anywhere; `engine` (feature `native`)
//! is the C++ shim in `native/facegate_trt.cpp` and needs TensorRT and CUDA at build time.

pub mod cache;
#[cfg(feature = "native")]
pub mod engine;
#[cfg(feature = "native")]
mod ffi;

/// The arithmetic the engine is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Precision {
    /// 32-bit floats throughout: the reference.
    Fp32,
    /// Half precision where TensorRT finds it faster (the default where the GPU has fast FP16).
    Fp16,
    /// 8-bit integers calibrated on a set of faces, FP16 where INT8 does not fit.
    Int8,
}

impl Precision {
    /// Name used in engine file names and logs.
    pub fn name(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Fp16 => "fp16",
            Precision::Int8 => "int8",
        }
    }

    /// What the shim takes.
    #[cfg(feature = "native")]
    fn code(self) -> i32 {
        match self {
            Precision::Fp32 => 0,
            Precision::Fp16 => 1,
            Precision::Int8 => 2,
        }
    }

    /// The precision asked for, or FP32 when the GPU lacks fast arithmetic for it (compute
    /// capability: FP16 on 5.3, 6.0, 6.2 and 7.0+; INT8 on 6.1+), so a build never fails
    /// for want of a fast path.
    pub fn supported_on(self, capability: u32) -> Precision {
        let fast_fp16 = matches!(capability, 53 | 60 | 62) || capability >= 70;
        let fast_int8 = capability >= 61;
        match self {
            Precision::Int8 if fast_int8 => Precision::Int8,
            Precision::Int8 | Precision::Fp16 if fast_fp16 => Precision::Fp16,
            _ => Precision::Fp32,
        }
    }
}

/// TensorRT's version as `getInferLibVersion()` reports it, written the TensorRT 10 way
/// (MAJOR * 10000 + MINOR * 100 + PATCH): TensorRT 8 reports MAJOR * 1000 + MINOR * 100 + PATCH.
pub fn version_from_library(raw: i32) -> u32 {
    let raw = raw.max(0) as u32;
    if raw >= 100_000 {
        raw
    } else {
        raw / 1000 * 10_000 + raw / 100 % 10 * 100 + raw % 100
    }
}

/// What went wrong in TensorRT, CUDA or the engine cache.
#[derive(Debug, thiserror::Error)]
pub enum TrtError {
    /// TensorRT or CUDA refused (the text is theirs).
    #[error("TensorRT: {0}")]
    Runtime(String),
    /// The engine cache could not be read or written.
    #[error("engine cache {path}: {source}")]
    Cache {
        /// The file or folder.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The engine's tensors are not what the caller expects.
    #[error("engine: {0}")]
    Tensors(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_version_schemes_read_the_same_way() {
        assert_eq!(version_from_library(8601), 80_601); // TensorRT 8.6.1
        assert_eq!(version_from_library(8502), 80_502);
        assert_eq!(version_from_library(100_300), 100_300); // TensorRT 10.3.0
        assert_eq!(version_from_library(101_601), 101_601);
        assert_eq!(version_from_library(-1), 0);
    }

    #[test]
    fn a_precision_falls_back_to_what_the_gpu_does_fast() {
        // Jetson Orin (8.7) and Xavier (7.2): everything.
        assert_eq!(Precision::Int8.supported_on(87), Precision::Int8);
        assert_eq!(Precision::Fp16.supported_on(72), Precision::Fp16);
        // Jetson Nano (5.3): FP16 but no INT8.
        assert_eq!(Precision::Int8.supported_on(53), Precision::Fp16);
        // A GTX 1080 (6.1): INT8 but slow FP16.
        assert_eq!(Precision::Int8.supported_on(61), Precision::Int8);
        assert_eq!(Precision::Fp16.supported_on(61), Precision::Fp32);
        // Maxwell (5.2): neither.
        assert_eq!(Precision::Fp16.supported_on(52), Precision::Fp32);
        assert_eq!(Precision::Fp32.supported_on(90), Precision::Fp32);
    }
}
