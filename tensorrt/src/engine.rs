//! Building, loading and running an engine through the shim. Every `unsafe` block here calls
//! the shim with buffers whose lengths it is told, and owns what it gets back.
#![allow(unsafe_code)]

use crate::ffi;
use crate::{Precision, TrtError};
use std::ffi::CStr;
use std::os::raw::c_char;
use std::ptr::NonNull;
use std::sync::Mutex;

const ERR_LEN: usize = 4096;

fn message(buf: &[c_char]) -> String {
    // SAFETY: the buffer is zero-initialised and the shim writes at most ERR_LEN - 1 bytes and
    // a NUL (snprintf), so it holds a NUL-terminated string.
    let text = unsafe { CStr::from_ptr(buf.as_ptr()) };
    let text = text.to_string_lossy().trim().to_string();
    if text.is_empty() {
        "no reason given".into()
    } else {
        text
    }
}

/// TensorRT's version (MAJOR * 10000 + MINOR * 100 + PATCH), the library's own.
pub fn tensorrt_version() -> u32 {
    // SAFETY: no arguments; the shim returns getInferLibVersion().
    crate::version_from_library(unsafe { ffi::fg_trt_version() })
}

/// The current CUDA GPU: its name and compute capability (major * 10 + minor).
pub fn gpu() -> Result<(String, u32), TrtError> {
    let mut name = vec![0 as c_char; 256];
    let mut err = vec![0 as c_char; ERR_LEN];
    let mut capability = 0i32;
    // SAFETY: both buffers are as long as the lengths passed; capability is a valid i32.
    let rc = unsafe {
        ffi::fg_trt_gpu(
            name.as_mut_ptr(),
            name.len(),
            &mut capability,
            err.as_mut_ptr(),
            err.len(),
        )
    };
    if rc != 0 {
        return Err(TrtError::Runtime(message(&err)));
    }
    Ok((message(&name), capability.max(0) as u32))
}

/// Faces to calibrate INT8 with: `count` faces of `channels x height x width` floats, already
/// normalised as the model expects.
#[derive(Debug, Clone, Copy)]
pub struct Calibration<'a> {
    /// The faces, one after another.
    pub faces: &'a [f32],
    /// How many.
    pub count: usize,
}

/// Builds a serialized engine for one `1 x channels x height x width` input from ONNX bytes.
pub fn build(
    onnx: &[u8],
    input: [u32; 3],
    precision: Precision,
    calibration: Option<Calibration<'_>>,
    workspace_bytes: usize,
) -> Result<Vec<u8>, TrtError> {
    let [c, h, w] = input.map(|v| v as i32);
    let per_face = (c * h * w).max(0) as usize;
    let (calib_ptr, calib_count) = match calibration {
        Some(cal) if cal.faces.len() >= cal.count * per_face => (cal.faces.as_ptr(), cal.count),
        Some(cal) => {
            return Err(TrtError::Tensors(format!(
                "calibration set holds {} values, {} faces of {c}x{h}x{w} need {}",
                cal.faces.len(),
                cal.count,
                cal.count * per_face
            )));
        }
        None => (std::ptr::null(), 0),
    };
    let mut plan: *mut u8 = std::ptr::null_mut();
    let mut plan_len = 0usize;
    let mut err = vec![0 as c_char; ERR_LEN];
    // SAFETY: onnx and the calibration faces outlive the call and their lengths are checked
    // above; plan/plan_len are written by the shim only on success.
    let rc = unsafe {
        ffi::fg_trt_build(
            onnx.as_ptr(),
            onnx.len(),
            c,
            h,
            w,
            precision.code(),
            calib_ptr,
            calib_count,
            workspace_bytes,
            &mut plan,
            &mut plan_len,
            err.as_mut_ptr(),
            err.len(),
        )
    };
    if rc != 0 || plan.is_null() {
        return Err(TrtError::Runtime(message(&err)));
    }
    // SAFETY: on success plan points to plan_len bytes malloc'ed by the shim; they are copied
    // out and freed with the shim's own free.
    let bytes = unsafe {
        let v = std::slice::from_raw_parts(plan, plan_len).to_vec();
        ffi::fg_trt_free(plan);
        v
    };
    Ok(bytes)
}

