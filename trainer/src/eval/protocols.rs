//! The evaluation protocols of docs/method.md, on embedded sets. The gallery is always the clean
//! set (people enroll unoccluded at the door); the probe set may carry an occluder. Pairs are
//! exhaustive rather than sampled, so the numbers do not move between runs.

use super::embed::Embedded;
use crate::scores::PairScores;
use facegate_contract::metrics::{MetricsError, rank_k_accuracy, template_distance};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Dot product; of unit features, their cosine.
pub(super) fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Verification pairs: a gallery photo against a probe photo of the same person (genuine,
/// never the same photo number) or of anyone else (impostor). When `symmetric` (the probe set
/// is the gallery itself), each unordered pair counts once.
pub fn verification(gallery: &Embedded, probe: &Embedded, symmetric: bool) -> PairScores {
    let mut scores = PairScores::default();
    for g in 0..gallery.len() {
        let start = if symmetric { g + 1 } else { 0 };
        for p in start..probe.len() {
            let same = gallery.identity[g] == probe.identity[p];
            if same && gallery.photo[g] == probe.photo[p] {
                continue;
            }
            let s = dot(gallery.feature(g), probe.feature(p));
            if same {
                scores.genuine.push(s);
            } else {
                scores.impostor.push(s);
            }
        }
    }
    scores
}

/// Verification on a listed set of pairs (LFW's protocol): `pairs` are (crop, crop, same
/// person) as the manifest names the crops. Pairs with a face that was not embedded are
/// dropped; returns the scores and how many were dropped.
pub fn listed_pairs(set: &Embedded, pairs: &[(PathBuf, PathBuf, bool)]) -> (PairScores, usize) {
    let index: HashMap<&Path, usize> = set
        .path
        .iter()
        .enumerate()
        .map(|(i, p)| (p.as_path(), i))
        .collect();
    let mut scores = PairScores::default();
    let mut dropped = 0;
    for (a, b, same) in pairs {
        match (index.get(a.as_path()), index.get(b.as_path())) {
            (Some(&i), Some(&j)) => {
                let s = dot(set.feature(i), set.feature(j));
                if *same {
                    scores.genuine.push(s);
                } else {
                    scores.impostor.push(s);
                }
            }
            _ => dropped += 1,
        }
    }
    (scores, dropped)
}

/// Closed-set identification: each person's first clean photo is the gallery; every probe
/// photo after the first is searched. Returns rank-1 and rank-5 accuracy.
pub fn identification(gallery: &Embedded, probe: &Embedded) -> Result<(f64, f64), MetricsError> {
    let people = gallery.by_identity();
    let mut names = Vec::new();
    let mut enrolled = Vec::new();
    for (name, photos) in &people {
        if let Some((_, &i)) = photos.iter().next() {
            names.push(*name);
            enrolled.push(i);
        }
    }
    let mut scores = Vec::new();
    let mut probe_ids = Vec::new();
    for p in 0..probe.len() {
        let Some(id) = names.iter().position(|n| *n == probe.identity[p]) else {
            continue;
        };
        if people[names[id]].keys().next() == Some(&probe.photo[p]) {
            continue;
        }
        probe_ids.push(id as u32);
        scores.extend(
            enrolled
                .iter()
                .map(|&g| dot(gallery.feature(g), probe.feature(p))),
        );
    }
    let gallery_ids: Vec<u32> = (0..names.len() as u32).collect();
    Ok((
        rank_k_accuracy(&scores, &probe_ids, &gallery_ids, 1)?,
        rank_k_accuracy(&scores, &probe_ids, &gallery_ids, 5)?,
    ))
}

/// Each person's photos of the first (or second) half, as a template.
fn half_templates(set: &Embedded, first_half: bool) -> Vec<(String, Vec<&[f32]>)> {
    set.by_identity()
        .into_iter()
        .filter_map(|(name, photos)| {
            let n = photos.len();
            let keep: Vec<&[f32]> = photos
                .values()
                .enumerate()
                .filter(|(k, _)| (*k < n / 2) == first_half)
                .map(|(_, &i)| set.feature(i))
                .collect();
            (!keep.is_empty()).then(|| (name.to_owned(), keep))
        })
        .collect()
}

/// Template (set) matching, as for IJB-A: each person's clean photos of the first half make
/// one template, their probe photos of the second half another; templates are compared with
/// docs/method.md's set distance and scored `1 - distance`.
pub fn templates(gallery: &Embedded, probe: &Embedded) -> Result<PairScores, MetricsError> {
    let (a, b) = (half_templates(gallery, true), half_templates(probe, false));
    let mut scores = PairScores::default();
    for (name_a, ta) in &a {
        for (name_b, tb) in &b {
            let s = 1.0 - template_distance(ta, tb)? as f32;
            if name_a == name_b {
                scores.genuine.push(s);
            } else {
                scores.impostor.push(s);
            }
        }
    }
    Ok(scores)
}

/// The lowest threshold whose false accept rate on `impostor` is at most `target`, with the
/// rate measured there. When the sample is too small to resolve `target` (fewer than
/// `1 / target` impostors), the threshold lies just above every impostor and the measured rate
/// is 0: a bound from the sample, not a measurement of `target`.
pub fn threshold_at_far(impostor: &[f32], target: f64) -> Option<(f32, f64)> {
    if impostor.is_empty() || impostor.iter().any(|s| s.is_nan()) {
        return None;
    }
    let mut sorted = impostor.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let allowed = (target * sorted.len() as f64).floor() as usize;
    let edge = sorted[allowed.min(sorted.len() - 1)];
    let threshold = edge.next_up();
    if threshold > 1.0 {
        // Impostors at cosine 1: no threshold separates them (a collapsed model).
        return None;
    }
    let accepted = sorted.iter().filter(|&&s| s >= threshold).count();
    Some((threshold, accepted as f64 / sorted.len() as f64))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// People 0..n, photos 0..k, 2-d features at an angle per person plus a per-photo wobble.
    fn set(people: usize, photos: usize, wobble: f32) -> Embedded {
        let mut e = Embedded {
            dim: 2,
            features: Vec::new(),
            identity: Vec::new(),
            photo: Vec::new(),
            path: Vec::new(),
            skipped: Vec::new(),
            occluded: Vec::new(),
        };
        for p in 0..people {
            for k in 0..photos {
                let a = p as f32 * 0.7 + wobble * (k as f32 - 1.0);
                e.features.extend([a.cos(), a.sin()]);
                e.identity.push(format!("p{p}"));
                e.photo.push(k);
                e.path.push(PathBuf::from(format!("p{p}/{k}.png")));
            }
        }
        e
    }

    #[test]
    fn listed_pairs_score_only_what_is_listed() {
        let e = set(2, 2, 0.1);
        let pair = |a: &str, b: &str, same| (PathBuf::from(a), PathBuf::from(b), same);
        let (scores, dropped) = listed_pairs(
            &e,
            &[
                pair("p0/0.png", "p0/1.png", true),
                pair("p0/0.png", "p1/1.png", false),
                pair("p0/0.png", "p9/0.png", false),
            ],
        );
        assert_eq!(
            (scores.genuine.len(), scores.impostor.len(), dropped),
            (1, 1, 1)
        );
        assert!((scores.genuine[0] - 0.1f32.cos()).abs() < 1e-5);
        assert!(scores.genuine[0] > scores.impostor[0]);
    }

    #[test]
    fn pairs_are_counted_once_and_never_with_themselves() {
        let g = set(3, 3, 0.01);
        let sym = verification(&g, &g, true);
        assert_eq!(sym.genuine.len(), 3 * 3); // 3 unordered pairs per person
        assert_eq!(sym.impostor.len(), 3 * 9); // 3 person pairs x 9 photo pairs
        let cross = verification(&g, &g, false);
        assert_eq!(cross.genuine.len(), 3 * 6);
        assert_eq!(cross.impostor.len(), 6 * 9);
        assert!(sym.genuine.iter().all(|&s| s > 0.99));
    }

    #[test]
    fn identification_finds_people_and_misses_when_confused() {
        let g = set(5, 3, 0.01);
        assert_eq!(identification(&g, &g).unwrap(), (1.0, 1.0));
        // A wobble larger than the gap between people moves probes to neighbours.
        let mut confused = set(5, 3, 0.0);
        for k in 0..confused.len() {
            if confused.photo[k] > 0 {
                let a = ((k / 3 + 1) % 5) as f32 * 0.7;
                confused.features[2 * k] = a.cos();
                confused.features[2 * k + 1] = a.sin();
            }
        }
        let (r1, r5) = identification(&g, &confused).unwrap();
        assert_eq!(r1, 0.0);
        assert_eq!(r5, 1.0);
    }

    #[test]
    fn templates_pair_halves_of_each_person() {
        let g = set(4, 4, 0.01);
        let s = templates(&g, &g).unwrap();
        assert_eq!((s.genuine.len(), s.impostor.len()), (4, 12));
        assert!(s.genuine.iter().all(|&v| v > 0.99));
    }

    #[test]
    fn thresholds_keep_false_accepts_within_target() {
        let impostor: Vec<f32> = (0..1000).map(|i| i as f32 / 1000.0).collect();
        let (t, far) = threshold_at_far(&impostor, 1e-2).unwrap();
        assert!(far <= 1e-2 && far > 0.0, "{far}");
        assert!(t > 0.989 && t <= 0.991, "{t}");
        let (t, far) = threshold_at_far(&impostor, 1e-4).unwrap();
        assert_eq!(far, 0.0);
        assert!(t > 0.999);
        // Ties at the edge are all rejected.
        let (_, far) = threshold_at_far(&[0.5; 100], 0.05).unwrap();
        assert_eq!(far, 0.0);
        assert!(threshold_at_far(&[], 1e-3).is_none());
        // A collapsed model: impostors at cosine 1 cannot be separated by any threshold.
        assert!(threshold_at_far(&[1.0; 10], 1e-3).is_none());
    }
}
