//! Where a face's embedding time goes: per-operator time of the model's tract plan, with the
//! device's kernels and with tract's own (`cargo run --release -p facegate-pipeline --example
//! embed_profile -- models/default/facegate.onnx 64`). A tool for performance work; the
//! numbers the README quotes come from `facegate bench`.
#![allow(clippy::unwrap_used)]

use facegate_pipeline::embed::kernels;
use std::collections::BTreeMap;
use std::time::Instant;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::plan::{SimpleState, eval};

fn main() -> TractResult<()> {
    let mut args = std::env::args().skip(1);
    let path = args.next().unwrap_or("models/default/facegate.onnx".into());
    let size: usize = args.next().unwrap_or("64".into()).parse()?;
    for fused in [false, true] {
        let parser = if fused {
            kernels::onnx()
        } else {
            tract_onnx::onnx()
        };
        let mut model = parser
            .model_for_path(&path)?
            .with_input_fact(0, f32::fact([1, 3, size, size]).into())?
            .into_optimized()?;
        if fused {
            kernels::select_topk(&mut model);
        }
        let plan = model.into_runnable()?;
        let input: Tensor =
            tract_ndarray::Array4::from_shape_fn((1, 3, size, size), |(_, c, y, x)| {
                ((x * 7 + y * 3 + c) % 17) as f32 / 8.0 - 1.0
            })
            .into();
        let runs = 100;
        let mut per_op: BTreeMap<String, f64> = BTreeMap::new();
        let mut state = SimpleState::new(&plan)?;
        let start = Instant::now();
        for _ in 0..runs {
            state.run_plan_with_eval(tvec![input.clone().into_tvalue()], |s, st, node, inp| {
                let t = Instant::now();
                let out = eval(s, st, node, inp);
                *per_op.entry(node.op.name().to_string()).or_default() +=
                    t.elapsed().as_secs_f64() * 1000.0 / runs as f64;
                out
            })?;
        }
        let total = start.elapsed().as_secs_f64() * 1000.0 / runs as f64;
        let mut rows: Vec<_> = per_op.into_iter().collect();
        rows.sort_by(|a, b| b.1.total_cmp(&a.1));
        println!(
            "{} kernels: {total:.2} ms per face",
            if fused { "device" } else { "tract's" }
        );
        for (op, ms) in rows.iter().take(12) {
            println!("  {ms:7.3} ms  {op}");
        }
    }
    Ok(())
}
