//! Faster kernels for two ONNX operators the face models use, swapped into tract's plan at load.
//!
//! Part of the embed stage. tract expands `Elu` into five element-wise passes (exp, sub, mul,
//! compare, select) and runs `TopK` as a full stable sort of each row; on the default model
//! these were ~35% of a face's embedding time. Both replacements compute exactly what the ONNX
//! operators define (same values, same indices, ties to the lower index), so the model's outputs
//! do not change; the tests compare them with tract's own operators.

use std::cmp::Ordering;
use tract_onnx::model::ParsingContext;
use tract_onnx::pb::NodeProto;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::array::Topk;
use tract_onnx::tract_core::ops::element_wise::{ElementWiseMiniOp, ElementWiseOp};
use tract_onnx::tract_hir::infer::InferenceOp;
use tract_onnx::tract_hir::ops::element_wise::ElementWiseIntoHir;

/// An ONNX parser whose `Elu` is one fused pass.
pub fn onnx() -> tract_onnx::Onnx {
    let mut onnx = tract_onnx::onnx();
    onnx.op_register.insert("Elu", parse_elu);
    onnx
}

/// Replaces every `Topk` node of an optimised model by [`SelectTopk`] (same facts, same outputs).
pub fn select_topk(model: &mut TypedModel) {
    for node in &mut model.nodes {
        if let Some(topk) = node.op_as::<Topk>() {
            let replacement = SelectTopk(topk.clone());
            node.op = Box::new(replacement);
        }
    }
}

fn parse_elu(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let alpha = node.get_attr_opt("alpha")?.unwrap_or(1.0);
    Ok((
        ElementWiseOp(Box::new(FusedElu { alpha }), None).into_hir(),
        vec![],
    ))
}

/// `Elu(x) = x if x > 0 else alpha * (exp(x) - 1)` in a single pass over f32 data.
#[derive(Debug, Clone)]
pub struct FusedElu {
    /// The ONNX `alpha` attribute.
    pub alpha: f32,
}

impl PartialEq for FusedElu {
    fn eq(&self, other: &Self) -> bool {
        self.alpha.to_bits() == other.alpha.to_bits()
    }
}

impl Eq for FusedElu {}

impl ElementWiseMiniOp for FusedElu {
    fn name(&self) -> String {
        "FusedElu".into()
    }

    fn eval_in_place(&self, t: &mut Tensor, out_dt: Option<DatumType>) -> TractResult<()> {
        let dt = out_dt.unwrap_or(t.datum_type());
        if dt != f32::datum_type() {
            bail!("FusedElu supports f32 only, got {dt:?}");
        }
        let mut plain = t.try_as_plain_ram_mut()?;
        let xs: &mut [f32] = plain.as_slice_mut::<f32>()?;
        let alpha = self.alpha;
        // Branch-free, so the compiler vectorises the whole pass.
        for x in xs.iter_mut() {
            let negative = alpha * (exp_nonpositive(x.min(0.0)) - 1.0);
            *x = if *x > 0.0 { *x } else { negative };
        }
        Ok(())
    }

    fn cost_per_element(&self, dt: DatumType) -> TVec<(Cost, usize)> {
        tvec!((Cost::FMA(dt), 2))
    }
}

/// `e^x` for `x <= 0` in plain arithmetic the compiler can vectorise (a libm call per element
/// cannot be): Cephes' `expf` (range reduction by ln 2, degree-6 polynomial, exponent bits),
/// within 2 ulp of `f32::exp`; below -87 it returns e^-87 (ELU is -alpha there to f32 precision).
fn exp_nonpositive(x: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0; // 1.5 * 2^23: adding and subtracting it rounds to integer
    let x = x.max(-87.0);
    let n = (x * std::f32::consts::LOG2_E + MAGIC) - MAGIC;
    let r = x - n * 0.693_359_4 - n * -2.121_944_4e-4;
    let p = 1.987_569_1e-4_f32;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    e * f32::from_bits(((n as i32).wrapping_add(127) as u32) << 23)
}

/// tract's `Topk` evaluated with a selection then a sort of the `k` kept (not of the whole row).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SelectTopk(pub Topk);

impl Op for SelectTopk {
    fn name(&self) -> StaticName {
        "SelectTopk".into()
    }

    fn mints_runtime_symbols(&self) -> bool {
        true
    }

    op_as_typed_op!();
}

impl EvalOp for SelectTopk {
    op_out_of_plan!();

    fn eval(&self, ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        if inputs[0].datum_type() != f32::datum_type() {
            return self.0.eval(ctx, inputs);
        }
        let (input, k) = args_2!(inputs);
        let k = k.cast_to_scalar::<i64>()?;
        let axis = self.0.axis;
        let shape: TVec<usize> = input.shape().into();
        let len = shape[axis];
        let k = usize::try_from(k)
            .ok()
            .filter(|k| *k <= len)
            .ok_or_else(|| format_err!("TopK: k = {k} outside 0..={len}"))?;
        let mut out_shape = shape.clone();
        out_shape[axis] = k;
        let mut values = Tensor::zero::<f32>(&out_shape)?;
        let mut indices = Tensor::zero::<i64>(&out_shape)?;
        let view = input.to_plain_array_view::<f32>()?;
        {
            let mut values_plain = values.try_as_plain_ram_mut()?;
            let mut values_view = values_plain.to_array_view_mut::<f32>()?;
            let mut indices_plain = indices.try_as_plain_ram_mut()?;
            let mut indices_view = indices_plain.to_array_view_mut::<i64>()?;
            let largest = self.0.largest;
            let mut row: Vec<(usize, f32)> = Vec::with_capacity(len);
            let lanes = view.lanes(tract_ndarray::Axis(axis));
            let out_v = values_view.lanes_mut(tract_ndarray::Axis(axis));
            let out_i = indices_view.lanes_mut(tract_ndarray::Axis(axis));
            for ((lane, mut ov), mut oi) in lanes.into_iter().zip(out_v).zip(out_i) {
                row.clear();
                row.extend(lane.iter().copied().enumerate());
                top_k(&mut row, k, largest);
                for (j, (ix, v)) in row.iter().take(k).enumerate() {
                    ov[j] = *v;
                    oi[j] = *ix as i64;
                }
            }
        }
        Ok(tvec!(values.into_tvalue(), indices.into_tvalue()))
    }
}

