//! Which of a model card's calibrated thresholds apply at an operating point, full and masked.
//!
//! Used by *match* on the device (what a score is held against) and by the trainer's evaluation
//! (measuring what the device would accept), so both pick thresholds the same way. A masked
//! comparison only ever decides against a threshold calibrated for exactly its set of occluded
//! regions at the same false accept rate as the full one; without one, the full score decides.

use crate::card::{Comparison, ModelCard};
use crate::occlusion::RegionSet;

/// The thresholds a matcher decides with at one operating point.
#[derive(Debug, Clone, PartialEq)]
pub struct Thresholds {
    /// Full-feature cosine threshold at the chosen operating point.
    pub full: f32,
    /// The false accept rate `full` was calibrated at.
    pub target_far: f64,
    /// Masked-comparison thresholds calibrated at the same false accept rate, by occluded set.
    pub masked: Vec<(RegionSet, f32)>,
}

impl Thresholds {
    /// The card's thresholds at `target_far` (the closest calibrated one at or below it, so the
    /// device is never more permissive than asked).
    pub fn from_card(card: &ModelCard, target_far: f64) -> Option<Self> {
        let full = card
            .thresholds
            .iter()
            .filter(|t| t.comparison == Comparison::Full && t.target_far <= target_far * 1.000_001)
            .max_by(|a, b| a.target_far.total_cmp(&b.target_far))?;
        let masked = card
            .thresholds
            .iter()
            .filter(|t| t.comparison == Comparison::Masked && t.target_far == full.target_far)
            .filter_map(|t| {
                let regions = t.regions.as_deref()?;
                Some((RegionSet::from_key(regions)?, t.score))
            })
            .collect();
        Some(Self {
            full: full.score,
            target_far: full.target_far,
            masked,
        })
    }

    /// The calibrated masked threshold for comparisons without `occluded`, if the card has one.
    /// `None` for the empty set: an unoccluded face is compared in full.
    pub fn masked_for(&self, occluded: RegionSet) -> Option<f32> {
        if occluded.is_empty() {
            return None;
        }
        self.masked
            .iter()
            .find(|(set, _)| *set == occluded)
            .map(|(_, t)| *t)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::card::Threshold;
    use crate::occlusion::Region;

    fn threshold(comparison: Comparison, score: f32, far: f64, regions: Option<&str>) -> Threshold {
        Threshold {
            comparison,
            score,
            target_far: far,
            measured_far: far,
            dataset: "synth-val".into(),
            regions: regions.map(str::to_owned),
        }
    }

    #[test]
    fn the_operating_point_is_never_more_permissive_than_asked() {
        let mut card = crate::card::tests::card();
        card.thresholds = vec![
            threshold(Comparison::Full, 0.42, 1e-3, None),
            threshold(Comparison::Full, 0.55, 1e-4, None),
            threshold(Comparison::Masked, 0.47, 1e-3, Some("mouth+chin")),
            threshold(Comparison::Masked, 0.60, 1e-4, Some("mouth+chin")),
            threshold(Comparison::Masked, 0.58, 1e-4, Some("left_eye")),
        ];
        let at = |far| Thresholds::from_card(&card, far).unwrap();
        assert_eq!(at(1e-3).full, 0.42);
        assert_eq!(
            at(5e-4).full,
            0.55,
            "1e-3 would let more strangers in than 5e-4"
        );
        assert_eq!(at(1e-4).full, 0.55);
        assert!(Thresholds::from_card(&card, 1e-5).is_none());
        let mouth_chin = RegionSet::of([Region::Mouth, Region::Chin]);
        assert_eq!(at(1e-3).masked_for(mouth_chin), Some(0.47));
        assert_eq!(at(1e-4).masked_for(mouth_chin), Some(0.60));
        // Only the exact set of occluded regions has a masked threshold.
        assert_eq!(at(1e-3).masked_for(RegionSet::of([Region::LeftEye])), None);
        assert_eq!(
            at(1e-4).masked_for(RegionSet::of([Region::LeftEye])),
            Some(0.58)
        );
        assert_eq!(at(1e-4).masked_for(RegionSet::of([Region::Mouth])), None);
        assert_eq!(at(1e-4).masked_for(RegionSet::EMPTY), None);
    }
}
