//! Feature Activation Diversity: an occlusion may change only the few features whose filters
//! look at the occluded part; the rest must stay put.

use burn::prelude::*;

/// The FAD term and the selection it was computed over.
#[derive(Debug, Clone)]
pub struct Fad {
    /// `sum over kept k of delta_k`: a 1-element tensor.
    pub loss: Tensor<1>,
    /// 1 for the kept (least changed) features, 0 for the ones this occlusion affected, `[1, d]`.
    /// Carries no gradient.
    pub keep_mask: Tensor<2>,
    /// Indices of the affected features, ascending.
    pub affected: Vec<usize>,
}

/// With `delta_k` the batch mean of `|f_k - f^_k|` between clean and occluded features
/// `[N, d]`, keeps the `keep` features of smallest delta (ties broken by index; the choice is
/// made on plain numbers, so no gradient flows through it) and sums their deltas.
pub fn feature_activation_diversity(clean: Tensor<2>, occluded: Tensor<2>, keep: usize) -> Fad {
    let [_, d] = clean.dims();
    let keep = keep.min(d);
    let device = clean.device();
    let delta = (clean - occluded).abs().mean_dim(0); // [1, d]
    let values: Vec<f32> = delta.clone().detach().into_data().iter::<f32>().collect();
    let mut order: Vec<usize> = (0..d).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]).then(a.cmp(&b)));
    let mut mask = vec![0f32; d];
    for &k in &order[..keep] {
        mask[k] = 1.0;
    }
    let mut affected: Vec<usize> = order[keep..].to_vec();
    affected.sort_unstable();
    let keep_mask = Tensor::<1>::from_floats(mask.as_slice(), &device).reshape([1, d]);
    let loss = (delta * keep_mask.clone()).sum();
    Fad {
        loss,
        keep_mask,
        affected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_smallest_differences_by_hand() {
        let device = Device::flex();
        // Batch of 2, 5 features. |f - f^| rows: [0.2, 1.0, 0.0, 3.0, 0.4] and
        // [0.0, 1.0, 0.2, 1.0, 0.0]: delta = [0.1, 1.0, 0.1, 2.0, 0.2].
        let clean = Tensor::<2>::from_floats(
            [[0.2, 1.0, 0.0, 3.0, 0.4], [0.0, 1.0, 0.2, 1.0, 0.0]],
            &device,
        );
        let occluded = Tensor::<2>::zeros([2, 5], &device);
        let fad = feature_activation_diversity(clean, occluded, 3);
        // Kept: 0, 2 (0.1 each) and 4 (0.2): loss 0.4. Affected: 1 and 3.
        let loss: f32 = fad.loss.into_scalar();
        assert!((loss - 0.4).abs() < 1e-6, "{loss}");
        assert_eq!(fad.affected, [1, 3]);
        let mask: Vec<f32> = fad
            .keep_mask
            .into_data()
            .iter::<f32>()
            .collect::<Vec<f32>>();
        assert_eq!(mask, [1.0, 0.0, 1.0, 0.0, 1.0]);
    }

    #[test]
    fn no_gradient_reaches_the_affected_features() {
        let device = Device::flex().autodiff();
        let clean =
            Tensor::<2>::from_floats([[1.0, 5.0, 2.0], [1.0, 5.0, 2.0]], &device).require_grad();
        let occluded = Tensor::<2>::from_floats([[0.5, 0.0, 2.5], [0.5, 0.0, 2.5]], &device);
        let fad = feature_activation_diversity(clean.clone(), occluded, 2);
        assert_eq!(fad.affected, [1]);
        let grads = fad.loss.backward();
        let g: Vec<f32> = clean
            .grad(&grads)
            .unwrap()
            .into_data()
            .iter::<f32>()
            .collect::<Vec<f32>>();
        // d/df of mean_b |f - f^| is sign/N = +-0.5 for kept features, 0 for the affected one.
        assert_eq!(g, [0.5, 0.0, -0.5, 0.5, 0.0, -0.5]);
    }
}