impl TypedOp for SelectTopk {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        self.0.output_facts(inputs)
    }

    as_op!();
}

/// Orders the first `k` entries of `row` as a stable sort by value would (largest or smallest
/// first; equal values by index), without sorting the rest.
fn top_k(row: &mut [(usize, f32)], k: usize, largest: bool) {
    let order = |a: &(usize, f32), b: &(usize, f32)| -> Ordering {
        let by_value = if largest {
            b.1.total_cmp(&a.1)
        } else {
            a.1.total_cmp(&b.1)
        };
        by_value.then(a.0.cmp(&b.0))
    };
    if k == 0 {
        return;
    }
    if k < row.len() {
        row.select_nth_unstable_by(k - 1, order);
    }
    row[..k].sort_unstable_by(order);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(model: TypedModel, input: Tensor) -> TVec<TValue> {
        model
            .into_runnable()
            .unwrap()
            .run(tvec![input.into_tvalue()])
            .unwrap()
    }

    /// Loads `onnx_bytes` with tract's parser and with ours and returns both optimised models.
    fn both(onnx_bytes: &[u8], shape: &[usize]) -> (TypedModel, TypedModel) {
        let load = |parser: tract_onnx::Onnx, swap: bool| {
            let mut m = parser
                .model_for_read(&mut &onnx_bytes[..])
                .unwrap()
                .with_input_fact(0, f32::fact(shape).into())
                .unwrap()
                .into_optimized()
                .unwrap();
            if swap {
                select_topk(&mut m);
            }
            m
        };
        (load(tract_onnx::onnx(), false), load(onnx(), true))
    }

    #[test]
    fn the_vectorisable_exp_is_within_two_ulp_of_libm() {
        let mut worst = 0.0f32;
        for i in 0..=870_000 {
            let x = -(i as f32) * 1e-4;
            let (got, want) = (exp_nonpositive(x), x.exp());
            worst = worst.max(((got - want) / want).abs());
        }
        assert!(worst <= 2.0 * f32::EPSILON, "relative error {worst}");
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert!(exp_nonpositive(-1000.0) > 0.0 && exp_nonpositive(-1000.0) < 1e-37);
    }

    #[test]
    fn top_k_matches_a_stable_sort_with_ties_and_both_directions() {
        let values = [3.0, -1.0, 3.0, 7.0, 0.0, 7.0, -1.0, 2.5, 3.0];
        for largest in [true, false] {
            for k in 0..=values.len() {
                let mut row: Vec<(usize, f32)> = values.iter().copied().enumerate().collect();
                let mut want = row.clone();
                want.sort_by(|a, b| {
                    let o = a.1.total_cmp(&b.1);
                    if largest { o.reverse() } else { o }
                });
                top_k(&mut row, k, largest);
                assert_eq!(&row[..k], &want[..k], "k={k} largest={largest}");
            }
        }
    }

    #[test]
    fn the_default_model_gives_the_same_outputs_with_and_without_the_kernels() {
        let card = crate::model::default_card();
        let parsed: facegate_contract::ModelCard =
            serde_json::from_str(&std::fs::read_to_string(&card).unwrap()).unwrap();
        let bytes = std::fs::read(parsed.model_path(&card)).unwrap();
        let (w, h) = (parsed.input.width as usize, parsed.input.height as usize);
        let shape = [1, 3, h, w];
        let (plain, fast) = both(&bytes, &shape);
        let kinds = |m: &TypedModel| -> Vec<String> {
            m.nodes.iter().map(|n| n.op.name().to_string()).collect()
        };
        assert!(kinds(&fast).iter().any(|k| k == "SelectTopk"));
        assert!(kinds(&fast).iter().any(|k| k == "FusedElu"));
        assert!(!kinds(&fast).iter().any(|k| k == "Topk"));
        // A face-like input with structure (a gradient and a ripple), so maps have ties and
        // negatives.
        let data: Vec<f32> = (0..3 * h * w)
            .map(|i| ((i % w) as f32 / w as f32 - 0.5) + 0.3 * ((i / 7) as f32).sin())
            .collect();
        let input = Tensor::from_shape(&shape, &data).unwrap();
        let a = run(plain, input.clone());
        let b = run(fast, input);
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            let x = x.to_plain_array_view::<f32>().unwrap();
            let y = y.to_plain_array_view::<f32>().unwrap();
            assert_eq!(x.shape(), y.shape());
            let worst = x
                .iter()
                .zip(y.iter())
                .map(|(p, q)| (p - q).abs())
                .fold(0.0f32, f32::max);
            assert!(worst < 1e-4, "outputs differ by {worst}");
        }
    }
}
