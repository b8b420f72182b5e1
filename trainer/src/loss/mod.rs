//! The training losses of docs/method.md, one file each: cross-entropy (plain and masked), Spatial
//! Activation Diversity, Feature Activation Diversity, filter-weight diversity, and distillation
//! from a teacher embedder (our addition, for training on few real photos).
//!
//! Position: the trainer's objective; nothing here runs on the device.

mod ce;
mod distill;
mod diversity;
mod fad;
mod sad;

pub use ce::{cross_entropy, masked_cross_entropy};
pub use distill::{DistillKind, distill_projection, distill_relational};
pub use diversity::filter_weight_diversity;
pub use fad::{Fad, feature_activation_diversity};
pub use sad::{gaussian_kernel_3x3, spatial_activation_diversity};

use burn::prelude::*;

/// Mean over every pair of distinct rows of their squared cosine similarity, per batch entry:
/// `rows` is `[batch, r, d]`, the result `[batch]`. Zero rows count as orthogonal to everything.
/// Both diversity losses are this quantity over different rows (smoothed maps; filter taps).
pub(crate) fn mean_pairwise_cos2(rows: Tensor<3>) -> Tensor<1> {
    let [b, r, _] = rows.dims();
    let norm = rows
        .clone()
        .powi_scalar(2)
        .sum_dim(2)
        .clamp_min(1e-24)
        .sqrt();
    let unit = rows / norm;
    let cos2 = unit.clone().matmul(unit.swap_dims(1, 2)).powi_scalar(2);
    let off_diagonal = Tensor::<2>::eye(r, &cos2.device()).neg().add_scalar(1.0);
    let off_diagonal = off_diagonal.reshape([1, r, r]).expand([b, r, r]);
    let pairs = (r * (r - 1)).max(1) as f64;
    (cos2 * off_diagonal)
        .reshape([b, r * r])
        .sum_dim(1)
        .reshape([b])
        / pairs
}
