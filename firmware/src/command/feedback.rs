//! The `feedback` command: someone who saw a decision corrects it, and later decisions change.
//!
//! - "This is X" (`is`): the event's face becomes one more template of X, so X is recognised
//!   in that look from now on. Refused when the face looks like someone else enrolled (at the
//!   card's threshold): feedback must not merge two people.
//! - "Not this person" (`is_not`): the event matched X, wrongly. X's threshold is raised just
//!   above that event's score, so that face (and anything as far from X) no longer passes.
//!   Feedback can only make X harder to match, never easier.
//!
//! The face of an event is known only for recent events (the last 64, up to 10 minutes);
//! feedback is kept in the gallery with the person, survives re-enrollment, and is erased with
//! them.

use facegate_pipeline::gallery::Gallery;
use facegate_pipeline::matching::dot;
use facegate_pipeline::model::Models;
use facegate_pipeline::wiring::Pipeline;
use serde_json::{Value, json};

/// How far above the wrong match's score the person's threshold goes.
pub const MARGIN: f32 = 0.01;

/// Applies one piece of feedback about `event`.
pub fn run(
    models: &Models,
    gallery: &mut Gallery,
    pipeline: &Pipeline<'_>,
    event: &str,
    is: Option<String>,
    is_not: Option<String>,
) -> Result<Value, String> {
    let recent = pipeline.recent(event).ok_or_else(|| {
        format!("event {event:?}: no face of it is known (too old, from another run, or faceless)")
    })?;
    let model_id = &models.card.model_id;
    let now = facegate_pipeline::event::now();
    let db = |e: facegate_pipeline::gallery::GalleryError| e.to_string();
    match (is, is_not) {
        (Some(person), None) => {
            if gallery.person(&person).map_err(db)?.is_none() {
                return Err(format!("no person {person:?} in the gallery"));
            }
            let full = pipeline.matcher().thresholds().full;
            let lookalike = gallery
                .templates(model_id)
                .map_err(db)?
                .into_iter()
                .filter(|t| t.person_id != person)
                .map(|t| (dot(&recent.feature, &t.feature), t.person_id))
                .filter(|(s, _)| *s >= full)
                .max_by(|a, b| a.0.total_cmp(&b.0));
            if let Some((score, other)) = lookalike {
                return Err(format!(
                    "the face of {event} looks like {other} (similarity {score:.3}): not taught as {person}"
                ));
            }
            gallery
                .add_feedback_is(&person, event, model_id, &recent.feature, &now)
                .map_err(db)?;
            Ok(json!({ "feedback": "is", "event": event, "person": person }))
        }
        (None, Some(person)) => {
            let score = match &recent.candidate {
                Some((id, score)) if *id == person => *score,
                _ => return Err(format!("event {event} was not matched to {person:?}")),
            };
            // Above 1 when the wrong match was perfect: then nothing matches them any more,
            // which is right when their own enrollment is the mistake (re-enroll them).
            let floor = score + MARGIN;
            gallery
                .add_feedback_is_not(&person, event, model_id, floor, &now)
                .map_err(db)?;
            let mut body = json!({ "feedback": "is_not", "event": event, "person": person, "threshold": floor });
            if floor > 1.0 {
                body["warning"] = json!(format!(
                    "{person} can no longer be matched: the wrong match was as close as their own \
                     enrollment; erase and enroll them again"
                ));
            }
            Ok(body)
        }
        _ => Err("give exactly one of `is` (this is X) or `is_not` (not this person)".into()),
    }
}
