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
use serde::Deserialize;

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

/// Templates scored together: a block holds [`LANES`] templates dimension by dimension, so a
/// 1:N search is a stream of independent multiply-adds the compiler vectorises, with no
/// per-template horizontal sum.
pub const LANES: usize = 8;

/// Every template of the model in use, ready to search.
#[derive(Debug, Clone, Default)]
pub struct Index {
    dim: usize,
    /// Block `b`, dimension `d`, lane `l` at `(b * dim + d) * LANES + l`: template
    /// `b * LANES + l`; lanes past the last template are zero.
    blocks: Vec<f32>,
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
            blocks: vec![0.0; templates.len().div_ceil(LANES) * dim * LANES],
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
            let (block, lane) = (index.owner.len() / LANES, index.owner.len() % LANES);
            for (d, v) in t.feature.iter().enumerate() {
                index.blocks[(block * dim + d) * LANES + lane] = *v;
            }
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
    pub fn template(&self, t: usize) -> Vec<f32> {
        let (block, lane) = (t / LANES, t % LANES);
        (0..self.dim)
            .map(|d| self.blocks[(block * self.dim + d) * LANES + lane])
            .collect()
    }

    /// Scores of the [`LANES`] templates of block `block` against `query`: their dot products,
    /// or with `keep`, their cosines over the kept dimensions (0 where nothing is left).
    fn block_scores(
        &self,
        block: usize,
        query: &[f32],
        keep: Option<&FeatureMask>,
    ) -> [f32; LANES] {
        let rows = &self.blocks[block * self.dim * LANES..(block + 1) * self.dim * LANES];
        let mut dot = [0.0f32; LANES];
        match keep {
            None => {
                for (q, row) in query.iter().zip(rows.chunks_exact(LANES)) {
                    for l in 0..LANES {
                        dot[l] += q * row[l];
                    }
                }
                dot
            }
            Some(mask) => {
                let mut norm = [0.0f32; LANES];
                let mut q_norm = 0.0f32;
                for (d, (q, row)) in query.iter().zip(rows.chunks_exact(LANES)).enumerate() {
                    if !mask.keeps(d) {
                        continue;
                    }
                    q_norm += q * q;
                    for l in 0..LANES {
                        dot[l] += q * row[l];
                        norm[l] += row[l] * row[l];
                    }
                }
                std::array::from_fn(|l| {
                    let n = (q_norm * norm[l]).sqrt();
                    if n > 0.0 {
                        (dot[l] / n).clamp(-1.0, 1.0)
                    } else {
                        0.0
                    }
                })
            }
        }
    }

    /// The two best people by full or masked (`keep`) score, each at their best template,
    /// best first: `(person, template, score)`.
    fn best_two(&self, query: &[f32], keep: Option<&FeatureMask>) -> Vec<(usize, usize, f32)> {
        let mut best: Vec<Option<(usize, f32)>> = vec![None; self.people.len()];
        for block in 0..self.owner.len().div_ceil(LANES) {
            let scores = self.block_scores(block, query, keep);
            let first = block * LANES;
            for (l, &s) in scores.iter().enumerate() {
                let t = first + l;
                let Some(&owner) = self.owner.get(t) else {
                    break;
                };
                let slot = &mut best[owner];
                if slot.is_none_or(|(_, b)| s > b) {
                    *slot = Some((t, s));
                }
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
        // Rank by the score that decides: the masked one only when it has its own threshold.
        let ranked = self
            .index
            .best_two(feature, masked_threshold.map(|_| &mask));
        let second_score = ranked.get(1).map(|r| r.2);
        let best = ranked.first().map(|&(person, template, _)| {
            // The best template's scores again, exactly as the contract defines them.
            let row = self.index.template(template);
            let full_score = dot(feature, &row);
            let masked_score = (!occluded.is_empty()).then(|| masked_cosine(feature, &row, &mask));
            let score = match masked_threshold {
                Some(_) => masked_score.unwrap_or(full_score),
                None => full_score,
            };
            // A per-person threshold may only be stricter than the card's operating point
            // (config and commands refuse a looser one; this holds for galleries from before).
            let person_threshold = self.index.people[person]
                .threshold
                .map_or(self.thresholds.full, |t| t.max(self.thresholds.full));
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
                    &self.index.template(c.template),
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

/// Dot product in eight independent lanes (vectorised). Of unit features, their cosine.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
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

/// Matching settings (`[matching]`).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MatchRules {
    /// Operating point: the false accept rate whose calibrated threshold decides.
    pub target_far: f64,
    /// Faces analysed per frame, most confident first.
    pub max_faces: usize,
    /// How occluded regions are found.
    pub occlusion: facegate_contract::occlusion::OcclusionRule,
}

impl Default for MatchRules {
    fn default() -> Self {
        Self {
            target_far: 1e-3,
            max_faces: 4,
            occlusion: Default::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// `n` unit templates of `dim` values for `people` people (round robin), from a seed.
    fn templates(n: usize, dim: usize, people: usize) -> Vec<Template> {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        (0..n)
            .map(|i| {
                let mut feature: Vec<f32> = (0..dim)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        (state >> 11) as f32 / (1u64 << 53) as f32 - 0.5
                    })
                    .collect();
                facegate_contract::similarity::normalize(&mut feature);
                Template {
                    person_id: format!("p{}", i % people),
                    photo: format!("{i}.jpg"),
                    feature,
                }
            })
            .collect()
    }

    #[test]
    fn the_blocked_search_finds_what_a_plain_loop_finds() {
        // 45 templates: five full blocks and a partial one (padding must never win).
        let (dim, people) = (20, 7);
        let all = templates(46, dim, people);
        let (probe, stored) = (&all[45].feature, &all[..45]);
        let enrolled = (0..people)
            .map(|p| Enrolled {
                id: format!("p{p}"),
                ..Enrolled::default()
            })
            .collect();
        let index = Index::new(dim, enrolled, stored).unwrap();
        assert_eq!(index.len(), 45);
        for (t, template) in stored.iter().enumerate() {
            assert_eq!(index.template(t), template.feature);
        }
        let mask = FeatureMask::without(dim, [1, 4, 5, 11, 19]);
        for keep in [None, Some(&mask)] {
            let exact = |row: &[f32]| match keep {
                None => dot(probe, row),
                Some(m) => masked_cosine(probe, row, m),
            };
            // Per person, the best template by a plain loop over the rows.
            let mut want: Vec<(usize, usize, f32)> = (0..people)
                .map(|p| {
                    (0..45)
                        .filter(|t| t % people == p)
                        .map(|t| (p, t, exact(&stored[t].feature)))
                        .max_by(|a, b| a.2.total_cmp(&b.2))
                        .unwrap()
                })
                .collect();
            want.sort_by(|a, b| b.2.total_cmp(&a.2));
            let got = index.best_two(probe, keep);
            assert_eq!(got.len(), 2);
            for (g, w) in got.iter().zip(&want) {
                assert_eq!((g.0, g.1), (w.0, w.1), "keep={keep:?}");
                assert!((g.2 - w.2).abs() < 1e-5, "{} vs {}", g.2, w.2);
            }
        }
    }
}
