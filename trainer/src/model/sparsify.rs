//! Per-filter top-k sparsification: each map keeps only its strongest responses, so each filter
//! must commit to one place on the face.

use burn::prelude::*;

/// Keeps, per image and per channel, the positions whose |response| is strictly greater than the
/// `k`-th largest |response| of that map (about `k - 1` survive); the rest become 0. The choice is
/// made on detached values, so gradient flows through the kept positions only.
pub fn sparsify_top_k(maps: Tensor<4>, k: usize) -> Tensor<4> {
    let [n, c, h, w] = maps.dims();
    let k = k.clamp(1, h * w);
    let magnitude = maps.clone().detach().abs().reshape([n, c, h * w]);
    let kth = magnitude
        .clone()
        .topk(k, 2)
        .slice(s![.., .., (k - 1)..k])
        .expand([n, c, h * w]);
    let keep = magnitude.greater(kth).float().reshape([n, c, h, w]);
    maps * keep
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    #[test]
    fn keeps_23_of_576() {
        let device = Device::flex();
        let maps = Tensor::<4>::random([2, 3, 24, 24], Distribution::Normal(0.0, 1.0), &device);
        let sparse = sparsify_top_k(maps.clone(), 24);
        let kept: Vec<f32> = sparse
            .clone()
            .not_equal_elem(0.0)
            .float()
            .reshape([6, 576])
            .sum_dim(1)
            .into_data()
            .iter::<f32>()
            .collect();
        assert_eq!(kept, vec![23.0; 6]);
        // Survivors keep their value and sign.
        let same: f32 = (sparse.clone() - maps * sparse.not_equal_elem(0.0).float())
            .abs()
            .sum()
            .into_scalar();
        assert_eq!(same, 0.0);
    }

    #[test]
    fn keeps_the_strongest_by_magnitude_whatever_the_sign() {
        let device = Device::flex();
        let data = [[[[0.1f32, -5.0], [3.0, -0.2]]]];
        let maps = Tensor::<4>::from_data(data, &device);
        let got: Vec<f32> = sparsify_top_k(maps, 3)
            .into_data()
            .iter::<f32>()
            .collect::<Vec<f32>>();
        assert_eq!(got, [0.0, -5.0, 3.0, 0.0]);
    }
}
