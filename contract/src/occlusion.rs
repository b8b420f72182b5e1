//! Facial regions, which filters look at each, and which regions an occlusion has reached.
//!
//! Pipeline position: *match* on the device (compare on the intact filters, explain per region)
//! and the trainer's evaluation (calibrate and measure the masked comparison). Both must agree on
//! what "the nose region" and "occluded" mean, so the rules live here once.
//!
//! Rules:
//! - Six regions, centred from the card's alignment template: the two eyes, the nose, the mouth
//!   (mid-point of its corners), the forehead (above the eyes by the eyes-to-nose distance) and the
//!   chin (below the mouth by the nose-to-mouth distance).
//! - A filter belongs to the region nearest its mean positive peak in the card's map; a filter
//!   without a positive peak belongs to none and is always kept.
//! - On a probe, a filter is *displaced* when its own positive peak is missing or lies farther from
//!   the card's location than `radius_sigmas * sigma` (but at least `min_radius_cells` cells).
//!   The occluder hides the part the filter looks for, so the filter fires elsewhere or not at all.
//! - A region is *occluded* when at least `displaced_share` of its filters are displaced.

use crate::align::{Landmarks5, Point};
use crate::card::{FilterPeaks, ModelCard};
use crate::peaks::map_peaks;
use crate::similarity::FeatureMask;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A facial region, as the camera sees it ("left" is the image's left).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Region {
    /// Above the eyes.
    Forehead,
    /// The eye on the image's left.
    LeftEye,
    /// The eye on the image's right.
    RightEye,
    /// The nose.
    Nose,
    /// The mouth.
    Mouth,
    /// Below the mouth.
    Chin,
}

impl Region {
    /// Every region, in a fixed order (the bit order of [`RegionSet`]).
    pub const ALL: [Region; 6] = [
        Region::Forehead,
        Region::LeftEye,
        Region::RightEye,
        Region::Nose,
        Region::Mouth,
        Region::Chin,
    ];

    /// The snake-case name used in events and reports.
    pub fn name(self) -> &'static str {
        match self {
            Region::Forehead => "forehead",
            Region::LeftEye => "left_eye",
            Region::RightEye => "right_eye",
            Region::Nose => "nose",
            Region::Mouth => "mouth",
            Region::Chin => "chin",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of regions (e.g. the occluded ones), small and `Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct RegionSet(u8);

impl RegionSet {
    /// No region.
    pub const EMPTY: RegionSet = RegionSet(0);

    /// The set with the given regions.
    pub fn of(regions: impl IntoIterator<Item = Region>) -> Self {
        let mut s = Self::EMPTY;
        for r in regions {
            s.insert(r);
        }
        s
    }

    /// Adds a region.
    pub fn insert(&mut self, r: Region) {
        self.0 |= r.bit();
    }

    /// Whether the region is in the set.
    pub fn contains(self, r: Region) -> bool {
        self.0 & r.bit() != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The regions, in [`Region::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Region> {
        Region::ALL.into_iter().filter(move |r| self.contains(*r))
    }

    /// Every subset of all regions, the empty set first (64 sets).
    pub fn all_subsets() -> impl Iterator<Item = RegionSet> {
        (0u8..(1 << Region::ALL.len())).map(RegionSet)
    }

    /// A compact stable key, e.g. `"left_eye+right_eye"`, `""` for none.
    pub fn key(self) -> String {
        self.iter().map(Region::name).collect::<Vec<_>>().join("+")
    }

    /// The set a [`RegionSet::key`] names; `None` for an unknown region name.
    pub fn from_key(key: &str) -> Option<Self> {
        let mut s = Self::EMPTY;
        for name in key.split('+').filter(|n| !n.is_empty()) {
            s.insert(Region::ALL.into_iter().find(|r| r.name() == name)?);
        }
        Some(s)
    }
}

/// Settings of the occlusion rule (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OcclusionRule {
    /// A probe peak farther than this many sigmas from the card's location is displaced.
    pub radius_sigmas: f32,
    /// The displacement radius is never below this many map cells.
    pub min_radius_cells: f32,
    /// A region is occluded when at least this share of its filters is displaced.
    pub displaced_share: f32,
    /// Regions watched by fewer filters are never judged occluded.
    pub min_filters: usize,
}

