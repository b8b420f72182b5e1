//! Knowledge distillation from a pretrained face embedder (the teacher): the student's identity
//! feature learns the teacher's geometry of faces, which a few thousand photos cannot teach on
//! their own. Two forms, chosen in the run config:
//!
//! - projection: a linear map of the student's feature into the teacher's space, and
//!   `1 - cos(W f, t)` per face (the map is trained with the student and not exported);
//! - relational: the batch's pairwise cosine matrix of student features matched to the
//!   teacher's, mean squared difference (no extra weights; only relations are copied).

use burn::nn::Linear;
use burn::prelude::*;
use serde::Deserialize;

/// Which distillation term.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DistillKind {
    /// Project into the teacher's space and match each face's direction.
    #[default]
    Projection,
    /// Match the batch's pairwise cosine similarities.
    Relational,
}

fn unit_rows(x: Tensor<2>) -> Tensor<2> {
    let norm = x.clone().powi_scalar(2).sum_dim(1).clamp_min(1e-24).sqrt();
    x / norm
}

/// `mean(1 - cos(projection(feature), target))`; `target` rows are unit vectors.
pub fn distill_projection(feature: Tensor<2>, projection: &Linear, target: Tensor<2>) -> Tensor<1> {
    let [n, _] = feature.dims();
    let student = unit_rows(projection.forward(feature));
    let cos = (student * target).sum_dim(1).reshape([n]);
    cos.neg().add_scalar(1.0).mean()
}

/// Mean squared difference of the student's and the teacher's batch cosine matrices.
pub fn distill_relational(feature: Tensor<2>, target: Tensor<2>) -> Tensor<1> {
    let s = unit_rows(feature);
    let t = unit_rows(target);
    let gs = s.clone().matmul(s.transpose());
    let gt = t.clone().matmul(t.transpose());
    (gs - gt).powi_scalar(2).mean()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::LinearConfig;

    #[test]
    fn both_terms_vanish_when_the_student_agrees_and_not_otherwise() {
        let device = Device::flex();
        let t = Tensor::<2>::from_floats([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], &device);
        // Relational: a rotated, scaled copy has the same relations.
        let rotated = Tensor::<2>::from_floats([[0.0, 2.0], [-2.0, 0.0], [-1.6, 1.2]], &device);
        let same: f32 = distill_relational(rotated, t.clone()).into_scalar();
        assert!(same.abs() < 1e-6, "{same}");
        let collapsed = Tensor::<2>::from_floats([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]], &device);
        let far: f32 = distill_relational(collapsed, t.clone()).into_scalar();
        assert!(far > 0.1, "{far}");
        // Projection: identity weights on the teacher's own vectors give zero.
        let mut lin = LinearConfig::new(2, 2).with_bias(false).init(&device);
        lin.weight = burn::module::Param::from_tensor(Tensor::<2>::eye(2, &device));
        let zero: f32 = distill_projection(t.clone(), &lin, t.clone()).into_scalar();
        assert!(zero.abs() < 1e-6, "{zero}");
        let opposite: f32 = distill_projection(t.clone().neg(), &lin, t).into_scalar();
        assert!((opposite - 2.0).abs() < 1e-5, "{opposite}");
    }
}
