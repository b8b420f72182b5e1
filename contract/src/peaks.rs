//! Where each filter responds on a face: per-map peaks, their statistics over many faces (the
//! model card's peak-location map), and the spreadness `d` of those locations.
//!
//! Pipeline position: the trainer measures the card's map on held-out faces at export; the
//! device finds each filter's peak on the probe's own maps to tell which filters an occlusion
//! reached. Both use [`map_peaks`], so "where a filter fired" means one thing.
//!
//! Definitions (docs/method.md, made precise here): a map is a `height x width` grid of cells, each
//! `cell` input pixels square; a cell's location is its centre in input pixels,
//! `((col + 0.5) * cell - 0.5, (row + 0.5) * cell - 0.5)` (pixel centres at integers). The
//! positive peak is the argmax if the maximum is > 0, the negative peak the argmin if the minimum
//! is < 0 (first in row-major order on ties). Over faces, a filter's location `c` is the
//! |peak|-weighted mean of its peak locations and `sigma` the |peak|-weighted mean distance to
//! `c`. Spreadness `d` is the mean over filters of the distance from `c` to the centroid of all
//! filters' `c`.

use crate::card::{FilterPeaks, Peak};

/// One peak on one map: location in input pixels and the response there.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MapPeak {
    /// Column, input pixels.
    pub x: f32,
    /// Row, input pixels.
    pub y: f32,
    /// The response (positive for a positive peak, negative for a negative one).
    pub value: f32,
}

/// The positive and negative peaks of one `height x width` map (row-major).
pub fn map_peaks(map: &[f32], width: usize, cell: f32) -> (Option<MapPeak>, Option<MapPeak>) {
    let mut max: Option<(usize, f32)> = None;
    let mut min: Option<(usize, f32)> = None;
    for (i, &v) in map.iter().enumerate() {
        if v > 0.0 && max.is_none_or(|(_, m)| v > m) {
            max = Some((i, v));
        }
        if v < 0.0 && min.is_none_or(|(_, m)| v < m) {
            min = Some((i, v));
        }
    }
    let at = |(i, value): (usize, f32)| MapPeak {
        x: ((i % width.max(1)) as f32 + 0.5) * cell - 0.5,
        y: ((i / width.max(1)) as f32 + 0.5) * cell - 0.5,
        value,
    };
    (max.map(at), min.map(at))
}

/// Collects every filter's peaks over many faces.
#[derive(Debug, Clone)]
pub struct PeakStats {
    width: usize,
    height: usize,
    cell: f32,
    positive: Vec<Vec<MapPeak>>,
    negative: Vec<Vec<MapPeak>>,
}

impl PeakStats {
    /// Statistics for `filters` maps of `height x width` cells, each `cell` pixels square.
    pub fn new(filters: usize, height: usize, width: usize, cell: f32) -> Self {
        Self {
            width,
            height,
            cell,
            positive: vec![Vec::new(); filters],
            negative: vec![Vec::new(); filters],
        }
    }

    /// Adds one face's maps, channel-major (`filters x height x width`). Extra or missing values
    /// past the expected length are ignored.
    pub fn add_face(&mut self, maps: &[f32]) {
        let plane = self.width * self.height;
        for (f, map) in maps
            .chunks_exact(plane)
            .take(self.positive.len())
            .enumerate()
        {
            let (pos, neg) = map_peaks(map, self.width, self.cell);
            self.positive[f].extend(pos);
            self.negative[f].extend(neg);
        }
    }

    /// The share of all per-face peaks (both signs, every filter) at a location for which
    /// `place(x, y)` holds; `None` before any peak.
    pub fn share_where(&self, place: impl Fn(f32, f32) -> bool) -> Option<f64> {
        let all = self.positive.iter().chain(&self.negative).flatten();
        let (mut n, mut hit) = (0usize, 0usize);
        for p in all {
            n += 1;
            hit += usize::from(place(p.x, p.y));
        }
        (n > 0).then(|| hit as f64 / n as f64)
    }

    /// Number of filters.
    pub fn filters(&self) -> usize {
        self.positive.len()
    }

