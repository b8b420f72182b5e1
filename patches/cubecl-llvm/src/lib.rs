//! facegate's stand-in for cubecl-llvm 0.11.3 (see Cargo.toml for why and when to drop it):
//! the types cubecl-cuda names for its LLVM backend, whose compiler here only refuses. The
//! trainer builds cubecl with `cuda-cpp`, so CUDA kernels go through NVRTC and nothing in this
//! crate runs but [`PtxVersion`](nvptx::ptx_version::PtxVersion), copied from cubecl-llvm
//! (MIT OR Apache-2.0, Tracel AI).

use cubecl_core::ir::DeviceProperties;
use cubecl_core::ir::nvidia::SmArch;
use cubecl_environment::backtrace::BackTrace;
use cubecl_runtime::compiler::{CompilationError, Compiler};
use cubecl_runtime::kernel::{BufferIOAttr, KernelDefinition};

pub mod nvptx {
    //! The NVPTX target's PTX version.
    pub mod ptx_version;
}

pub mod shared {
    //! What the LLVM backend would change in a device's advertised features.
    pub mod lowered_features {
        use super::super::DeviceProperties;

        /// The GPU targets of the LLVM backend.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum GpuTarget {
            /// NVIDIA, through PTX.
            Nvptx,
        }

        /// Called by cubecl-cuda only when its LLVM backend is selected, which facegate's
        /// build never does (`cuda-cpp`); leaves the features as the runtime found them.
        pub fn restrict_features(_props: &mut DeviceProperties, _target: GpuTarget) {}
    }
}

use nvptx::ptx_version::PtxVersion;

/// The LLVM backend's targets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LlvmTarget {
    /// The host CPU.
    #[default]
    Cpu,
    /// NVIDIA GPUs through PTX.
    Nvptx,
}

/// The LLVM backend's compiler; here it refuses every kernel.
#[derive(Clone, Debug, Default)]
pub struct PlironCompiler {
    /// What it would compile for.
    pub target: LlvmTarget,
}

/// The LLVM backend's options, as cubecl-cuda fills them.
#[derive(Clone, Debug, Default)]
pub struct PlironOptions {
    /// AMD architecture (unused).
    pub arch: Option<()>,
    /// The NVIDIA architecture.
    pub sm_arch: Option<SmArch>,
    /// The PTX version to emit.
    pub ptx_version: Option<PtxVersion>,
    /// Scalars in the kernel parameter block.
    pub grid_constants: bool,
}

/// A compiled PTX module (never made here).
#[derive(Clone, Debug)]
pub struct NvptxModule {
    /// NUL-terminated PTX.
    pub ptx: Vec<core::ffi::c_char>,
    /// Kernel entry point.
    pub entrypoint: String,
    /// IR for logs and cache keys.
    pub ir: String,
    /// Shared memory per launch, bytes.
    pub shared_memory_size: usize,
    /// Buffer access modes in binding order.
    pub io: Vec<BufferIOAttr>,
}

/// What the LLVM backend would produce.
#[derive(Clone, Debug)]
pub enum PlironArtifact {
    /// PTX for NVIDIA GPUs.
    NvptxCode(NvptxModule),
    /// Nothing else is ever produced here.
    Unavailable,
}

impl core::fmt::Display for PlironArtifact {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NvptxCode(module) => f.write_str(&module.ir),
            Self::Unavailable => f.write_str("(no LLVM backend in this build)"),
        }
    }
}

impl Compiler for PlironCompiler {
    type Representation = PlironArtifact;
    type CompilationOptions = PlironOptions;

    fn compile(
        &mut self,
        _kernel: KernelDefinition,
        _options: &Self::CompilationOptions,
    ) -> Result<Self::Representation, CompilationError> {
        Err(CompilationError::Generic {
            reason: "this build has no LLVM backend (cubecl-llvm is facegate's stand-in): \
                     CUDA kernels compile with NVRTC (cubecl's `cuda-cpp` feature)"
                .into(),
            backtrace: BackTrace::capture(),
        })
    }

    fn extension(&self) -> &'static str {
        "ll"
    }

    fn lang_tag(&self) -> &'static str {
        "llvm"
    }
}
