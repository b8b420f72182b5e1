//! Softmax cross-entropy over identities, and its masked form for the occluded branch.

use burn::prelude::*;
use burn::tensor::activation::log_softmax;

/// Mean softmax cross-entropy of `logits` `[N, classes]` against integer `labels` `[N]`.
/// Returns a 1-element tensor.
pub fn cross_entropy(logits: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<1> {
    let [n, _] = logits.dims();
    let picked = log_softmax(logits, 1).gather(1, labels.reshape([n, 1]));
    picked.mean().neg()
}

/// The occluded branch's loss: classify the occluded features with only the dimensions the
/// occlusion left intact (`keep_mask` `[1, d]`, from FAD), through `classify` (dropout then the
/// shared classifier).
pub fn masked_cross_entropy(
    occluded: Tensor<2>,
    keep_mask: Tensor<2>,
    labels: Tensor<1, Int>,
    classify: impl Fn(Tensor<2>) -> Tensor<2>,
) -> Tensor<1> {
    let [n, d] = occluded.dims();
    cross_entropy(classify(occluded * keep_mask.expand([n, d])), labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cross_entropy_by_hand() {
        let device = Device::flex();
        // Logits [0, ln 3]: p = [1/4, 3/4]. Labels 1 and 0: -(ln 3/4 + ln 1/4) / 2.
        let logits = Tensor::<2>::from_floats([[0.0, 3f32.ln()], [0.0, 3f32.ln()]], &device);
        let labels = Tensor::<1, Int>::from_ints([1, 0], &device);
        let got: f32 = cross_entropy(logits, labels).into_scalar();
        let want = -((0.75f32).ln() + (0.25f32).ln()) / 2.0;
        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
    }

    #[test]
    fn masked_dimensions_cannot_change_the_loss() {
        let device = Device::flex();
        let weights = Tensor::<2>::from_floats([[1.0, -1.0], [2.0, 0.5], [-3.0, 1.0]], &device);
        let classify = |f: Tensor<2>| f.matmul(weights.clone());
        let labels = Tensor::<1, Int>::from_ints([0], &device);
        let mask = Tensor::<2>::from_floats([[1.0, 1.0, 0.0]], &device);
        let a = Tensor::<2>::from_floats([[0.3, -0.2, 0.0]], &device);
        let b = Tensor::<2>::from_floats([[0.3, -0.2, 9.0]], &device);
        let la: f32 = masked_cross_entropy(a, mask.clone(), labels.clone(), classify).into_scalar();
        let lb: f32 = masked_cross_entropy(b.clone(), mask, labels.clone(), classify).into_scalar();
        assert_eq!(la, lb);
        let unmasked: f32 = cross_entropy(classify(b), labels).into_scalar();
        assert!((unmasked - la).abs() > 1.0);
    }
}