impl Default for OcclusionRule {
    fn default() -> Self {
        Self {
            radius_sigmas: 3.0,
            min_radius_cells: 3.0,
            displaced_share: 0.8,
            min_filters: 3,
        }
    }
}

/// Which region each filter of a model looks at, from its card.
#[derive(Debug, Clone, PartialEq)]
pub struct RegionMap {
    centres: [Point; 6],
    filter_region: Vec<Option<Region>>,
    peaks: Vec<FilterPeaks>,
    cell: f32,
    map_width: usize,
    map_height: usize,
}

impl RegionMap {
    /// The regions of the model `card` describes.
    pub fn from_card(card: &ModelCard) -> Self {
        Self::new(
            &card.alignment.points,
            card.filter_peaks.clone(),
            card.cell_size(),
            card.outputs.maps.width as usize,
            card.outputs.maps.height as usize,
        )
    }

    /// The regions of a model whose template puts the landmarks at `template`, whose filters
    /// peak at `peaks` and whose maps are `map_width x map_height` cells of `cell` pixels.
    pub fn new(
        template: &Landmarks5,
        peaks: Vec<FilterPeaks>,
        cell: f32,
        map_width: usize,
        map_height: usize,
    ) -> Self {
        let p = template.0;
        let mid = |a: Point, b: Point| Point::new((a.x + b.x) / 2.0, (a.y + b.y) / 2.0);
        let eyes = mid(p[0], p[1]);
        let mouth = mid(p[3], p[4]);
        let nose = p[2];
        let forehead = Point::new(eyes.x, eyes.y - (nose.y - eyes.y));
        let chin = Point::new(mouth.x, mouth.y + (mouth.y - nose.y));
        // Order of Region::ALL.
        let centres = [forehead, p[0], p[1], nose, mouth, chin];
        let filter_region = peaks
            .iter()
            .map(|f| {
                f.positive.map(|pk| {
                    let d = |c: Point| (c.x - pk.x).powi(2) + (c.y - pk.y).powi(2);
                    let mut best = 0;
                    for (i, c) in centres.iter().enumerate() {
                        if d(*c) < d(centres[best]) {
                            best = i;
                        }
                    }
                    Region::ALL[best]
                })
            })
            .collect();
        Self {
            centres,
            filter_region,
            peaks,
            cell,
            map_width,
            map_height,
        }
    }

    /// Number of filters (= feature length).
    pub fn filters(&self) -> usize {
        self.filter_region.len()
    }

    /// The region filter `j` looks at, if it has a positive peak.
    pub fn region_of(&self, j: usize) -> Option<Region> {
        self.filter_region.get(j).copied().flatten()
    }

    /// The centre of `region` in input pixels.
    pub fn centre(&self, region: Region) -> Point {
        self.centres[region as usize]
    }