    /// Each filter's mean peak locations and consistency, as the model card stores them.
    pub fn summarise(&self) -> Vec<FilterPeaks> {
        self.positive
            .iter()
            .zip(&self.negative)
            .map(|(p, n)| FilterPeaks {
                positive: weighted_location(p),
                negative: weighted_location(n),
            })
            .collect()
    }
}

fn weighted_location(peaks: &[MapPeak]) -> Option<Peak> {
    let total: f64 = peaks.iter().map(|p| p.value.abs() as f64).sum();
    if total <= 0.0 {
        return None;
    }
    let mean = |f: fn(&MapPeak) -> f32| {
        peaks
            .iter()
            .map(|p| p.value.abs() as f64 * f(p) as f64)
            .sum::<f64>()
            / total
    };
    let (cx, cy) = (mean(|p| p.x), mean(|p| p.y));
    let sigma = peaks
        .iter()
        .map(|p| p.value.abs() as f64 * (p.x as f64 - cx).hypot(p.y as f64 - cy))
        .sum::<f64>()
        / total;
    Some(Peak {
        x: cx as f32,
        y: cy as f32,
        sigma: sigma as f32,
    })
}

/// Spreadness `d` of the positive and the negative peak locations, in pixels (`None` when no
/// filter has peaks of that sign).
pub fn spreadness(filters: &[FilterPeaks]) -> (Option<f64>, Option<f64>) {
    let d = |locations: Vec<Peak>| {
        if locations.is_empty() {
            return None;
        }
        let n = locations.len() as f64;
        let cx = locations.iter().map(|p| p.x as f64).sum::<f64>() / n;
        let cy = locations.iter().map(|p| p.y as f64).sum::<f64>() / n;
        Some(
            locations
                .iter()
                .map(|p| (p.x as f64 - cx).hypot(p.y as f64 - cy))
                .sum::<f64>()
                / n,
        )
    };
    (
        d(filters.iter().filter_map(|f| f.positive).collect()),
        d(filters.iter().filter_map(|f| f.negative).collect()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peaks_of_a_map_by_hand() {
        // 2x3 map, 4-pixel cells: max 5 at (row 1, col 2), min -2 at (row 0, col 1).
        let map = [0.0, -2.0, 1.0, 0.5, 0.0, 5.0];
        let (pos, neg) = map_peaks(&map, 3, 4.0);
        assert_eq!(
            pos,
            Some(MapPeak {
                x: 9.5,
                y: 5.5,
                value: 5.0
            })
        );
        assert_eq!(
            neg,
            Some(MapPeak {
                x: 5.5,
                y: 1.5,
                value: -2.0
            })
        );
        assert_eq!(map_peaks(&[0.0, 1.0], 2, 4.0).1, None);
    }

    #[test]
    fn weighted_location_and_consistency_by_hand() {
        // One filter on a 1x4 grid of 1-pixel cells (x = col). Face 1 peaks at col 0 with 1.0,
        // face 2 at col 3 with 3.0: c = (0*1 + 3*3) / 4 = 2.25; sigma = (1*2.25 + 3*0.75) / 4.
        let mut stats = PeakStats::new(1, 1, 4, 1.0);
        stats.add_face(&[1.0, 0.0, 0.0, 0.0]);
        stats.add_face(&[0.0, 0.0, 0.0, 3.0]);
        let s = stats.summarise();
        let p = s[0].positive.unwrap();
        assert!((p.x - 2.25).abs() < 1e-6 && p.y == 0.0, "{p:?}");
        assert!((p.sigma - 1.125).abs() < 1e-6, "{p:?}");
        assert_eq!(s[0].negative, None);
    }

    #[test]
    fn spreadness_by_hand() {
        let at = |x: f32, y: f32| FilterPeaks {
            positive: Some(Peak { x, y, sigma: 0.0 }),
            negative: None,
        };
        // Centres at (0,0), (6,0), (0,8), (6,8): centroid (3,4), each 5 away: d = 5.
        let filters = [at(0.0, 0.0), at(6.0, 0.0), at(0.0, 8.0), at(6.0, 8.0)];
        let (pos, neg) = spreadness(&filters);
        assert!((pos.unwrap() - 5.0).abs() < 1e-9);
        assert_eq!(neg, None);
        // All filters at one place: no spread.
        assert_eq!(spreadness(&[at(3.0, 3.0), at(3.0, 3.0)]).0, Some(0.0));
    }
}
