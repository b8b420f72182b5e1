//! One optimiser step: forward, backward, Adam update.

use super::objective::{Batch, LossTerms, LossWeights, ObjectiveError, objective};
use crate::model::FaceNet;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer, OptimizerRecord};
use facegate_contract::card::TrainingMode;

/// The method's optimiser: Adam with beta1 0.5, beta2 0.999, no weight decay.
pub fn adam_paper() -> AdamConfig {
    AdamConfig::new().with_beta_1(0.5).with_beta_2(0.999)
}

/// Owns the optimiser state and applies steps to a network on an autodiff device.
pub struct Stepper {
    config: AdamConfig,
    optim: ModuleOptimizer,
    lr: f64,
    mode: TrainingMode,
    weights: LossWeights,
}

impl Stepper {
    /// A stepper for `mode` with constant learning rate `lr` (1e-3 in the paper).
    pub fn new(config: &AdamConfig, lr: f64, mode: TrainingMode, weights: LossWeights) -> Self {
        Self {
            config: config.clone(),
            optim: config.init(),
            lr,
            mode,
            weights,
        }
    }

    /// The optimiser's state, for a checkpoint.
    pub fn record(&self) -> OptimizerRecord {
        self.optim.to_record()
    }

    /// Restores the optimiser's state from a checkpoint.
    pub fn restore(&mut self, record: OptimizerRecord) {
        let optim = std::mem::replace(&mut self.optim, self.config.init());
        self.optim = optim.load_record(record);
    }

    /// One step on `batch`; returns the updated network and the loss before the update.
    pub fn step(
        &mut self,
        net: FaceNet,
        batch: &Batch,
    ) -> Result<(FaceNet, LossTerms), ObjectiveError> {
        let loss = objective(&net, batch, self.mode, &self.weights)?;
        let grads = GradientsParams::from_grads(loss.total.backward(), &net);
        Ok((self.optim.step(self.lr, net, grads), loss.terms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::NetConfig;
    use crate::train::Occluder;
    use burn::prelude::*;
    use burn::tensor::Distribution;

    /// Four "identities", each a fixed random pattern, seen with fresh noise at every step.
    fn batch(device: &Device, patterns: &Tensor<4>, occluder: Occluder) -> Batch {
        let clean = (patterns.clone()
            + Tensor::<4>::random(patterns.dims(), Distribution::Normal(0.0, 0.1), device))
        .clamp(-1.0, 1.0);
        Batch {
            occluded: Some(occluder.apply(clean.clone(), (7, 7))),
            clean,
            labels: Tensor::<1, Int>::from_ints([0, 1, 2, 3, 0, 1, 2, 3], device),
            targets: None,
        }
    }

    #[test]
    fn full_objective_falls_over_a_few_dozen_steps() {
        let device = Device::flex().autodiff();
        let cfg = NetConfig::tiny(4);
        let mut net = cfg.init(&device);
        let base =
            Tensor::<4>::random([4, 3, 32, 32], Distribution::Uniform(-1.0, 1.0), &device).detach();
        let patterns = Tensor::cat(vec![base.clone(), base], 0);
        let weights = LossWeights::paper(cfg.feature_dim());
        assert_eq!(weights.fad_keep, 33);
        let mut stepper = Stepper::new(&adam_paper(), 1e-3, TrainingMode::Full, weights);
        let mut history = Vec::new();
        for i in 0..40 {
            let occluder = Occluder::window(11 + i % 5, 11 + i % 7);
            let (next, terms) = stepper
                .step(net, &batch(&device, &patterns, occluder))
                .unwrap();
            assert!(terms.total.is_finite(), "step {i}: {terms:?}");
            history.push(terms);
            net = next;
        }
        let mean = |s: &[LossTerms]| s.iter().map(|t| t.ce).sum::<f32>() / s.len() as f32;
        let (first, last) = (mean(&history[..5]), mean(&history[35..]));
        assert!(
            last < 0.7 * first,
            "clean CE did not fall: {first} -> {last}"
        );
        // Every term of the full objective takes part.
        let t = history[0];
        assert!(t.masked_ce > 0.0 && t.sad_clean > 0.0 && t.sad_occluded > 0.0);
        assert!(t.fad > 0.0 && t.filter_diversity > 0.0);
    }

    #[test]
    fn full_mode_without_occluded_faces_is_an_error() {
        let device = Device::flex().autodiff();
        let cfg = NetConfig {
            input_size: 16,
            width_multiplier: 0.0625,
            num_classes: 2,
            top_k: 2,
            ..NetConfig::tiny(2)
        };
        let net = cfg.init(&device);
        let batch = Batch {
            clean: Tensor::<4>::zeros([2, 3, 16, 16], &device),
            occluded: None,
            labels: Tensor::<1, Int>::from_ints([0, 1], &device),
            targets: None,
        };
        let mut stepper = Stepper::new(
            &adam_paper(),
            1e-3,
            TrainingMode::Full,
            LossWeights::paper(20),
        );
        assert_eq!(
            stepper.step(net, &batch).err(),
            Some(ObjectiveError::MissingOccludedBranch)
        );
    }
}