    /// The filters that look at `region`.
    pub fn filters_in(&self, region: Region) -> impl Iterator<Item = usize> + '_ {
        (0..self.filters()).filter(move |&j| self.region_of(j) == Some(region))
    }

    /// The regions an occlusion reached on a probe, from the probe's own maps
    /// (`filters x height x width`, the model's maps output for one face).
    pub fn occluded(&self, maps: &[f32], rule: &OcclusionRule) -> RegionSet {
        let plane = self.map_width * self.map_height;
        let mut total = [0usize; 6];
        let mut displaced = [0usize; 6];
        for j in 0..self.filters() {
            let (Some(region), Some(Some(expected))) =
                (self.region_of(j), self.peaks.get(j).map(|p| p.positive))
            else {
                continue;
            };
            let Some(map) = maps.get(j * plane..(j + 1) * plane) else {
                continue;
            };
            let radius =
                (rule.radius_sigmas * expected.sigma).max(rule.min_radius_cells * self.cell);
            let (peak, _) = map_peaks(map, self.map_width, self.cell);
            let moved = match peak {
                Some(pk) => (pk.x - expected.x).hypot(pk.y - expected.y) > radius,
                None => true,
            };
            total[region as usize] += 1;
            displaced[region as usize] += usize::from(moved);
        }
        RegionSet::of(Region::ALL.into_iter().filter(|r| {
            let (t, d) = (total[*r as usize], displaced[*r as usize]);
            t > 0 && t >= rule.min_filters && d as f32 >= rule.displaced_share * t as f32
        }))
    }

    /// The comparison mask that leaves out the filters of the `occluded` regions.
    pub fn mask(&self, occluded: RegionSet) -> FeatureMask {
        FeatureMask::from(
            (0..self.filters())
                .map(|j| self.region_of(j).is_none_or(|r| !occluded.contains(r)))
                .collect::<Vec<_>>(),
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::card::Peak;

    fn map_with(peaks: Vec<FilterPeaks>) -> RegionMap {
        let template = crate::align::AlignmentTemplate::square(96).points;
        RegionMap::new(&template, peaks, 4.0, 24, 24)
    }

    fn at(x: f32, y: f32) -> FilterPeaks {
        FilterPeaks {
            positive: Some(Peak { x, y, sigma: 2.0 }),
            negative: None,
        }
    }

    /// A map with one positive response at the cell holding input pixel (x, y).
    fn map_firing_at(x: f32, y: f32) -> Vec<f32> {
        let mut m = vec![0.0; 24 * 24];
        let (c, r) = ((x / 4.0) as usize, (y / 4.0) as usize);
        m[r * 24 + c] = 1.0;
        m
    }

    #[test]
    fn region_sets_hold_what_was_inserted() {
        let s = RegionSet::of([Region::Mouth, Region::LeftEye]);
        assert!(s.contains(Region::Mouth) && s.contains(Region::LeftEye));
        assert!(!s.contains(Region::Nose));
        assert_eq!(s.key(), "left_eye+mouth");
        assert_eq!(RegionSet::from_key(&s.key()), Some(s));
        assert_eq!(RegionSet::from_key(""), Some(RegionSet::EMPTY));
        assert_eq!(RegionSet::from_key("ear"), None);
        assert_eq!(RegionSet::all_subsets().count(), 64);
        assert!(RegionSet::EMPTY.is_empty());
    }

    #[test]
    fn filters_go_to_the_nearest_region_and_occlusion_follows_displaced_peaks() {
        let p = crate::align::AlignmentTemplate::square(96).points.0;
        let (mx, my) = ((p[3].x + p[4].x) / 2.0, (p[3].y + p[4].y) / 2.0);
        let map = map_with(vec![
            at(p[0].x, p[0].y),
            at(p[1].x, p[1].y),
            at(mx, my),
            at(mx + 2.0, my),
            FilterPeaks {
                positive: None,
                negative: None,
            },
        ]);
        assert_eq!(map.region_of(0), Some(Region::LeftEye));
        assert_eq!(map.region_of(1), Some(Region::RightEye));
        assert_eq!(map.region_of(2), Some(Region::Mouth));
        assert_eq!(map.region_of(3), Some(Region::Mouth));
        assert_eq!(map.region_of(4), None);

        // Every filter fires where the card says: nothing occluded.
        let mut maps = Vec::new();
        for (x, y) in [(p[0].x, p[0].y), (p[1].x, p[1].y), (mx, my), (mx + 2.0, my)] {
            maps.extend(map_firing_at(x, y));
        }
        maps.extend(vec![0.0; 24 * 24]);
        let rule = OcclusionRule {
            min_filters: 2,
            ..OcclusionRule::default()
        };
        assert_eq!(map.occluded(&maps, &rule), RegionSet::EMPTY);

        // Both mouth filters fire on the forehead instead (a scarf): the mouth is occluded.
        let plane = 24 * 24;
        for j in [2, 3] {
            maps[j * plane..(j + 1) * plane].copy_from_slice(&map_firing_at(48.0, 10.0));
        }
        let occluded = map.occluded(&maps, &rule);
        assert_eq!(occluded, RegionSet::of([Region::Mouth]));
        // Watched by fewer filters than the rule asks: never judged.
        let strict = OcclusionRule {
            min_filters: 3,
            ..rule
        };
        assert_eq!(map.occluded(&maps, &strict), RegionSet::EMPTY);
        let mask = map.mask(occluded);
        assert_eq!(
            (0..5).map(|j| mask.keeps(j)).collect::<Vec<_>>(),
            [true, true, false, false, true]
        );
    }
}
