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

pub mod client;
pub mod enroll;
pub mod feedback;
pub mod reload;
pub mod verify;

pub use crate::command_key::{CommandKey, CommandKeyError};
use crate::config::Config;
pub use crate::publish::request::{Command, Refusal};
use facegate_pipeline::enrollment::PersonEnrollment;
use facegate_pipeline::gallery::Gallery;
use facegate_pipeline::model::Models;
use facegate_pipeline::wiring::sync_config_alive;
use facegate_pipeline::wiring::{self, Pipeline};
use reload::{Plan, ReloadError};
use serde::Deserialize;
use serde_json::{Value, json};
use std::path::Path;
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
    /// Re-read and check the config file; take it, or refuse it and keep the running one.
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

/// What a command runs against: the device's models, config, gallery and pipeline.
pub struct Context<'a, 'm, 'p> {
    /// The loaded models.
    pub models: &'m Models,
    /// The config in force; a reload taken in place replaces it.
    pub cfg: &'a mut Config,
    /// The file it was read from (what `reload` reads again); `None`: a config made in memory.
    pub config_file: Option<&'a Path>,
    /// The gallery.
    pub gallery: &'a mut Gallery,
    /// The running pipeline.
    pub pipeline: &'a mut Pipeline<'p>,
}

/// What a reload did.
#[derive(Debug)]
pub enum Reloaded {
    /// Taken in place; the config's people were enrolled again (these verdicts).
    InPlace(Vec<PersonEnrollment>),
    /// The device must be opened again with this config (the caller does it after answering).
    Restart {
        /// The new config.
        cfg: Box<Config>,
        /// The sections that need it.
        sections: Vec<crate::config::Section>,
    },
}

/// Why a reload failed: refused (the running config kept), or the gallery failed while
/// enrolling the new config's people.
#[derive(Debug, thiserror::Error)]
pub enum ReloadFailure {
    /// The new file was refused.
    #[error(transparent)]
    Refused(#[from] ReloadError),
    /// Enrolling its people failed.
    #[error("enrolling the reloaded config's people: {0}")]
    Gallery(#[from] facegate_pipeline::gallery::GalleryError),
    /// The matcher over the gallery could not be built.
    #[error("rebuilding the matcher: {0}")]
    Pipeline(#[from] facegate_pipeline::PipelineError),
}

/// Re-reads and checks the config file; takes it in place when it can (people enrolled again,
/// pipeline settings replaced, open tracks kept), or says the device must be opened again.
/// A refused file changes nothing.
pub fn reload(ctx: &mut Context, alive: &mut dyn FnMut()) -> Result<Reloaded, ReloadFailure> {
    let path = ctx.config_file.ok_or(ReloadError::NoFile)?;
    match reload::plan(path, ctx.cfg, &ctx.models.card)? {
        Plan::Restart { cfg, sections } => Ok(Reloaded::Restart { cfg, sections }),
        Plan::InPlace(next) => {
            let settings = next.pipeline();
            let now = facegate_pipeline::event::now();
            let enrolled = sync_config_alive(ctx.models, &settings, ctx.gallery, &now, alive)?;
            let matcher = wiring::matcher(ctx.models, ctx.gallery, &settings)?;
            ctx.pipeline.reconfigure(settings, matcher);
            *ctx.cfg = *next;
            Ok(Reloaded::InPlace(enrolled))
        }
    }
}

/// A command's answer, and whether the device must be opened again afterwards.
#[derive(Debug)]
pub struct Outcome {
    /// The response payload.
    pub response: Value,
    /// A reload that needs the device opened again with this config.
    pub restart: Option<Box<Config>>,
}

/// Runs one command against the device; returns the response payload. Enrollments also
/// report each photo's verdict through `progress` as they finish, and tell it they are alive
/// after each photo.
pub fn run(command: &Command, ctx: &mut Context, progress: &mut dyn Progress) -> Outcome {
    let mut fields = command.request.clone();
    if let Some(obj) = fields.as_object_mut() {
        obj.insert("action".into(), Value::String(command.action.clone()));
    }
    let answer = |response| Outcome {
        response,
        restart: None,
    };
    let action: Action = match serde_json::from_value(fields) {
        Ok(a) => a,
        Err(e) => return answer(failure(command, &format!("bad request: {e}"))),
    };
    let models = ctx.models;
    let result = match action {
        Action::List => ctx
            .gallery
            .summaries(&models.card.model_id)
            .map(|people| json!({ "people": people }))
            .map_err(|e| e.to_string()),
        Action::Erase { person } => match ctx.gallery.remove_person(&person) {
            Ok(true) => Ok(json!({ "erased": person })),
            Ok(false) => Err(format!("no person {person:?} in the gallery")),
            Err(e) => Err(e.to_string()),
        },
        Action::Reload => match reload(ctx, &mut || progress.alive()) {
            Ok(Reloaded::InPlace(enrolled)) => {
                let tx = Some(command.transaction.as_str());
                progress_messages(&enrolled, "config", tx)
                    .iter()
                    .for_each(|m| progress.verdict(m));
                // The matcher was rebuilt for the new settings already.
                return answer(json!({
                    "transaction": command.transaction,
                    "ok": true,
                    "enrolled": enrolled,
                    "restart": [],
                }));
            }
            Ok(Reloaded::Restart { cfg, sections }) => {
                return Outcome {
                    response: json!({
                        "transaction": command.transaction,
                        "ok": true,
                        "restart": sections,
                    }),
                    restart: Some(cfg),
                };
            }
            Err(ReloadFailure::Refused(e)) => {
                return answer(json!({
                    "transaction": command.transaction,
                    "ok": false,
                    "error": format!("config refused, the running one is kept: {e}"),
                    "problems": e.problems().iter().map(|p| json!({
                        "line": p.line,
                        "field": p.field,
                        "message": p.message,
                    })).collect::<Vec<_>>(),
                }));
            }
            Err(e) => Err(e.to_string()),
        },
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
            enroll::run(models, ctx.cfg, ctx.gallery, &request, &mut || {
                progress.alive()
            })
            .map(|enrolled| {
                let tx = Some(command.transaction.as_str());
                progress_messages(std::slice::from_ref(&enrolled), "command", tx)
                    .iter()
                    .for_each(|m| progress.verdict(m));
                json!({ "enrolled": enrolled })
            })
        }
        Action::Feedback { event, is, is_not } => {
            feedback::run(models, ctx.gallery, ctx.pipeline, &event, is, is_not)
        }
    };
    let result = result.and_then(|body| {
        // The gallery changed under the matcher: rebuild it before the next frame.
        let settings = ctx.cfg.pipeline();
        let m = wiring::matcher(models, ctx.gallery, &settings).map_err(|e| e.to_string())?;
        ctx.pipeline.reconfigure(settings, m);
        Ok(body)
    });
    answer(match result {
        Ok(mut body) => {
            if let Some(obj) = body.as_object_mut() {
                obj.insert("transaction".into(), command.transaction.clone().into());
                obj.insert("ok".into(), true.into());
            }
            body
        }
        Err(e) => failure(command, &e),
    })
}

fn failure(command: &Command, error: &str) -> Value {
    json!({ "transaction": command.transaction, "ok": false, "error": error })
}
