//! *match*: who, among the enrolled, is this face, on the parts of it that can be seen?
//!
//! Pipeline position: after *embed*, before *decide*. The index holds every template of the
//! model in use as one flat matrix (a 1:N search is one pass over it). Occlusion tolerance: the
//! probe's own maps say which facial regions an occluder reached (the shared
//! [`facegate_contract::occlusion`] rules); the comparison then also runs on the remaining
//! filters (the *masked* score). The masked score only decides when the model card carries a
//! threshold calibrated for exactly that masked comparison; otherwise the full score decides, so
//! an impostor never gains from an occlusion (see [`Thresholds`]).
//!
//! Every result explains itself per region: the region supported the match, disagreed with it,
//! or was occluded.

pub mod explain;

use crate::gallery::Template;
pub use explain::{RegionExplanation, RegionVerdict, explain};
use facegate_contract::FeatureMask;
use facegate_contract::occlusion::{OcclusionRule, RegionMap, RegionSet};
pub use facegate_contract::thresholds::Thresholds;

/// An enrolled person as the matcher knows them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Enrolled {
    /// Stable id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Per-person full-score threshold, overriding the card's.
    pub threshold: Option<f32>,
    /// When they may come in (*decide* denies a match outside it); empty: any time.
    pub schedule: crate::schedule::Schedule,
}

/// Every template of the model in use, ready to search.
#[derive(Debug, Clone, Default)]
pub struct Index {
    dim: usize,
    features: Vec<f32>,
    owner: Vec<usize>,
    people: Vec<Enrolled>,
}

/// Why an index could not be built.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// A template's length differs from the model's feature length.
    #[error("template of {person} from {photo} has {got} values, the model makes {want}")]
    Dimension {
        /// Whose.
        person: String,
        /// From which photo.
        photo: String,
        /// Its length.
        got: usize,
        /// The model's.
        want: usize,
    },
    /// A template names a person not in the list.
    #[error("template from {photo} belongs to {person}, who is not enrolled")]
    Orphan {
        /// Whose.
        person: String,
        /// From which photo.
        photo: String,
    },
}

impl Index {
    /// An index over `templates` of `people`, for features of length `dim`.
    pub fn new(
        dim: usize,
        people: Vec<Enrolled>,
        templates: &[Template],
    ) -> Result<Self, IndexError> {
        let mut index = Self {
            dim,
            features: Vec::with_capacity(templates.len() * dim),
            owner: Vec::with_capacity(templates.len()),
            people,
        };
        for t in templates {
            if t.feature.len() != dim {
                return Err(IndexError::Dimension {
                    person: t.person_id.clone(),
                    photo: t.photo.clone(),
                    got: t.feature.len(),
                    want: dim,
                });
            }
            let Some(p) = index.people.iter().position(|p| p.id == t.person_id) else {
                return Err(IndexError::Orphan {
                    person: t.person_id.clone(),
                    photo: t.photo.clone(),
                });
            };
            index.features.extend_from_slice(&t.feature);
            index.owner.push(p);
        }
        Ok(index)
    }

    /// Number of templates.
    pub fn len(&self) -> usize {
        self.owner.len()
    }

    /// Whether there are no templates.
    pub fn is_empty(&self) -> bool {
        self.owner.is_empty()
    }

    /// The enrolled people.
    pub fn people(&self) -> &[Enrolled] {
        &self.people
    }

    /// Template `t`'s feature.
    pub fn template(&self, t: usize) -> &[f32] {
        &self.features[t * self.dim..(t + 1) * self.dim]
    }

    /// The two best people by `score` (each at their best template), best first:
    /// `(person, template, score)`.
    fn best_two(&self, score: impl Fn(&[f32]) -> f32) -> Vec<(usize, usize, f32)> {
        let mut best: Vec<Option<(usize, f32)>> = vec![None; self.people.len()];
        for (t, row) in self.features.chunks_exact(self.dim.max(1)).enumerate() {
            let s = score(row);
            let slot = &mut best[self.owner[t]];
            if slot.is_none_or(|(_, b)| s > b) {
                *slot = Some((t, s));
            }
        }
        let mut top: Vec<(usize, usize, f32)> = Vec::with_capacity(3);
        for (p, b) in best.into_iter().enumerate() {
            let Some((t, s)) = b else { continue };
            if top.len() < 2 || s > top[top.len() - 1].2 {
                top.push((p, t, s));
                top.sort_by(|a, b| b.2.total_cmp(&a.2));
                top.truncate(2);
            }
        }
        top
    }
}

