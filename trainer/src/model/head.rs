//! The interpretable head: a hypercolumn of k2_2 and up-sampled k3_2, k4_2 on the map grid,
//! then one 3x3 conv to the signed per-filter maps F.

use super::NetConfig;
use super::backbone::{BN_MOMENTUM, ConvBn, Levels, init_normal};
use super::fold::{FoldedConv, fold};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};

/// Scales every position's channel vector to unit length (`x / sqrt(max(sum x^2, 1e-12))`, as
/// TensorFlow's `l2_normalize`).
pub fn l2_normalize_channels(x: Tensor<4>) -> Tensor<4> {
    let norm = x.clone().powi_scalar(2).sum_dim(1).clamp_min(1e-12).sqrt();
    x / norm
}

/// The head.
#[derive(Module, Debug)]
pub struct Head {
    p3: ConvBn,
    p4: ConvBn,
    conv: Conv2d,
    bn: BatchNorm,
    #[module(skip)]
    map_size: usize,
}

impl Head {
    /// Builds the head for `cfg`.
    pub fn new(cfg: &NetConfig, device: &Device) -> Self {
        let hc = cfg.channels(192);
        let filters = cfg.feature_dim();
        Self {
            p3: ConvBn::new([cfg.channels(256), hc], 1, 1, true, device),
            p4: ConvBn::new([cfg.channels(320), hc], 1, 1, true, device),
            conv: Conv2dConfig::new([cfg.channels(192) + 2 * hc, filters], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .with_initializer(init_normal())
                .init(device),
            bn: BatchNormConfig::new(filters)
                .with_momentum(BN_MOMENTUM)
                .init(device),
            map_size: cfg.map_size(),
        }
    }

    /// The head conv's weights `[filters, hypercolumn, 3, 3]`, for the filter-weight diversity loss.
    pub fn conv_weight(&self) -> Tensor<4> {
        self.conv.weight.val()
    }

    /// The projections of k3_2 and k4_2 and the maps conv, in inference form.
    pub fn folded(&self) -> [FoldedConv; 3] {
        [
            self.p3.folded(),
            self.p4.folded(),
            fold(&self.conv, &self.bn, 1, false),
        ]
    }

    /// Side of the maps.
    pub fn map_size(&self) -> usize {
        self.map_size
    }

    /// The dense signed maps F `[N, filters, map, map]` (before sparsification).
    pub fn forward(&self, levels: &Levels) -> Tensor<4> {
        let up = |x: Tensor<4>| {
            let options = InterpolateOptions::new(InterpolateMode::Bilinear)
                .with_align_corners(false)
                .with_output_size([self.map_size, self.map_size]);
            interpolate(x, options)
        };
        let p3 = l2_normalize_channels(self.p3.forward(up(levels.k3_2.clone())));
        let p4 = l2_normalize_channels(self.p4.forward(up(levels.k4_2.clone())));
        let k2 = l2_normalize_channels(levels.k2_2.clone());
        let hc = Tensor::cat(vec![k2, p3, p4], 1);
        self.bn.forward(self.conv.forward(hc))
    }
}
