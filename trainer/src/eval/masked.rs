//! The device's occlusion-aware comparison, measured and calibrated.
//!
//! On the device a probe whose maps show an occluded region is also compared on the filters the
//! occlusion left intact (the *masked* cosine), and that score decides only against a threshold
//! calibrated for exactly that set of regions ([`facegate_contract::thresholds`]). Here: the
//! masked thresholds are calibrated on the clean (calibration) set's impostor pairs, grouped by
//! the probe's occluded regions; then every set is measured three ways at the same operating
//! point: the full cosine, the masked cosine held against the *full* threshold (what an
//! uncalibrated device would do), and the device's rule. The claim to check: the device's rule
//! lets no more impostors through than the full comparison.

use super::embed::Embedded;
use super::protocols::dot;
use facegate_contract::card::{Comparison, Threshold};
use facegate_contract::cosine_masked;
use facegate_contract::occlusion::{Region, RegionMap, RegionSet};
use facegate_contract::thresholds::Thresholds;
use std::collections::BTreeMap;

/// A masked threshold is calibrated only where at least this many impostor pairs lie above it
/// (a rate measured on the sample, not an extrapolation from a handful).
pub const MIN_IMPOSTORS_ABOVE: f64 = 10.0;

/// One gallery-probe pair, scored both ways.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoredPair {
    /// Same person.
    pub genuine: bool,
    /// Cosine over the whole feature.
    pub full: f32,
    /// Cosine over the filters the probe's occlusion left intact (= `full` when none).
    pub masked: f32,
    /// The regions the rule found occluded on the probe.
    pub occluded: RegionSet,
}

/// The verification pairs of [`super::protocols::verification`], each also scored on the
/// filters the probe's occluded regions leave; lazily, so a large set needs no pair list.
pub fn scored_pairs<'a>(
    gallery: &'a Embedded,
    probe: &'a Embedded,
    regions: &'a RegionMap,
    symmetric: bool,
) -> impl Iterator<Item = ScoredPair> + 'a {
    (0..probe.len()).flat_map(move |p| {
        let occluded = probe.occluded.get(p).copied().unwrap_or(RegionSet::EMPTY);
        let mask = regions.mask(occluded);
        let end = if symmetric { p } else { gallery.len() };
        (0..end).filter_map(move |g| {
            let genuine = gallery.identity[g] == probe.identity[p];
            if genuine && gallery.photo[g] == probe.photo[p] {
                return None;
            }
            let (a, b) = (gallery.feature(g), probe.feature(p));
            let full = dot(a, b);
            let masked = if occluded.is_empty() {
                full
            } else {
                cosine_masked(a, b, &mask).unwrap_or(0.0)
            };
            Some(ScoredPair {
                genuine,
                full,
                masked,
                occluded,
            })
        })
    })
}

/// Masked thresholds, one per set of occluded regions and operating point, calibrated on
/// `pairs` (the clean set's) and named `dataset`. `full` lists each operating point's target
/// FAR with its full threshold. For the impostor pairs whose probe shows a given set of
/// occluded regions, the masked threshold is the lowest one at which the masked cosine accepts
/// no larger share of them than the full cosine does at the full threshold (and at most the
/// target): on those pairs an impostor gains nothing from the occlusion. Sets with too few
/// impostors for that rate ([`MIN_IMPOSTORS_ABOVE`]) get no masked threshold (the full score
/// decides for them).
pub fn calibrate(
    pairs: impl IntoIterator<Item = ScoredPair>,
    full: &[(f64, f32)],
    dataset: &str,
) -> Vec<(Threshold, usize)> {
    let mut by_set: BTreeMap<RegionSet, (Vec<f32>, Vec<f32>)> = BTreeMap::new();
    for p in pairs
        .into_iter()
        .filter(|p| !p.genuine && !p.occluded.is_empty())
    {
        let (fulls, masked) = by_set.entry(p.occluded).or_default();
        fulls.push(p.full);
        masked.push(p.masked);
    }
    let mut out = Vec::new();
    for (set, (fulls, masked)) in &mut by_set {
        masked.sort_by(|a, b| b.total_cmp(a));
        let n = fulls.len();
        for &(target, full_threshold) in full {
            // How many of these impostors the full comparison let in, capped by the target.
            let full_accepts = fulls.iter().filter(|&&s| s >= full_threshold).count();
            let allowed = full_accepts.min((target * n as f64).floor() as usize);
            if (allowed as f64) < MIN_IMPOSTORS_ABOVE || allowed >= n {
                continue;
            }
            // Just above the first impostor that must be refused.
            let score = masked[allowed].next_up();
            let accepted = masked.iter().take_while(|&&s| s >= score).count();
            out.push((
                Threshold {
                    comparison: Comparison::Masked,
                    score,
                    target_far: target,
                    measured_far: accepted as f64 / n as f64,
                    dataset: dataset.to_owned(),
                    regions: Some(set.key()),
                },
                n,
            ));
        }
    }
    out
}

