//! The CASIA-Net style encoder: 14 layers of 3x3 conv -> BatchNorm -> ELU, down-sampling by
//! stride-2 convs (never pooling). Its 24x24, 12x12 and 6x6 outputs feed the head.

use super::NetConfig;
use super::fold::{FoldedConv, fold};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::elu;

/// The encoder layers of docs/method.md: (name, stride, channels in the paper's network).
const LAYERS: [(&str, usize, usize); 14] = [
    ("k0_1", 1, 32),
    ("k0_2", 1, 64),
    ("k1_0", 2, 64),
    ("k1_1", 1, 64),
    ("k1_2", 1, 128),
    ("k2_0", 2, 128),
    ("k2_1", 1, 96),
    ("k2_2", 1, 192),
    ("k3_0", 2, 192),
    ("k3_1", 1, 128),
    ("k3_2", 1, 256),
    ("k4_0", 2, 256),
    ("k4_1", 1, 160),
    ("k4_2", 1, 320),
];

/// Index of k2_2, k3_2 and k4_2 in [`LAYERS`].
const K2_2: usize = 7;
const K3_2: usize = 10;

/// Weights drawn from N(0, 0.02); the released code truncates at 2 std, which burn's
/// initialisers do not offer (a deliberate, small deviation).
pub(crate) fn init_normal() -> Initializer {
    Initializer::Normal {
        mean: 0.0,
        std: 0.02,
    }
}

/// Momentum of burn's running statistics: the weight of the new batch, so TF's decay 0.9 is 0.1.
pub(crate) const BN_MOMENTUM: f64 = 0.1;

/// 3x3 (or 1x1) conv with bias, BatchNorm, and ELU unless it is the last encoder layer.
#[derive(Module, Debug)]
pub struct ConvBn {
    conv: Conv2d,
    bn: BatchNorm,
    #[module(skip)]
    activate: bool,
}

impl ConvBn {
    /// A conv + BN (+ ELU) block.
    pub fn new(
        channels: [usize; 2],
        kernel: usize,
        stride: usize,
        activate: bool,
        device: &Device,
    ) -> Self {
        let pad = kernel / 2;
        Self {
            conv: Conv2dConfig::new(channels, [kernel, kernel])
                .with_stride([stride, stride])
                .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
                .with_initializer(init_normal())
                .init(device),
            bn: BatchNormConfig::new(channels[1])
                .with_momentum(BN_MOMENTUM)
                .init(device),
            activate,
        }
    }

    /// The block in inference form, BatchNorm folded into the conv.
    pub fn folded(&self) -> FoldedConv {
        let [_, _, kernel, _] = self.conv.weight.dims();
        fold(&self.conv, &self.bn, kernel / 2, self.activate)
    }

    /// Applies the block.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = self.bn.forward(self.conv.forward(x));
        if self.activate { elu(y, 1.0) } else { y }
    }
}

/// The encoder's three outputs the head reads.
#[derive(Debug, Clone)]
pub struct Levels {
    /// k2_2 at a quarter of the input side (24x24).
    pub k2_2: Tensor<4>,
    /// k3_2 at an eighth (12x12).
    pub k3_2: Tensor<4>,
    /// k4_2 at a sixteenth (6x6), BatchNorm without ELU.
    pub k4_2: Tensor<4>,
}

/// The encoder.
#[derive(Module, Debug)]
pub struct Backbone {
    layers: Vec<ConvBn>,
}

impl Backbone {
    /// Builds the encoder for `cfg`.
    pub fn new(cfg: &NetConfig, device: &Device) -> Self {
        let mut in_ch = 3;
        let layers = LAYERS
            .iter()
            .enumerate()
            .map(|(i, &(_, stride, out))| {
                let out = cfg.channels(out);
                let layer = ConvBn::new([in_ch, out], 3, stride, i + 1 < LAYERS.len(), device);
                in_ch = out;
                layer
            })
            .collect();
        Self { layers }
    }

    /// Runs the encoder on `[N, 3, size, size]` faces.
    pub fn forward(&self, mut x: Tensor<4>) -> Levels {
        let mut k2_2 = None;
        let mut k3_2 = None;
        for (i, layer) in self.layers.iter().enumerate() {
            x = layer.forward(x);
            match i {
                K2_2 => k2_2 = Some(x.clone()),
                K3_2 => k3_2 = Some(x.clone()),
                _ => {}
            }
        }
        // Both indices are below the layer count, so both are set by now.
        let (Some(k2_2), Some(k3_2)) = (k2_2, k3_2) else {
            unreachable!("LAYERS holds k2_2 and k3_2")
        };
        Levels {
            k2_2,
            k3_2,
            k4_2: x,
        }
    }

    /// The layers in inference form, and the indices of k2_2 and k3_2 among them.
    pub fn folded(&self) -> (Vec<FoldedConv>, [usize; 2]) {
        (
            self.layers.iter().map(ConvBn::folded).collect(),
            [K2_2, K3_2],
        )
    }

    /// The base CNN's descriptor: the average pool of k4_2.
    pub fn base_feature(&self, faces: Tensor<4>) -> Tensor<2> {
        super::spatial_mean(self.forward(faces).k4_2)
    }
}
