//! Commands from the bus: `<prefix>/<device>/request/<action>` -> `.../response/<action>`, the
//! caller's `transaction` echoed (Zigbee2MQTT style). Actions: `list`, `erase`, `reload`,
//! `enroll` ([`enroll`]: photos in the request), `feedback` ([`feedback`]: correct a recent
//! decision); enrollments also publish each photo's verdict on `.../enroll/progress`.
//!
//! Beside the pipeline: requests are checked on arrival ([`verify`]): a request without a valid
//! HMAC from the device's command key, too old, from the future, or replayed is refused and the
//! refusal is published; accepted ones wait in a bounded inbox until the main loop runs them
//! between frames ([`run`]), so a command never races a decision.
//!
//! Wire format (documented in the README):
//! `{"request": "<JSON text>", "hmac": "<hex HMAC-SHA256(key, topic + \"\\n\" + request)>"}`,
//! the inner request `{"transaction": "...", "issued_at": <unix seconds>, ...action fields}`.
//! Signing the exact text (not re-serialised JSON) means every language can produce it.

pub mod enroll;
pub mod feedback;
pub mod verify;

pub use crate::command_key::{CommandKey, CommandKeyError};
use crate::config::Config;
pub use crate::publish::request::{Command, Refusal};
use facegate_pipeline::enrollment::PersonEnrollment;
use facegate_pipeline::gallery::Gallery;
use facegate_pipeline::model::Models;
use facegate_pipeline::wiring::sync_config_alive;
use facegate_pipeline::wiring::{self, Pipeline};
use serde::Deserialize;
use serde_json::{Value, json};
pub use verify::{Gate, Verified};

/// What a verified request asks for.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "action", rename_all = "lowercase")]
pub enum Action {
    /// Everyone enrolled, with their photo verdicts.
    List,
    /// Remove every trace of a person.
    Erase {
        /// The person's id.
        person: String,
    },
    /// Re-read the config and enroll its people again.
    Reload,
    /// Enroll (or re-enroll) a person from photos sent in the request.
    Enroll {
        /// Stable id (same rules as in the config).
        person: String,
        /// Display name.
        name: String,
        /// The photos, each a base64-encoded JPEG or PNG file.
        photos: Vec<String>,
        /// Per-person threshold, stricter than the card's.
        #[serde(default)]
        threshold: Option<f32>,
        /// Weekly windows when they may come in (`mon-fri 07:00-19:00`); none: any time.
        #[serde(default)]
        schedule: Vec<String>,
    },
    /// Correct a recent decision: the face of `event` is (`is`) or is not (`is_not`) a person.
    Feedback {
        /// The event id (from `.../events`).
        event: String,
        /// "This is X": X's id.
        #[serde(default)]
        is: Option<String>,
        /// "Not this person": the id the event matched.
        #[serde(default)]
        is_not: Option<String>,
    },
}

/// One message on `.../enroll/progress` per photo of `enrolled`: what the technician watches.
pub fn progress_messages(
    enrolled: &[PersonEnrollment],
    source: &str,
    transaction: Option<&str>,
) -> Vec<Value> {
    let mut out = Vec::new();
    for p in enrolled {
        for (i, photo) in p.photos.iter().enumerate() {
            out.push(json!({
                "transaction": transaction,
                "source": source,
                "person": p.id,
                "photo": photo.photo,
                "index": i + 1,
                "of": p.photos.len(),
                "verdict": photo.verdict,
                "detail": photo.detail,
                "templates": p.templates,
                "kept_previous": p.kept_previous,
            }));
        }
    }
    out
}

/// Who hears about a command while it runs: each enrollment photo's verdict, and that the
/// device is still alive between photos (the service watchdog).
pub trait Progress {
    /// One enrollment verdict (a message for `.../enroll/progress`).
    fn verdict(&mut self, message: &Value);
    /// Called between photos of a long enrollment.
    fn alive(&mut self) {}
}

impl<F: FnMut(&Value)> Progress for F {
    fn verdict(&mut self, message: &Value) {
        self(message);
    }
}

/// Runs one command against the device; returns the response payload. Enrollments also
/// report each photo's verdict through `progress` as they finish, and tell it they are alive
/// after each photo.
pub fn run(
    command: &Command,
    models: &Models,
    cfg: &Config,
    gallery: &mut Gallery,
    pipeline: &mut Pipeline,
    progress: &mut dyn Progress,
) -> Value {
    let mut fields = command.request.clone();
    if let Some(obj) = fields.as_object_mut() {
        obj.insert("action".into(), Value::String(command.action.clone()));
    }
    let action: Action = match serde_json::from_value(fields) {
        Ok(a) => a,
        Err(e) => return failure(command, &format!("bad request: {e}")),
    };
    let result = match action {
        Action::List => gallery
            .summaries(&models.card.model_id)
            .map(|people| json!({ "people": people }))
            .map_err(|e| e.to_string()),
        Action::Erase { person } => match gallery.remove_person(&person) {
            Ok(true) => Ok(json!({ "erased": person })),
            Ok(false) => Err(format!("no person {person:?} in the gallery")),
            Err(e) => Err(e.to_string()),
        },
        Action::Reload => sync_config_alive(
            models,
            &cfg.pipeline(),
            gallery,
            &facegate_pipeline::event::now(),
            &mut || progress.alive(),
        )
        .map(|enrolled| {
            let tx = Some(command.transaction.as_str());
            progress_messages(&enrolled, "config", tx)
                .iter()
                .for_each(|m| progress.verdict(m));
            json!({ "enrolled": enrolled })
        })
        .map_err(|e| e.to_string()),
        Action::Enroll {
            person,
            name,
            photos,
            threshold,
            schedule,
        } => {
            let request = enroll::Request {
                person,
                name,
                photos,
                threshold,
                schedule,
            };
            enroll::run(models, cfg, gallery, &request, &mut || progress.alive()).map(|enrolled| {
                let tx = Some(command.transaction.as_str());
                progress_messages(std::slice::from_ref(&enrolled), "command", tx)
                    .iter()
                    .for_each(|m| progress.verdict(m));
                json!({ "enrolled": enrolled })
            })
        }
        Action::Feedback { event, is, is_not } => {
            feedback::run(models, gallery, pipeline, &event, is, is_not)
        }
    };
    let result = result.and_then(|body| {
        // The gallery changed under the matcher: rebuild it before the next frame.
        let m = wiring::matcher(models, gallery, &cfg.pipeline()).map_err(|e| e.to_string())?;
        pipeline.set_matcher(m);
        Ok(body)
    });
    match result {
        Ok(mut body) => {
            if let Some(obj) = body.as_object_mut() {
                obj.insert("transaction".into(), command.transaction.clone().into());
                obj.insert("ok".into(), true.into());
            }
            body
        }
        Err(e) => failure(command, &e),
    }
}

fn failure(command: &Command, error: &str) -> Value {
    json!({ "transaction": command.transaction, "ok": false, "error": error })
}
