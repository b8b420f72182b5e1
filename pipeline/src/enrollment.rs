//! Enrollment: the people a technician lists in the config (or sends by command) become
//! templates in the gallery, with a verdict on every photo so the technician sees what happened.
//!
//! Pipeline position: beside the pipeline, writing the gallery that *match* reads. A photo is
//! accepted only if it shows exactly one clear face (a much smaller face in the background is
//! ignored), of good quality, unoccluded, and not already someone else's face. A person whose
//! photos are all rejected keeps their previous templates: a bad re-enrollment must not lock a
//! resident out.

use crate::analyse::{Limits, analyse};
use crate::gallery::{Gallery, GalleryError, NewTemplate, PersonRecord, PhotoVerdict};
use crate::matching::dot;
use crate::model::Models;
use crate::source::files::read_image;
use facegate_contract::occlusion::OcclusionRule;
use serde::Serialize;

/// What became of one person's enrollment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PersonEnrollment {
    /// The person's id.
    pub id: String,
    /// The person's name.
    pub name: String,
    /// One verdict per photo, in config order.
    pub photos: Vec<PhotoVerdict>,
    /// Templates stored now.
    pub templates: usize,
    /// True when no photo was accepted and an earlier enrollment was kept.
    pub kept_previous: bool,
}

/// A photo of a person, analysed, before duplicate checks.
struct Candidate {
    photo: String,
    verdict: Result<Vec<f32>, (String, String)>,
}

fn reject(verdict: &str, detail: impl Into<String>) -> Result<Vec<f32>, (String, String)> {
    Err((verdict.to_owned(), detail.into()))
}

