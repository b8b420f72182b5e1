//! The network of docs/method.md: a CASIA-Net style backbone, the interpretable hypercolumn head
//! with per-filter top-k sparsification, the pooled identity feature, and the training classifier.
//!
//! Position: the trainer's model. Exported to ONNX for the device, whose embedder sees only the
//! feature and the sparsified maps. Shapes follow the paper at width multiplier 1 and 96x96 input;
//! [`NetConfig`] shrinks both for models that must train on 2 CPU cores.

mod backbone;
mod fold;
mod head;
pub mod region;
mod sparsify;

pub use backbone::Backbone;
pub use fold::{FoldedConv, FoldedHead, FoldedNet};
pub use head::Head;
pub use sparsify::sparsify_top_k;

use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use burn::prelude::*;
use facegate_contract::card::TrainingMode;

/// The shape-deciding settings of the network.
#[derive(Debug, Clone, PartialEq)]
pub struct NetConfig {
    /// Input side in pixels (96 in the paper); a multiple of 16.
    pub input_size: usize,
    /// Channel multiplier relative to the paper (1.0 = as published).
    pub width_multiplier: f32,
    /// Number of training identities (classifier outputs).
    pub num_classes: usize,
    /// Rank of the |response| each map is thresholded at: positions strictly above the
    /// `top_k`-th largest survive (24 of 576 in the paper, so about 23 survive).
    pub top_k: usize,
    /// Dropout probability before the classifier (the paper keeps 0.6, so drops 0.4).
    pub dropout: f64,
    /// Zero the maps outside the face region (see [`region`]) before the top-k: the margin
    /// around the landmark hull in input pixels; `None` keeps the whole frame (the paper).
    pub face_margin: Option<f32>,
    /// Length of the teacher's embedding, when the student is distilled through a projection.
    pub distill_dim: Option<usize>,
}

impl NetConfig {
    /// The paper's network for `num_classes` identities: 96x96 input, full width.
    pub fn paper(num_classes: usize) -> Self {
        Self {
            input_size: 96,
            width_multiplier: 1.0,
            num_classes,
            top_k: 24,
            dropout: 0.4,
            face_margin: None,
            distill_dim: None,
        }
    }

    /// A network small enough for tests and smoke runs: 32x32 input, an eighth of the width
    /// (40 filters on 8x8 maps), top-k 4.
    pub fn tiny(num_classes: usize) -> Self {
        Self {
            input_size: 32,
            width_multiplier: 0.125,
            num_classes,
            top_k: 4,
            dropout: 0.4,
            face_margin: None,
            distill_dim: None,
        }
    }

    /// Channels of a layer that has `paper` channels in the published network.
    pub fn channels(&self, paper: usize) -> usize {
        ((paper as f32 * self.width_multiplier).round() as usize).max(1)
    }

    /// Side of the activation maps (input / 4: 24 at 96x96).
    pub fn map_size(&self) -> usize {
        self.input_size / 4
    }

    /// Length of the identity feature (number of head filters).
    pub fn feature_dim(&self) -> usize {
        self.channels(320)
    }

    /// Builds the network with freshly initialised weights on `device`.
    pub fn init(&self, device: &Device) -> FaceNet {
        FaceNet {
            backbone: Backbone::new(self, device),
            head: Head::new(self, device),
            dropout: DropoutConfig::new(self.dropout).init(),
            classifier: LinearConfig::new(self.feature_dim(), self.num_classes).init(device),
            projection: self.projection(device),
            top_k: self.top_k,
            face: self.face_mask(),
        }
    }

    fn projection(&self, device: &Device) -> Option<Linear> {
        self.distill_dim
            .map(|d| LinearConfig::new(self.feature_dim(), d).init(device))
    }

    /// The face region as a 0/1 grid (row-major), when the maps are restricted to it.
    pub fn face_mask(&self) -> Option<Vec<f32>> {
        self.face_margin
            .map(|m| region::face_mask(self.input_size, self.map_size(), m))
    }
}

/// What the network gives for a batch of faces.
#[derive(Debug, Clone)]
pub struct Embedding {
    /// The sparsified signed maps F~, `[N, filters, map, map]`.
    pub maps: Tensor<4>,
    /// The identity feature f: F~ averaged over all positions, `[N, filters]`.
    pub feature: Tensor<2>,
}