/// One I/O tensor of an engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tensor {
    /// Its name in the ONNX graph.
    pub name: String,
    /// Whether the engine reads it.
    pub input: bool,
    /// Number of floats.
    pub elements: usize,
}

struct Raw(NonNull<ffi::RawEngine>);

// SAFETY: the shim's engine is used by one thread at a time (behind the Mutex in `Engine`);
// TensorRT allows an execution context to move between threads.
unsafe impl Send for Raw {}

impl Drop for Raw {
    fn drop(&mut self) {
        // SAFETY: the pointer came from fg_trt_load and is dropped once.
        unsafe { ffi::fg_trt_unload(self.0.as_ptr()) }
    }
}

/// A loaded engine with its GPU buffers, run one face at a time.
pub struct Engine {
    raw: Mutex<Raw>,
    tensors: Vec<Tensor>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("tensors", &self.tensors)
            .finish()
    }
}

impl Engine {
    /// Deserializes `plan` (made by [`build`] with the same TensorRT on the same GPU).
    pub fn load(plan: &[u8]) -> Result<Self, TrtError> {
        let mut err = vec![0 as c_char; ERR_LEN];
        // SAFETY: plan outlives the call; the shim copies what it needs.
        let raw =
            unsafe { ffi::fg_trt_load(plan.as_ptr(), plan.len(), err.as_mut_ptr(), err.len()) };
        let raw = Raw(NonNull::new(raw).ok_or_else(|| TrtError::Runtime(message(&err)))?);
        // SAFETY: raw is a live engine; names are NUL-terminated strings it owns, copied here.
        let tensors = unsafe {
            let n = ffi::fg_trt_tensors(raw.0.as_ptr());
            (0..n)
                .map(|i| {
                    let mut input = 0i32;
                    let mut elements = 0usize;
                    let name = ffi::fg_trt_tensor(raw.0.as_ptr(), i, &mut input, &mut elements);
                    Tensor {
                        name: CStr::from_ptr(name).to_string_lossy().into_owned(),
                        input: input != 0,
                        elements,
                    }
                })
                .collect()
        };
        Ok(Self {
            raw: Mutex::new(raw),
            tensors,
        })
    }

    /// The engine's I/O tensors, in the order [`Engine::run`] takes their buffers.
    pub fn tensors(&self) -> &[Tensor] {
        &self.tensors
    }

    /// Runs once: `buffers[i]` is read (inputs) or filled (outputs) for `tensors()[i]`, and must
    /// hold exactly its number of floats.
    pub fn run(&self, buffers: &mut [&mut [f32]]) -> Result<(), TrtError> {
        if buffers.len() != self.tensors.len() {
            return Err(TrtError::Tensors(format!(
                "{} buffers for {} tensors",
                buffers.len(),
                self.tensors.len()
            )));
        }
        for (b, t) in buffers.iter().zip(&self.tensors) {
            if b.len() != t.elements {
                return Err(TrtError::Tensors(format!(
                    "tensor {} holds {} floats, the buffer {}",
                    t.name,
                    t.elements,
                    b.len()
                )));
            }
        }
        let pointers: Vec<*mut f32> = buffers.iter_mut().map(|b| b.as_mut_ptr()).collect();
        let mut err = vec![0 as c_char; ERR_LEN];
        let raw = self
            .raw
            .lock()
            .map_err(|_| TrtError::Runtime("a previous run panicked".into()))?;
        // SAFETY: one pointer per tensor, each to exactly that tensor's number of floats
        // (checked above), alive and exclusively borrowed for the call.
        let rc = unsafe {
            ffi::fg_trt_run(
                raw.0.as_ptr(),
                pointers.as_ptr(),
                err.as_mut_ptr(),
                err.len(),
            )
        };
        if rc != 0 {
            return Err(TrtError::Runtime(message(&err)));
        }
        Ok(())
    }
}