/// Analyses one photo into an accepted feature or a rejection.
fn assess_photo(
    models: &Models,
    limits: Limits,
    occlusion: &OcclusionRule,
    path: &std::path::Path,
) -> Result<Vec<f32>, (String, String)> {
    let image = match read_image(path) {
        Ok(i) => i,
        Err(e) => return reject("unreadable", e.to_string()),
    };
    let frame = match analyse(models, limits, None, &image) {
        Ok(f) => f,
        Err(e) => return reject("unreadable", e.to_string()),
    };
    let area = |f: &crate::analyse::FaceAnalysis| {
        let b = &f.face.bbox;
        (b.x2 - b.x1) * (b.y2 - b.y1)
    };
    let mut faces = frame.faces;
    faces.sort_by(|a, b| area(b).total_cmp(&area(a)));
    let Some(face) = faces.first() else {
        return reject("no_face", "no face found");
    };
    if let Some(second) = faces.get(1)
        && area(second) * 2.0 >= area(face)
    {
        return reject(
            "several_faces",
            format!("{} faces of similar size: whose is it?", faces.len()),
        );
    }
    if !face.quality.is_good() {
        let why: Vec<String> = face
            .quality
            .problems
            .iter()
            .map(ToString::to_string)
            .collect();
        return reject("low_quality", why.join(", "));
    }
    let occluded = models.regions.occluded(&face.embedding.maps, occlusion);
    if !occluded.is_empty() {
        return reject(
            "occluded",
            format!(
                "covered: {}",
                occluded
                    .iter()
                    .map(|r| r.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
    Ok(face.embedding.feature.clone())
}

/// Where enrolled people come from, and how their photos are named in verdicts (the name is
/// also bound into each sealed template).
#[derive(Clone, Copy)]
pub enum Origin<'a> {
    /// The config: photos named by their path.
    Config,
    /// An MQTT command: photos named by `label` (their place in the request).
    Command {
        /// The photo's name, from its scratch path.
        label: &'a dyn Fn(&std::path::Path) -> String,
    },
}

impl Origin<'_> {
    fn name(&self) -> &'static str {
        match self {
            Self::Config => "config",
            Self::Command { .. } => "command",
        }
    }

    fn label(&self, path: &std::path::Path) -> String {
        match self {
            Self::Config => path.display().to_string(),
            Self::Command { label } => label(path),
        }
    }
}

/// Enrolls `people` into `gallery` from `origin`, checking each new template against
/// everyone else's (existing and new) at `duplicate_threshold`. `alive` is called after each
/// photo: a long enrollment keeps the service's watchdog fed.
#[allow(clippy::too_many_arguments)]
pub fn enroll(
    models: &Models,
    limits: Limits,
    occlusion: &OcclusionRule,
    gallery: &mut Gallery,
    people: &[Person],
    origin: Origin<'_>,
    duplicate_threshold: f32,
    now: &str,
    alive: &mut dyn FnMut(),
) -> Result<Vec<PersonEnrollment>, GalleryError> {
    let model_id = models.card.model_id.clone();
    let analysed: Vec<Vec<Candidate>> = people
        .iter()
        .map(|p| {
            p.photos
                .iter()
                .map(|path| {
                    let verdict = assess_photo(models, limits, occlusion, path);
                    alive();
                    Candidate {
                        photo: origin.label(path),
                        verdict,
                    }
                })
                .collect()
        })
        .collect();
    let existing = gallery.templates(&model_id)?;
    let mut out = Vec::new();
    for (k, (person, photos)) in people.iter().zip(&analysed).enumerate() {
        let mut templates = Vec::new();
        let mut verdicts = Vec::new();
        for c in photos {
            let verdict = match &c.verdict {
                Ok(feature) => {
                    // Someone else's face? Compare with every other person, stored or new.
                    let stored = existing
                        .iter()
                        .filter(|t| t.person_id != person.id)
                        .map(|t| (t.person_id.as_str(), dot(feature, &t.feature)));
                    let fresh = people
                        .iter()
                        .zip(&analysed)
                        .enumerate()
                        .filter(|(o, _)| *o != k)
                        .flat_map(|(_, (other, cands))| {
                            cands.iter().filter_map(move |oc| {
                                oc.verdict
                                    .as_ref()
                                    .ok()
                                    .map(|f| (other.id.as_str(), dot(feature, f)))
                            })
                        });
                    let dup = stored
                        .chain(fresh)
                        .filter(|(_, s)| *s >= duplicate_threshold)
                        .max_by(|a, b| a.1.total_cmp(&b.1));
                    match dup {
                        Some((other, s)) => PhotoVerdict {
                            photo: c.photo.clone(),
                            verdict: "duplicate".into(),
                            detail: format!("looks like {other} (similarity {s:.3})"),
                        },
                        None => {
                            templates.push(NewTemplate {
                                photo: c.photo.clone(),
                                feature: feature.clone(),
                            });
                            PhotoVerdict {
                                photo: c.photo.clone(),
                                verdict: "accepted".into(),
                                detail: String::new(),
                            }
                        }
                    }
                }
                Err((verdict, detail)) => PhotoVerdict {
                    photo: c.photo.clone(),
                    verdict: verdict.clone(),
                    detail: detail.clone(),
                },
            };
            verdicts.push(verdict);
        }
        let previous = gallery.person(&person.id)?;
        let kept_previous = templates.is_empty() && previous.is_some();
        if kept_previous {
            gallery.record_verdicts(&person.id, &verdicts)?;
        } else if templates.is_empty() {
            // Nobody with no template is stored: the verdicts say why, nothing is half-made.
            tracing::warn!("{}: no photo accepted, not enrolled", person.id);
        } else {
            let record = PersonRecord {
                id: person.id.clone(),
                name: person.name.clone(),
                threshold: person.threshold,
                origin: origin.name().to_owned(),
                enrolled_at: now.to_owned(),
                schedule: person.schedule.texts(),
            };
            gallery.replace_person(&record, &model_id, &templates, &verdicts)?;
        }
        out.push(PersonEnrollment {
            id: person.id.clone(),
            name: person.name.clone(),
            photos: verdicts,
            templates: templates.len(),
            kept_previous,
        });
    }
    Ok(out)
}

/// A person to enroll.
#[derive(Debug, Clone, PartialEq)]
pub struct Person {
    /// Stable id (same rules as the device id).
    pub id: String,
    /// Display name, published unless names are withheld.
    pub name: String,
    /// Enrollment photos.
    pub photos: Vec<std::path::PathBuf>,
    /// Per-person match threshold overriding the model card's, if set.
    pub threshold: Option<f32>,
    /// When they may be let in; empty: any time.
    pub schedule: crate::schedule::Schedule,
}