/// The average of each map over all positions, `[N, C, H, W]` -> `[N, C]`.
pub fn spatial_mean(maps: Tensor<4>) -> Tensor<2> {
    let [n, c, h, w] = maps.dims();
    maps.reshape([n, c, h * w]).mean_dim(2).reshape([n, c])
}

impl Embedding {
    /// The maps with their spatial mean as the feature.
    pub fn pooled(maps: Tensor<4>) -> Self {
        let feature = spatial_mean(maps.clone());
        Self { maps, feature }
    }
}

/// The whole network.
#[derive(Module, Debug)]
pub struct FaceNet {
    /// The encoder.
    pub backbone: Backbone,
    /// The interpretable head.
    pub head: Head,
    /// Dropout before the classifier (active on autodiff devices only).
    pub dropout: Dropout,
    /// The training classifier over identities.
    pub classifier: Linear,
    /// The map into the teacher's space (training only; never exported).
    pub projection: Option<Linear>,
    #[module(skip)]
    top_k: usize,
    #[module(skip)]
    face: Option<Vec<f32>>,
}

impl FaceNet {
    /// Feature and sparsified maps of aligned faces `[N, 3, size, size]` in [-1, 1].
    pub fn embed(&self, faces: Tensor<4>) -> Embedding {
        let levels = self.backbone.forward(faces);
        let dense = self.head.forward(&levels);
        let dense = match &self.face {
            Some(mask) => {
                let [n, c, h, w] = dense.dims();
                let grid = Tensor::<1>::from_floats(mask.as_slice(), &dense.device())
                    .reshape([1, 1, h, w])
                    .expand([n, c, h, w]);
                dense * grid
            }
            None => dense,
        };
        Embedding::pooled(sparsify_top_k(dense, self.top_k))
    }

    /// What the device sees for a model trained in `mode`: the interpretable head's output,
    /// or for the base CNN (whose head was never trained) the 6x6 k4_2 responses and their
    /// average.
    pub fn embed_as(&self, mode: TrainingMode, faces: Tensor<4>) -> Embedding {
        match mode {
            TrainingMode::Base => Embedding::pooled(self.backbone.forward(faces).k4_2),
            TrainingMode::Sad | TrainingMode::Full => self.embed(faces),
        }
    }

    /// The network as it runs on the device for a model trained in `mode` (see
    /// [`FaceNet::embed_as`]): BatchNorm folded, no classifier.
    pub fn folded(&self, mode: TrainingMode) -> FoldedNet {
        let (encoder, taps) = self.backbone.folded();
        let map_size = self.head.map_size();
        let head = (mode != TrainingMode::Base).then(|| {
            let [p3, p4, conv] = self.head.folded();
            FoldedHead {
                p3,
                p4,
                conv,
                map_size,
                top_k: self.top_k,
                face: self.face.clone(),
            }
        });
        FoldedNet {
            // The maps are a quarter of the input side (NetConfig::map_size).
            input_size: map_size * 4,
            encoder,
            taps,
            head,
        }
    }

    /// The same backbone with a freshly initialised head and classifier: stage 2 of the recipe.
    pub fn with_fresh_head(self, cfg: &NetConfig, device: &Device) -> Self {
        Self {
            head: Head::new(cfg, device),
            classifier: LinearConfig::new(cfg.feature_dim(), cfg.num_classes).init(device),
            projection: cfg.projection(device),
            ..self
        }
    }

    /// Identity logits for features, with dropout on training devices.
    pub fn logits(&self, feature: Tensor<2>) -> Tensor<2> {
        self.classifier.forward(self.dropout.forward(feature))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_follow_the_config() {
        let device = Device::flex();
        let cfg = NetConfig::tiny(7);
        let net = cfg.init(&device);
        let faces =
            Tensor::<4>::random([2, 3, 32, 32], burn::tensor::Distribution::Default, &device);
        let e = net.embed(faces);
        assert_eq!(e.maps.dims(), [2, 40, 8, 8]);
        assert_eq!(e.feature.dims(), [2, 40]);
        assert_eq!(net.logits(e.feature).dims(), [2, 7]);
    }
}
