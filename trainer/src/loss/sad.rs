//! Spatial Activation Diversity: different filters should respond at different places.

use super::mean_pairwise_cos2;
use burn::prelude::*;

/// The normalised 3x3 Gaussian (sigma 1.5) that smooths each map before comparison, row-major.
pub fn gaussian_kernel_3x3(sigma: f64) -> [f32; 9] {
    let mut k = [0f64; 9];
    for (i, v) in k.iter_mut().enumerate() {
        let (dy, dx) = ((i / 3) as f64 - 1.0, (i % 3) as f64 - 1.0);
        *v = (-(dx * dx + dy * dy) / (2.0 * sigma * sigma)).exp();
    }
    let sum: f64 = k.iter().sum();
    k.map(|v| (v / sum) as f32)
}

/// L_SAD: smooth each sparsified map with the 3x3 Gaussian (zero padding), then the mean over
/// filter pairs of the squared cosine between their smoothed maps, averaged over the batch.
/// Signed maps are compared, so anti-correlated filters are penalised too. Returns a 1-element
/// tensor.
pub fn spatial_activation_diversity(maps: Tensor<4>) -> Tensor<1> {
    let [n, c, h, w] = maps.dims();
    let device = maps.device();
    // The Gaussian is separable, so the 3x3 smoothing with zero padding is `G_h M G_w^T` with
    // tridiagonal band matrices: two batched matrix products instead of a depthwise conv,
    // which burn's CPU backend runs as slow direct loops (forward and backward).
    let band = |size: usize| {
        let g = gaussian_1d(SIGMA);
        let mut m = vec![0f32; size * size];
        for i in 0..size {
            for (d, weight) in g.iter().enumerate() {
                let j = i as i64 + d as i64 - 1;
                if (0..size as i64).contains(&j) {
                    m[i * size + j as usize] = *weight;
                }
            }
        }
        Tensor::<1>::from_floats(m.as_slice(), &device).reshape([1, size, size])
    };
    let rows = band(h).expand([n * c, h, h]);
    let cols = band(w).swap_dims(1, 2).expand([n * c, w, w]);
    let smooth = rows.matmul(maps.reshape([n * c, h, w])).matmul(cols);
    mean_pairwise_cos2(smooth.reshape([n, c, h * w])).mean()
}

/// Sigma of the smoothing Gaussian (docs/method.md).
const SIGMA: f64 = 1.5;

