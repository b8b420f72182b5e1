//! Requests arriving on `<prefix>/<device>/request/<action>`, as the MQTT link sees them: which
//! ones are admitted is decided by an [`Admission`] the device hands the link (the command gate
//! in `command/verify.rs`: signature, age, replay), and what the admitted ones do is up to
//! `command/`. The link itself knows neither keys nor actions, so it depends on no command code.

use serde_json::Value;

/// A request that passed admission, waiting to run between frames.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    /// The caller's transaction id, echoed in the response.
    pub transaction: String,
    /// The action (the topic's last level).
    pub action: String,
    /// The request's fields.
    pub request: Value,
}

/// Why a request was refused (published on the response topic).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The caller's transaction id, when it could be read.
    pub transaction: Option<String>,
    /// Why.
    pub reason: String,
}

/// Decides, on the link's own thread, which requests reach the device.
pub trait Admission: Send {
    /// Admits the request on `topic` with `payload` at `now` (unix seconds), or says why not.
    fn check(&mut self, topic: &str, payload: &[u8], now: f64) -> Result<Command, Refusal>;
}
