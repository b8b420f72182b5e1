//! Where the trainer computes: burn's Flex CPU backend (always built) or CUDA (built with the
//! `cuda` cargo feature; it compiles without a CUDA toolkit and loads the driver at run time).

use burn::prelude::Device;

/// A compute backend the trainer can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// burn's pure-Rust CPU backend (SIMD, all cores).
    Flex,
    /// The first CUDA GPU (needs a build with `--features cuda`).
    Cuda,
}

/// Why a backend cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// The binary was built without the backend.
    #[error(
        "this facegate-train was built without CUDA; rebuild with `cargo build --release -p facegate-train --features cuda`"
    )]
    NotBuilt,
}

impl Backend {
    /// Short name, as on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Flex => "flex",
            Self::Cuda => "cuda",
        }
    }

    /// The device to compute on.
    pub fn device(self) -> Result<Device, BackendError> {
        match self {
            Self::Flex => Ok(Device::flex()),
            Self::Cuda => cuda(),
        }
    }
}

#[cfg(feature = "cuda")]
fn cuda() -> Result<Device, BackendError> {
    Ok(Device::cuda(0))
}

#[cfg(not(feature = "cuda"))]
fn cuda() -> Result<Device, BackendError> {
    Err(BackendError::NotBuilt)
}