/// The normalised 3-tap Gaussian; its outer product with itself is [`gaussian_kernel_3x3`].
fn gaussian_1d(sigma: f64) -> [f32; 3] {
    let g = [-1.0f64, 0.0, 1.0].map(|d| (-(d * d) / (2.0 * sigma * sigma)).exp());
    let sum: f64 = g.iter().sum();
    g.map(|v| (v / sum) as f32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    fn scalar(t: Tensor<1>) -> f32 {
        t.into_scalar()
    }

    /// Single spikes far enough apart that the smoothed maps do not overlap.
    #[test]
    fn the_separable_taps_give_the_3x3_kernel() {
        let g = gaussian_1d(SIGMA);
        let k = gaussian_kernel_3x3(SIGMA);
        for (i, v) in k.iter().enumerate() {
            assert!((g[i / 3] * g[i % 3] - v).abs() < 1e-7);
        }
    }

    #[test]
    fn disjoint_filters_cost_nothing() {
        let device = Device::flex();
        let mut data = vec![0f32; 4 * 12 * 12];
        for (f, (y, x)) in [(1, 1), (1, 8), (8, 1), (8, 8)].into_iter().enumerate() {
            data[f * 144 + y * 12 + x] = if f % 2 == 0 { 2.0 } else { -3.0 };
        }
        let maps = Tensor::<1>::from_floats(data.as_slice(), &device).reshape([1, 4, 12, 12]);
        assert!(scalar(spatial_activation_diversity(maps)).abs() < 1e-7);
    }

    #[test]
    fn identical_or_opposite_filters_cost_one() {
        let device = Device::flex();
        let one = Tensor::<4>::random([2, 1, 6, 6], Distribution::Normal(0.0, 1.0), &device);
        let maps = Tensor::cat(vec![one.clone(), one.clone().neg(), one.mul_scalar(3.0)], 1);
        let got = scalar(spatial_activation_diversity(maps));
        assert!((got - 1.0).abs() < 1e-5, "{got}");
    }

    /// An independent f64 loop implementation of the same definition.
    fn reference(data: &[f32], n: usize, c: usize, h: usize, w: usize) -> f64 {
        let k = gaussian_kernel_3x3(1.5);
        let mut total = 0.0;
        for b in 0..n {
            let mut smooth = vec![vec![0f64; h * w]; c];
            for (f, map) in smooth.iter_mut().enumerate() {
                for y in 0..h {
                    for x in 0..w {
                        let mut acc = 0.0;
                        for (t, kv) in k.iter().enumerate() {
                            let (yy, xx) =
                                (y as i64 + t as i64 / 3 - 1, x as i64 + t as i64 % 3 - 1);
                            if (0..h as i64).contains(&yy) && (0..w as i64).contains(&xx) {
                                let v = data[((b * c + f) * h + yy as usize) * w + xx as usize];
                                acc += *kv as f64 * v as f64;
                            }
                        }
                        map[y * w + x] = acc;
                    }
                }
            }
            let mut sum = 0.0;
            for i in 0..c {
                for j in (i + 1)..c {
                    let dot: f64 = smooth[i].iter().zip(&smooth[j]).map(|(a, b)| a * b).sum();
                    let ni: f64 = smooth[i].iter().map(|a| a * a).sum::<f64>().sqrt();
                    let nj: f64 = smooth[j].iter().map(|a| a * a).sum::<f64>().sqrt();
                    sum += (dot / (ni * nj)).powi(2);
                }
            }
            total += sum / (c * (c - 1) / 2) as f64;
        }
        total / n as f64
    }

    #[test]
    fn matches_a_loop_reference_on_random_maps() {
        let device = Device::flex();
        let (n, c, h, w) = (2, 5, 6, 6);
        let maps = Tensor::<4>::random([n, c, h, w], Distribution::Normal(0.0, 1.0), &device);
        let data: Vec<f32> = maps.to_data().iter::<f32>().collect::<Vec<f32>>();
        let got = scalar(spatial_activation_diversity(maps)) as f64;
        let want = reference(&data, n, c, h, w);
        assert!((got - want).abs() < 1e-5, "burn {got} vs reference {want}");
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let device = Device::flex();
        let (n, c, h, w) = (1, 3, 4, 4);
        let base = Tensor::<4>::random([n, c, h, w], Distribution::Normal(0.0, 1.0), &device);
        let data: Vec<f32> = base.to_data().iter::<f32>().collect::<Vec<f32>>();
        let ad = device.clone().autodiff();
        let x = Tensor::<1>::from_floats(data.as_slice(), &ad)
            .reshape([n, c, h, w])
            .require_grad();
        let grads = spatial_activation_diversity(x.clone()).backward();
        let analytic: Vec<f32> = x
            .grad(&grads)
            .unwrap()
            .into_data()
            .iter::<f32>()
            .collect::<Vec<f32>>();
        let eps = 1e-2f32;
        let eval = |d: &[f32]| -> f64 {
            let t = Tensor::<1>::from_floats(d, &device).reshape([n, c, h, w]);
            scalar(spatial_activation_diversity(t)) as f64
        };
        for i in (0..data.len()).step_by(5) {
            let (mut plus, mut minus) = (data.clone(), data.clone());
            plus[i] += eps;
            minus[i] -= eps;
            let numeric = (eval(&plus) - eval(&minus)) / (2.0 * eps as f64);
            let a = analytic[i] as f64;
            assert!(
                (numeric - a).abs() < 2e-3 + 2e-2 * a.abs(),
                "element {i}: analytic {a}, numeric {numeric}"
            );
        }
    }
}
