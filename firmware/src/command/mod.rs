//! Commands from the bus: `<prefix>/<device>/request/<action>` -> `.../response/<action>`, the
//! caller's `transaction` echoed (Zigbee2MQTT style).
//!
//! Beside the pipeline: requests are checked on arrival ([`verify`]): a request without a valid
//! HMAC from the device's command key, too old, from the future, or replayed is refused and the
//! refusal is published; accepted ones wait in a bounded inbox until the main loop runs them
//! between frames ([`serve`]), so a command never races a decision.
//!
//! Wire format (documented in the README):
//! `{"request": "<JSON text>", "hmac": "<hex HMAC-SHA256(key, topic + \"\\n\" + request)>"}`,
//! the inner request `{"transaction": "...", "issued_at": <unix seconds>, ...action fields}`.
//! Signing the exact text (not re-serialised JSON) means every language can produce it.

pub mod verify;

use crate::config::Config;
use crate::enroll::sync_config;
use crate::gallery::Gallery;
use crate::model::Models;
use crate::pipeline::{self, Pipeline};
use serde::Deserialize;
use serde_json::{Value, json};
pub use verify::{CommandKey, Gate, Refusal, Verified};

/// What a verified request asks for.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
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
}

/// A request that passed the gate, waiting to run.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    /// The caller's transaction id, echoed in the response.
    pub transaction: String,
    /// The action (the topic's last level).
    pub action: String,
    /// The request's fields.
    pub request: Value,
}

/// Runs one command against the device; returns the response payload.
pub fn run(
    command: &Command,
    models: &Models,
    cfg: &Config,
    gallery: &mut Gallery,
    pipeline: &mut Pipeline,
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
        Action::Reload => sync_config(models, cfg, gallery, &crate::device::now())
            .map(|enrolled| json!({ "enrolled": enrolled }))
            .map_err(|e| e.to_string()),
    };
    let result = result.and_then(|body| {
        // The gallery changed under the matcher: rebuild it before the next frame.
        let m = pipeline::matcher(models, gallery, cfg).map_err(|e| e.to_string())?;
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
