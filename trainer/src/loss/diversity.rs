//! Filter-weight diversity: the 9 spatial taps of each head filter should read different input
//! channels, so a filter cannot respond the same way at neighbouring positions.

use super::mean_pairwise_cos2;
use burn::prelude::*;

/// L_divW: for each output filter of a conv weight `[out, in, kh, kw]`, the mean over its tap
/// pairs (36 for 3x3) of the squared cosine between the taps' input-weight vectors; then the
/// mean over filters. Returns a 1-element tensor.
pub fn filter_weight_diversity(weight: Tensor<4>) -> Tensor<1> {
    let [out, inputs, kh, kw] = weight.dims();
    let taps = weight.reshape([out, inputs, kh * kw]).swap_dims(1, 2);
    mean_pairwise_cos2(taps).mean()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_taps_cost_one_orthogonal_taps_cost_nothing() {
        let device = Device::flex();
        // Filter 0: every tap reads input channel 0 (identical taps).
        // Filter 1: tap t reads only input channel t (orthogonal taps).
        let mut w = vec![0f32; 2 * 9 * 9];
        for t in 0..9 {
            w[t] = 1.0; // [0, 0, t]
            w[81 + t * 9 + t] = 1.0; // [1, t, t]
        }
        let weight = Tensor::<1>::from_floats(w.as_slice(), &device).reshape([2, 9, 3, 3]);
        let got: f32 = filter_weight_diversity(weight).into_scalar();
        // Mean over the two filters of 1 and 0.
        assert!((got - 0.5).abs() < 1e-6, "{got}");
    }

    #[test]
    fn hand_computed_pair() {
        let device = Device::flex();
        // One filter, 1x2 kernel: taps (1, 0) and (1, 1): cos = 1/sqrt(2), cos^2 = 0.5.
        let weight = Tensor::<1>::from_floats([1.0, 1.0, 0.0, 1.0], &device).reshape([1, 2, 1, 2]);
        let got: f32 = filter_weight_diversity(weight).into_scalar();
        assert!((got - 0.5).abs() < 1e-6, "{got}");
    }
}
