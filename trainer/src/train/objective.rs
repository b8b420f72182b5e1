//! The training objective of docs/method.md, composed for each ablation mode:
//! `L = 2 CE(clean) + 2 CE(masked occluded) + SAD(clean) + SAD(occluded) + 0.1 FAD + 100 L_divW`.

use crate::loss::{
    DistillKind, cross_entropy, distill_projection, distill_relational,
    feature_activation_diversity, filter_weight_diversity, masked_cross_entropy,
    spatial_activation_diversity,
};
use crate::model::FaceNet;
use burn::prelude::*;
use facegate_contract::card::TrainingMode;

/// Weights of the loss terms and the FAD selection size.
#[derive(Debug, Clone, PartialEq)]
pub struct LossWeights {
    /// Clean-branch cross-entropy.
    pub ce: f64,
    /// Masked occluded-branch cross-entropy.
    pub masked_ce: f64,
    /// Each SAD term (clean and occluded).
    pub sad: f64,
    /// FAD.
    pub fad: f64,
    /// Filter-weight diversity of the head conv.
    pub filter_diversity: f64,
    /// Features kept (least changed by the occlusion) by FAD; 260 of 320 in the paper.
    pub fad_keep: usize,
    /// Weight of the distillation term (0: none); applied whenever the batch has targets.
    pub distill: f64,
    /// Which distillation term.
    pub distill_kind: DistillKind,
}

impl LossWeights {
    /// The released code's weights for a network with `feature_dim` filters; FAD keeps the same
    /// share (260/320) of them.
    pub fn paper(feature_dim: usize) -> Self {
        Self {
            ce: 2.0,
            masked_ce: 2.0,
            sad: 1.0,
            fad: 0.1,
            filter_diversity: 100.0,
            fad_keep: (feature_dim * 260).div_ceil(320),
            distill: 0.0,
            distill_kind: DistillKind::Projection,
        }
    }
}

/// One mini-batch as the objective takes it.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Clean aligned faces `[N, 3, size, size]` in [-1, 1].
    pub clean: Tensor<4>,
    /// The same faces with the batch's occluder painted on (needed in `full` mode only).
    pub occluded: Option<Tensor<4>>,
    /// Identity labels `[N]`.
    pub labels: Tensor<1, Int>,
    /// The teacher's unit embeddings of the clean faces, for distillation.
    pub targets: Option<Tensor<2>>,
}

/// The value of each loss term, for progress and metrics logs (already weighted).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LossTerms {
    /// Weighted clean cross-entropy.
    pub ce: f32,
    /// Weighted masked occluded cross-entropy.
    pub masked_ce: f32,
    /// Weighted SAD of the clean branch.
    pub sad_clean: f32,
    /// Weighted SAD of the occluded branch.
    pub sad_occluded: f32,
    /// Weighted FAD.
    pub fad: f32,
    /// Weighted filter-weight diversity.
    pub filter_diversity: f32,
    /// Distillation from the teacher, weighted.
    pub distill: f32,
    /// Their sum.
    pub total: f32,
}

/// The objective's result: the differentiable total and its parts.
#[derive(Debug)]
pub struct Loss {
    /// What backward runs from: a 1-element tensor.
    pub total: Tensor<1>,
    /// The parts, as numbers.
    pub terms: LossTerms,
}

/// Why the objective could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObjectiveError {
    /// `full` mode needs the occluded copy of the batch.
    #[error("mode `full` needs the occluded branch, but the batch has no occluded faces")]
    MissingOccludedBranch,
    /// Projection distillation was asked for, but the network has no projection.
    #[error("distillation by projection needs the network's projection layer (distill_dim)")]
    MissingProjection,
}

fn value(t: &Tensor<1>) -> f32 {
    t.clone().into_scalar()
}

/// Computes the loss of `mode` on `batch`. `base` trains the backbone alone (softmax on the
/// average pool of k4_2, the paper's base CNN and stage 1); `sad` adds the head with SAD and no
/// occlusion branch; `full` is the whole objective.
pub fn objective(
    net: &FaceNet,
    batch: &Batch,
    mode: TrainingMode,
    w: &LossWeights,
) -> Result<Loss, ObjectiveError> {
    let labels = batch.labels.clone();
    let mut terms = LossTerms::default();
    let mut distilled: Option<Tensor<1>> = None;
    let mut distill = |feature: &Tensor<2>| -> Result<(), ObjectiveError> {
        let Some(targets) = batch.targets.clone().filter(|_| w.distill > 0.0) else {
            return Ok(());
        };
        let term = match w.distill_kind {
            DistillKind::Projection => {
                let projection = net
                    .projection
                    .as_ref()
                    .ok_or(ObjectiveError::MissingProjection)?;
                distill_projection(feature.clone(), projection, targets)
            }
            DistillKind::Relational => distill_relational(feature.clone(), targets),
        };
        distilled = Some(term.mul_scalar(w.distill));
        Ok(())
    };
    let total = match mode {
        TrainingMode::Base => {
            let feature = net.backbone.base_feature(batch.clean.clone());
            distill(&feature)?;
            let ce = cross_entropy(net.logits(feature), labels).mul_scalar(w.ce);
            terms.ce = value(&ce);
            ce
        }
        TrainingMode::Sad => {
            let clean = net.embed(batch.clean.clone());
            distill(&clean.feature)?;
            let ce = cross_entropy(net.logits(clean.feature), labels).mul_scalar(w.ce);
            let sad = spatial_activation_diversity(clean.maps).mul_scalar(w.sad);
            terms.ce = value(&ce);
            terms.sad_clean = value(&sad);
            ce + sad
        }
        TrainingMode::Full => {
            let occluded = batch
                .occluded
                .clone()
                .ok_or(ObjectiveError::MissingOccludedBranch)?;
            let clean = net.embed(batch.clean.clone());
            distill(&clean.feature)?;
            let occ = net.embed(occluded);
            let fad = feature_activation_diversity(
                clean.feature.clone(),
                occ.feature.clone(),
                w.fad_keep,
            );
            let ce = cross_entropy(net.logits(clean.feature), labels.clone()).mul_scalar(w.ce);
            let masked =
                masked_cross_entropy(occ.feature, fad.keep_mask, labels, |f| net.logits(f))
                    .mul_scalar(w.masked_ce);
            let sad_clean = spatial_activation_diversity(clean.maps).mul_scalar(w.sad);
            let sad_occ = spatial_activation_diversity(occ.maps).mul_scalar(w.sad);
            let fad_loss = fad.loss.mul_scalar(w.fad);
            let div =
                filter_weight_diversity(net.head.conv_weight()).mul_scalar(w.filter_diversity);
            terms.ce = value(&ce);
            terms.masked_ce = value(&masked);
            terms.sad_clean = value(&sad_clean);
            terms.sad_occluded = value(&sad_occ);
            terms.fad = value(&fad_loss);
            terms.filter_diversity = value(&div);
            ce + masked + sad_clean + sad_occ + fad_loss + div
        }
    };
    let total = match distilled {
        Some(term) => {
            terms.distill = value(&term);
            total + term
        }
        None => total,
    };
    terms.total = value(&total);
    Ok(Loss { total, terms })
}
