//! The retained device state on `<prefix>/<device>/state`: what a dashboard shows about the
//! door (which model, how many people, which operating point). Nothing that opens a door.

use serde::{Deserialize, Serialize};

/// The state payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceState {
    /// facegate version.
    pub version: String,
    /// `running` (more modes come with enrollment sessions).
    pub mode: String,
    /// The model in use.
    pub model_id: String,
    /// Its file's SHA-256.
    pub model_sha256: String,
    /// Enrolled people.
    pub people: usize,
    /// Templates for the model in use.
    pub templates: usize,
    /// The operating point: false accept rate aimed at.
    pub target_far: f64,
    /// The full-comparison threshold in use there.
    pub threshold: f32,
    /// When the device started (RFC 3339).
    pub started: String,
    /// The Ed25519 public key (hex) that signs `.../access`, when access decisions are on.
    /// Door controllers pin it once (from here or the `.pub` file) and verify every decision.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_key: Option<String>,
    /// Events since start that will never reach the broker: dropped oldest-first from a full
    /// queue (`queue_limit`) or a full disk. Updated as it changes.
    #[serde(default)]
    pub events_dropped: u64,
}
