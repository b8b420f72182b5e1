//! The explanation of a match, per facial region: did the region support the match, disagree
//! with it, or was it occluded? This is what a technician reads when someone is refused.

use facegate_contract::FeatureMask;
use facegate_contract::cosine_masked;
use facegate_contract::occlusion::{Region, RegionMap, RegionSet};
use serde::{Deserialize, Serialize};

/// A region's part in a match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RegionVerdict {
    /// On its own, the region is as similar as a match requires.
    Support,
    /// The region is less similar than a match requires.
    Disagree,
    /// An occluder hides the region; it took no part in the masked score.
    Occluded,
    /// No filter of the model looks at this region.
    Unseen,
}

/// One region's part in a match.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegionExplanation {
    /// The region.
    pub region: Region,
    /// Its verdict.
    pub verdict: RegionVerdict,
    /// Cosine between probe and template on this region's filters alone.
    pub similarity: Option<f32>,
    /// This region's share of the full dot product (sums to the full score over regions and
    /// unassigned filters).
    pub contribution: f32,
    /// How many filters look at the region.
    pub filters: usize,
}

/// Explains the comparison of `probe` with `template` (unit features) region by region, with
/// `occluded` regions marked and the rest held against `threshold`.
pub fn explain(
    regions: &RegionMap,
    probe: &[f32],
    template: &[f32],
    occluded: RegionSet,
    threshold: f32,
) -> Vec<RegionExplanation> {
    Region::ALL
        .into_iter()
        .map(|region| {
            let filters: Vec<usize> = regions.filters_in(region).collect();
            let contribution = filters
                .iter()
                .map(|&j| {
                    probe.get(j).copied().unwrap_or(0.0) * template.get(j).copied().unwrap_or(0.0)
                })
                .sum();
            let only = FeatureMask::from(
                (0..regions.filters())
                    .map(|j| regions.region_of(j) == Some(region))
                    .collect::<Vec<_>>(),
            );
            let similarity = (!filters.is_empty())
                .then(|| cosine_masked(probe, template, &only).ok())
                .flatten();
            let verdict = if filters.is_empty() {
                RegionVerdict::Unseen
            } else if occluded.contains(region) {
                RegionVerdict::Occluded
            } else if similarity.is_some_and(|s| s >= threshold) {
                RegionVerdict::Support
            } else {
                RegionVerdict::Disagree
            };
            RegionExplanation {
                region,
                verdict,
                similarity,
                contribution,
                filters: filters.len(),
            }
        })
        .collect()
}