/// One set measured at one operating point.
#[derive(Debug, Clone, PartialEq)]
pub struct MaskedResult {
    /// Share of the set's faces with each region judged occluded, in [`Region::ALL`] order.
    pub region_share: Vec<(Region, f64)>,
    /// Share of faces with any region judged occluded.
    pub any_share: f64,
    /// Impostor pairs whose probe had an occluded region (compared masked).
    pub masked_impostors: usize,
    /// Impostor pairs in all.
    pub impostors: usize,
    /// False accept rate of the full cosine at the full threshold.
    pub far_full: f64,
    /// False accept rate when occluded probes are compared masked against the full threshold.
    pub far_masked_uncalibrated: f64,
    /// False accept rate of the device's rule (masked only against a calibrated threshold).
    pub far_device: f64,
    /// True accept rate of the full cosine.
    pub tar_full: f64,
    /// True accept rate of the device's rule.
    pub tar_device: f64,
}

/// Measures `pairs` of the set `probe` at the operating point `thresholds`.
pub fn measure(
    probe: &Embedded,
    pairs: impl IntoIterator<Item = ScoredPair>,
    thresholds: &Thresholds,
) -> MaskedResult {
    let faces = probe.occluded.len().max(1) as f64;
    let region_share = Region::ALL
        .iter()
        .map(|&r| {
            let n = probe.occluded.iter().filter(|s| s.contains(r)).count();
            (r, n as f64 / faces)
        })
        .collect();
    let any = probe.occluded.iter().filter(|s| !s.is_empty()).count();
    let t = thresholds.full;
    let device_accepts = |p: &ScoredPair| match thresholds.masked_for(p.occluded) {
        Some(masked) => p.masked >= masked,
        None => p.full >= t,
    };
    let (mut imp, mut gen_) = (0usize, 0usize);
    let (mut masked_imp, mut far_full, mut far_naive, mut far_device) = (0, 0, 0, 0);
    let (mut tar_full, mut tar_device) = (0, 0);
    for p in pairs {
        let p = &p;
        let naive = if p.occluded.is_empty() {
            p.full
        } else {
            p.masked
        };
        if p.genuine {
            gen_ += 1;
            tar_full += usize::from(p.full >= t);
            tar_device += usize::from(device_accepts(p));
        } else {
            imp += 1;
            masked_imp += usize::from(!p.occluded.is_empty());
            far_full += usize::from(p.full >= t);
            far_naive += usize::from(naive >= t);
            far_device += usize::from(device_accepts(p));
        }
    }
    let rate = |n: usize, of: usize| n as f64 / of.max(1) as f64;
    MaskedResult {
        region_share,
        any_share: any as f64 / faces,
        masked_impostors: masked_imp,
        impostors: imp,
        far_full: rate(far_full, imp),
        far_masked_uncalibrated: rate(far_naive, imp),
        far_device: rate(far_device, imp),
        tar_full: rate(tar_full, gen_),
        tar_device: rate(tar_device, gen_),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn pair(genuine: bool, full: f32, masked: f32, occluded: RegionSet) -> ScoredPair {
        ScoredPair {
            genuine,
            full,
            masked,
            occluded,
        }
    }

    fn probe(occluded: Vec<RegionSet>) -> Embedded {
        Embedded {
            dim: 1,
            features: vec![1.0; occluded.len()],
            identity: vec!["a".into(); occluded.len()],
            photo: (0..occluded.len()).collect(),
            path: Vec::new(),
            skipped: Vec::new(),
            occluded,
        }
    }

    #[test]
    fn a_masked_threshold_accepts_no_more_impostors_than_the_full_one_did() {
        let mouth = RegionSet::of([Region::Mouth]);
        let eye = RegionSet::of([Region::LeftEye]);
        // 20,000 mouth-occluded impostors: full scores spread over 0..1 (0.05% at or above the
        // full threshold 0.9995), masked scores spread over 0..0.5; 50 eye-occluded ones.
        let mut pairs: Vec<ScoredPair> = (0..20_000)
            .map(|i| {
                let x = i as f32 / 20_000.0;
                pair(false, x, x / 2.0, mouth)
            })
            .collect();
        pairs.extend((0..50).map(|i| pair(false, 0.1, i as f32 / 50.0, eye)));
        pairs.push(pair(true, 0.9, 0.99, mouth));
        let got = calibrate(
            pairs.iter().copied(),
            &[(1e-3, 0.9995), (1e-4, 0.9999)],
            "eval-clean",
        );
        // 1e-3: the full comparison accepted 10 of 20,000 mouth impostors (5e-4 < 1e-3), so
        // the masked one may accept 10 at most. 1e-4: 2 impostors above is too few to calibrate.
        // The eye set has 50 impostors: never enough.
        assert_eq!(got.len(), 1, "{got:?}");
        let (t, n) = &got[0];
        assert_eq!(t.regions.as_deref(), Some("mouth"));
        assert_eq!((t.target_far, *n), (1e-3, 20_000));
        let above = |score: f32| {
            pairs
                .iter()
                .filter(|p| !p.genuine && p.occluded == mouth && p.masked >= score)
                .count()
        };
        assert_eq!(above(t.score), 10);
        assert!(above(t.score.next_down()) > 10, "the lowest such threshold");
        assert!((t.measured_far - 5e-4).abs() < 1e-9, "{}", t.measured_far);
    }

    #[test]
    fn the_device_rule_uses_a_masked_score_only_with_its_own_threshold() {
        let mouth = RegionSet::of([Region::Mouth]);
        let eye = RegionSet::of([Region::LeftEye]);
        let thresholds = Thresholds {
            full: 0.5,
            target_far: 1e-3,
            masked: vec![(mouth, 0.7)],
        };
        let pairs = [
            // Mouth-occluded impostor: masked 0.6 passes the full threshold, not its own.
            pair(false, 0.3, 0.6, mouth),
            // Eye-occluded impostor: no masked threshold, so the full score (0.3) decides.
            pair(false, 0.3, 0.9, eye),
            // Unoccluded impostor above the threshold.
            pair(false, 0.55, 0.55, RegionSet::EMPTY),
            pair(false, 0.1, 0.1, RegionSet::EMPTY),
            // Genuine, mouth-occluded: masked 0.8 >= 0.7 accepts though the full 0.45 would not.
            pair(true, 0.45, 0.8, mouth),
            pair(true, 0.6, 0.6, RegionSet::EMPTY),
        ];
        let set = probe(vec![mouth, eye, RegionSet::EMPTY, RegionSet::EMPTY]);
        let m = measure(&set, pairs, &thresholds);
        assert_eq!(m.impostors, 4);
        assert_eq!(m.masked_impostors, 2);
        assert_eq!(m.far_full, 0.25);
        assert_eq!(m.far_masked_uncalibrated, 0.75);
        assert_eq!(m.far_device, 0.25);
        assert_eq!(m.tar_full, 0.5);
        assert_eq!(m.tar_device, 1.0);
        assert_eq!(m.any_share, 0.5);
        let share = |r| m.region_share.iter().find(|(x, _)| *x == r).unwrap().1;
        assert_eq!(share(Region::Mouth), 0.25);
        assert_eq!(share(Region::Nose), 0.0);
    }
}
