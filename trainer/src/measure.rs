//! Measurements of a trained network on held-out faces, for its model card: where each filter
//! fires (the peak-location map) and how spread those places are.
//!
//! Position: after training, before export; the definitions live in `facegate_contract::peaks`.

use crate::model::FaceNet;
use burn::prelude::*;
use facegate_contract::card::{FilterPeaks, TrainingMode};
use facegate_contract::peaks::{PeakStats, spreadness};

/// The peak-location map of a network over aligned faces, and the spreadness `d` of its positive
/// and negative peaks (pixels).
#[derive(Debug, Clone, PartialEq)]
pub struct PeakMap {
    /// One entry per filter.
    pub filters: Vec<FilterPeaks>,
    /// Spreadness of the positive peaks.
    pub d_positive: Option<f64>,
    /// Spreadness of the negative peaks.
    pub d_negative: Option<f64>,
    /// Faces measured.
    pub faces: usize,
}

/// Runs `net` (inference mode on a plain device, as trained in `mode`) over batches of aligned
/// faces `[N, 3, size, size]` and summarises where its filters fire.
pub fn peak_map(
    net: &FaceNet,
    mode: TrainingMode,
    batches: impl IntoIterator<Item = Tensor<4>>,
) -> PeakMap {
    let mut stats: Option<PeakStats> = None;
    let mut faces = 0;
    for batch in batches {
        let [_, _, size, _] = batch.dims();
        let maps = net.embed_as(mode, batch).maps;
        let [n, c, h, w] = maps.dims();
        let values: Vec<f32> = maps.into_data().iter::<f32>().collect();
        let stats = stats.get_or_insert_with(|| PeakStats::new(c, h, w, size as f32 / w as f32));
        for face in values.chunks_exact(c * h * w) {
            stats.add_face(face);
        }
        faces += n;
    }
    let filters = stats.map(|s| s.summarise()).unwrap_or_default();
    let (d_positive, d_negative) = spreadness(&filters);
    PeakMap {
        filters,
        d_positive,
        d_negative,
        faces,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::NetConfig;
    use burn::tensor::Distribution;

    #[test]
    fn every_filter_is_summarised_inside_the_face() {
        let device = Device::flex();
        let cfg = NetConfig::tiny(3);
        let net = cfg.init(&device);
        let batches = (0..2).map(|_| {
            Tensor::<4>::random([3, 3, 32, 32], Distribution::Uniform(-1.0, 1.0), &device)
        });
        let map = peak_map(&net, TrainingMode::Full, batches);
        assert_eq!(map.faces, 6);
        assert_eq!(map.filters.len(), cfg.feature_dim());
        let mut placed = 0;
        for f in &map.filters {
            for p in [f.positive, f.negative].into_iter().flatten() {
                assert!(
                    (0.0..32.0).contains(&p.x) && (0.0..32.0).contains(&p.y),
                    "{p:?}"
                );
                assert!(p.sigma >= 0.0);
                placed += 1;
            }
        }
        // An untrained network's filters may all fire at one place, so only presence is
        // asserted; spreadness itself is checked on known locations in the contract crate.
        assert!(placed > 0);
        assert!(map.d_positive.or(map.d_negative).is_some_and(|d| d >= 0.0));
    }
}