/// Which comparison a decision score comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Basis {
    /// The whole feature.
    Full,
    /// The filters an occlusion left intact, against its calibrated threshold.
    Masked,
}

/// The best candidate for a probe.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// Index of the person in [`Index::people`].
    pub person: usize,
    /// The template that matched best.
    pub template: usize,
    /// Full-feature cosine with that template.
    pub full_score: f32,
    /// Cosine on the intact filters, when something was occluded.
    pub masked_score: Option<f32>,
    /// The score the decision uses.
    pub score: f32,
    /// The threshold `score` is held against (the person's, or the calibrated masked one).
    pub threshold: f32,
    /// Which comparison decided.
    pub basis: Basis,
}

/// What the matcher found for one probe.
#[derive(Debug, Clone, PartialEq)]
pub struct MatchResult {
    /// The best person, if anyone is enrolled.
    pub best: Option<Candidate>,
    /// The decision score of the runner-up person, for margins.
    pub second_score: Option<f32>,
    /// Regions the occluder reached.
    pub occluded: RegionSet,
    /// Per region: support, disagreement or occlusion (empty without a candidate).
    pub regions: Vec<RegionExplanation>,
}

/// The matcher: the index, the model's regions and the thresholds.
#[derive(Debug, Clone)]
pub struct Matcher {
    index: Index,
    regions: RegionMap,
    rule: OcclusionRule,
    thresholds: Thresholds,
}

impl Matcher {
    /// A matcher over `index` for the model whose regions are `regions`.
    pub fn new(
        index: Index,
        regions: RegionMap,
        rule: OcclusionRule,
        thresholds: Thresholds,
    ) -> Self {
        Self {
            index,
            regions,
            rule,
            thresholds,
        }
    }

    /// The index searched.
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// The thresholds in use.
    pub fn thresholds(&self) -> &Thresholds {
        &self.thresholds
    }

    /// Matches a probe's unit `feature`, using its `maps` to find occluded regions.
    pub fn find(&self, feature: &[f32], maps: &[f32]) -> MatchResult {
        let occluded = self.regions.occluded(maps, &self.rule);
        let mask = self.regions.mask(occluded);
        let masked_threshold = if occluded.is_empty() {
            None
        } else {
            self.thresholds.masked_for(occluded)
        };
        let full_of = |row: &[f32]| dot(feature, row);
        let masked_of = |row: &[f32]| masked_cosine(feature, row, &mask);
        // Rank by the score that decides: the masked one only when it has its own threshold.
        let ranked = match masked_threshold {
            Some(_) => self.index.best_two(masked_of),
            None => self.index.best_two(full_of),
        };
        let second_score = ranked.get(1).map(|r| r.2);
        let best = ranked.first().map(|&(person, template, score)| {
            let row = self.index.template(template);
            let full_score = full_of(row);
            let masked_score = (!occluded.is_empty()).then(|| masked_of(row));
            let person_threshold = self.index.people[person]
                .threshold
                .unwrap_or(self.thresholds.full);
            let (threshold, basis) = match masked_threshold {
                // A stricter per-person threshold also tightens the masked one.
                Some(t) => (
                    t + (person_threshold - self.thresholds.full).max(0.0),
                    Basis::Masked,
                ),
                None => (person_threshold, Basis::Full),
            };
            Candidate {
                person,
                template,
                full_score,
                masked_score,
                score,
                threshold,
                basis,
            }
        });
        let regions = best
            .as_ref()
            .map(|c| {
                explain(
                    &self.regions,
                    feature,
                    self.index.template(c.template),
                    occluded,
                    c.threshold,
                )
            })
            .unwrap_or_default();
        MatchResult {
            best,
            second_score,
            occluded,
            regions,
        }
    }
}

/// Dot product in eight independent lanes, so the compiler can vectorise the 1:N search.
/// Of unit features, this is their cosine.
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            lanes[k] += x[k] * y[k];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// Cosine over the kept dimensions (both features unit length over all of them).
fn masked_cosine(a: &[f32], b: &[f32], mask: &FeatureMask) -> f32 {
    facegate_contract::cosine_masked(a, b, mask).unwrap_or(0.0)
}
