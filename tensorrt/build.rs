//! Compiles the C++ shim against TensorRT and the CUDA runtime when the `native` feature is on.
//!
//! Headers and libraries are looked for where JetPack puts them (TensorRT in
//! /usr/include/aarch64-linux-gnu and /usr/lib/aarch64-linux-gnu, CUDA in /usr/local/cuda), or
//! where TENSORRT_ROOT / CUDA_ROOT say (each with include/ and lib/ or lib64/).
//! FACEGATE_TENSORRT_CHECK_ONLY=1 skips the shim so `cargo check` / `cargo clippy` can type-check
//! the Rust side on a machine without TensorRT (nothing links then).

fn main() {
    println!("cargo:rerun-if-changed=native/facegate_trt.cpp");
    println!("cargo:rerun-if-env-changed=TENSORRT_ROOT");
    println!("cargo:rerun-if-env-changed=CUDA_ROOT");
    println!("cargo:rerun-if-env-changed=FACEGATE_TENSORRT_CHECK_ONLY");
    #[cfg(feature = "native")]
    native::build();
}

#[cfg(feature = "native")]
mod native {
    use std::env;
    use std::path::{Path, PathBuf};

    fn first_with(candidates: &[PathBuf], file: &str) -> Option<PathBuf> {
        candidates.iter().find(|d| d.join(file).is_file()).cloned()
    }

    fn roots(var: &str, defaults: &[&str], sub: &[&str]) -> Vec<PathBuf> {
        let mut out = Vec::new();
        if let Some(root) = env::var_os(var) {
            for s in sub {
                out.push(Path::new(&root).join(s));
            }
        }
        out.extend(defaults.iter().map(PathBuf::from));
        out
    }

    pub fn build() {
        if env::var_os("FACEGATE_TENSORRT_CHECK_ONLY").is_some_and(|v| v == "1") {
            println!(
                "cargo:warning=FACEGATE_TENSORRT_CHECK_ONLY=1: the TensorRT shim is not compiled; \
                 this build type-checks but cannot link"
            );
            return;
        }
        let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
        let multiarch = if arch == "aarch64" {
            "aarch64-linux-gnu"
        } else {
            "x86_64-linux-gnu"
        };
        let trt_inc = roots(
            "TENSORRT_ROOT",
            &[&format!("/usr/include/{multiarch}"), "/usr/include"],
            &["include"],
        );
        let trt_lib = roots(
            "TENSORRT_ROOT",
            &[&format!("/usr/lib/{multiarch}"), "/usr/lib"],
            &["lib", "lib64"],
        );
        let cuda_inc = roots("CUDA_ROOT", &["/usr/local/cuda/include"], &["include"]);
        let cuda_lib = roots(
            "CUDA_ROOT",
            &[
                "/usr/local/cuda/lib64",
                "/usr/local/cuda/targets/aarch64-linux/lib",
            ],
            &["lib64", "lib"],
        );
        let missing = |what: &str, file: &str, dirs: &[PathBuf], var: &str| -> ! {
            panic!(
                "facegate-tensorrt (feature `tensorrt`): {what} not found ({file} in none of \
                 {dirs:?}); install JetPack's TensorRT / CUDA, or set {var} to its folder"
            )
        };
        let Some(trt_inc_dir) = first_with(&trt_inc, "NvInfer.h") else {
            missing("TensorRT headers", "NvInfer.h", &trt_inc, "TENSORRT_ROOT")
        };
        let Some(cuda_inc_dir) = first_with(&cuda_inc, "cuda_runtime_api.h") else {
            missing("CUDA headers", "cuda_runtime_api.h", &cuda_inc, "CUDA_ROOT")
        };
        let Some(trt_lib_dir) = first_with(&trt_lib, "libnvinfer.so") else {
            missing(
                "TensorRT library",
                "libnvinfer.so",
                &trt_lib,
                "TENSORRT_ROOT",
            )
        };
        let Some(cuda_lib_dir) = first_with(&cuda_lib, "libcudart.so") else {
            missing("CUDA runtime", "libcudart.so", &cuda_lib, "CUDA_ROOT")
        };
        cc::Build::new()
            .cpp(true)
            .std("c++17")
            .file("native/facegate_trt.cpp")
            .include(&trt_inc_dir)
            .include(&cuda_inc_dir)
            .warnings(true)
            .compile("facegate_trt");
        for dir in [&trt_lib_dir, &cuda_lib_dir] {
            println!("cargo:rustc-link-search=native={}", dir.display());
        }
        for lib in ["nvinfer", "nvonnxparser", "cudart"] {
            println!("cargo:rustc-link-lib=dylib={lib}");
        }
    }
}
