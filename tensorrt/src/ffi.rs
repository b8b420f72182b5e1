//! The C ABI of `native/facegate_trt.cpp`, declared once; only [`crate::engine`] calls it.
#![allow(unsafe_code)]

use std::os::raw::c_char;

/// The shim's engine: TensorRT runtime, engine, context, stream and GPU buffers.
#[repr(C)]
pub struct RawEngine {
    _private: [u8; 0],
}

unsafe extern "C" {
    pub fn fg_trt_version() -> i32;
    pub fn fg_trt_gpu(
        name: *mut c_char,
        name_len: usize,
        capability: *mut i32,
        err: *mut c_char,
        err_len: usize,
    ) -> i32;
    #[allow(clippy::too_many_arguments)]
    pub fn fg_trt_build(
        onnx: *const u8,
        onnx_len: usize,
        channels: i32,
        height: i32,
        width: i32,
        precision: i32,
        calib: *const f32,
        calib_count: usize,
        workspace_bytes: usize,
        plan: *mut *mut u8,
        plan_len: *mut usize,
        err: *mut c_char,
        err_len: usize,
    ) -> i32;
    pub fn fg_trt_free(plan: *mut u8);
    pub fn fg_trt_load(
        plan: *const u8,
        plan_len: usize,
        err: *mut c_char,
        err_len: usize,
    ) -> *mut RawEngine;
    pub fn fg_trt_tensors(e: *const RawEngine) -> i32;
    pub fn fg_trt_tensor(
        e: *const RawEngine,
        i: i32,
        is_input: *mut i32,
        elements: *mut usize,
    ) -> *const c_char;
    pub fn fg_trt_run(
        e: *mut RawEngine,
        host: *const *mut f32,
        err: *mut c_char,
        err_len: usize,
    ) -> i32;
    pub fn fg_trt_unload(e: *mut RawEngine);
}
