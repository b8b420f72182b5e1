//! The network in inference form: every conv with its BatchNorm folded in, as plain numbers.
//!
//! Position: between a trained [`FaceNet`](super::FaceNet) and the ONNX writer. Folding uses the
//! running statistics, so the folded network computes what `embed` computes on a plain
//! (non-autodiff) device.

use burn::nn::BatchNorm;
use burn::nn::conv::Conv2d;
use burn::prelude::*;

/// One square conv with its BatchNorm folded into weight and bias.
#[derive(Debug, Clone, PartialEq)]
pub struct FoldedConv {
    /// Output channels.
    pub out_channels: usize,
    /// Input channels.
    pub in_channels: usize,
    /// Kernel side (3 or 1).
    pub kernel: usize,
    /// Stride on both axes.
    pub stride: usize,
    /// Zero padding on every side.
    pub pad: usize,
    /// Weights `[out, in, kernel, kernel]`, row-major.
    pub weight: Vec<f32>,
    /// One bias per output channel.
    pub bias: Vec<f32>,
    /// Whether ELU (alpha 1) follows.
    pub elu: bool,
}

/// The interpretable head in inference form.
#[derive(Debug, Clone, PartialEq)]
pub struct FoldedHead {
    /// The 1x1 projection of up-sampled k3_2.
    pub p3: FoldedConv,
    /// The 1x1 projection of up-sampled k4_2.
    pub p4: FoldedConv,
    /// The 3x3 conv from the hypercolumn to the signed maps.
    pub conv: FoldedConv,
    /// Side of the maps.
    pub map_size: usize,
    /// Rank each map is thresholded at (see `sparsify_top_k`).
    pub top_k: usize,
    /// The face region (0/1 per map cell, row-major) the maps are restricted to before the
    /// top-k, if any.
    pub face: Option<Vec<f32>>,
}

/// The whole network in inference form, in data-flow order.
#[derive(Debug, Clone, PartialEq)]
pub struct FoldedNet {
    /// Input side in pixels.
    pub input_size: usize,
    /// The 14 encoder layers.
    pub encoder: Vec<FoldedConv>,
    /// Indices in `encoder` of k2_2 and k3_2, the hypercolumn's two inner taps (the last layer,
    /// k4_2, is the third).
    pub taps: [usize; 2],
    /// The head; `None` for the base CNN, whose maps are k4_2 itself.
    pub head: Option<FoldedHead>,
}

impl FoldedNet {
    /// Length of the feature (and number of maps).
    pub fn feature_dim(&self) -> usize {
        match &self.head {
            Some(h) => h.conv.out_channels,
            None => self.encoder.last().map_or(0, |c| c.out_channels),
        }
    }

    /// Side of the maps output.
    pub fn map_size(&self) -> usize {
        match &self.head {
            Some(h) => h.map_size,
            None => self.input_size / 16,
        }
    }
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().iter::<f32>().collect()
}

/// Folds `bn` (running statistics) into `conv`: `W' = W * s`, `b' = (b - mean) * s + beta` with
/// `s = gamma / sqrt(var + eps)` per output channel.
pub(super) fn fold(conv: &Conv2d, bn: &BatchNorm, pad: usize, elu: bool) -> FoldedConv {
    let [out_channels, in_channels, kernel, _] = conv.weight.dims();
    let mut weight = values(conv.weight.val());
    let bias = conv
        .bias
        .as_ref()
        .map(|b| values(b.val()))
        .unwrap_or_else(|| vec![0.0; out_channels]);
    let gamma = values(bn.gamma.val());
    let beta = values(bn.beta.val());
    let mean = values(bn.running_mean.value());
    let var = values(bn.running_var.value());
    let per_out = in_channels * kernel * kernel;
    let mut folded_bias = Vec::with_capacity(out_channels);
    for o in 0..out_channels {
        let s = f64::from(gamma[o]) / (f64::from(var[o]) + bn.epsilon).sqrt();
        for w in &mut weight[o * per_out..(o + 1) * per_out] {
            *w = (f64::from(*w) * s) as f32;
        }
        folded_bias
            .push(((f64::from(bias[o]) - f64::from(mean[o])) * s + f64::from(beta[o])) as f32);
    }
    FoldedConv {
        out_channels,
        in_channels,
        kernel,
        stride: conv.stride[0],
        pad,
        weight,
        bias: folded_bias,
        elu,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::NetConfig;
    use burn::tensor::Distribution;
    use burn::tensor::activation::elu;
    use burn::tensor::module::conv2d;
    use burn::tensor::ops::ConvOptions;

    /// Runs a folded conv with burn's functional conv.
    fn apply(f: &FoldedConv, x: Tensor<4>) -> Tensor<4> {
        let device = x.device();
        let w = Tensor::<1>::from_floats(f.weight.as_slice(), &device).reshape([
            f.out_channels,
            f.in_channels,
            f.kernel,
            f.kernel,
        ]);
        let b = Tensor::<1>::from_floats(f.bias.as_slice(), &device);
        let y = conv2d(
            x,
            w,
            Some(b),
            ConvOptions::new([f.stride; 2], [f.pad; 2], [1, 1], 1),
        );
        if f.elu { elu(y, 1.0) } else { y }
    }

    #[test]
    fn folded_encoder_matches_conv_then_batchnorm() {
        let device = Device::flex();
        let cfg = NetConfig::tiny(3);
        // Training-mode passes move the running statistics away from 0 and 1, so the fold
        // is tested on non-trivial values.
        let ad = device.clone().autodiff();
        let net = cfg.init(&ad);
        for _ in 0..3 {
            let x = Tensor::<4>::random([4, 3, 32, 32], Distribution::Normal(0.5, 2.0), &ad);
            let _ = net.embed(x);
        }
        let net = net.into_record();
        let plain = cfg.init(&device).try_load_record(net).unwrap();
        let folded = plain.folded(facegate_contract::card::TrainingMode::Full);
        assert_eq!(folded.encoder.len(), 14);
        assert_eq!(folded.taps, [7, 10]);

        let x = Tensor::<4>::random([2, 3, 32, 32], Distribution::Uniform(-1.0, 1.0), &device);
        let mut y = x.clone();
        for layer in &folded.encoder {
            y = apply(layer, y);
        }
        let want = plain.backbone.forward(x).k4_2;
        let diff = (y - want.clone()).abs().max().into_scalar::<f32>();
        let scale = want.abs().max().into_scalar::<f32>();
        assert!(scale > 1e-3, "the layers compute something: {scale}");
        assert!(
            diff < 1e-4 * scale,
            "max difference {diff} at scale {scale}"
        );
    }
}
