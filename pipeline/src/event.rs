//! The event payload published on `<prefix>/<device>/events`: its JSON schema is documented in
//! the README ("Events") and checked by the end-to-end tests. Field names are part of the
//! contract with every consumer: add fields, never rename or remove them without bumping
//! [`EVENT_SCHEMA`].
//!
//! Never in an event: an embedding or a template. Names are left out when the config withholds
//! them.

use crate::decide::{Access, Band, Lifecycle};
use crate::matching::{Basis, RegionExplanation};
use crate::quality::Quality;
use facegate_contract::occlusion::Region;
use serde::{Deserialize, Serialize};

/// Version of the event schema; bumped on any incompatible change.
pub const EVENT_SCHEMA: u32 = 1;

/// What an event says about a face.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Matched an enrolled person above their threshold.
    Match,
    /// Close below the threshold: never acted on.
    Uncertain,
    /// Nobody enrolled is this face.
    Unknown,
    /// No face in the picture (`explain`, enrollment).
    NoFace,
    /// A face, but too poor to decide on.
    LowQuality,
    /// A presentation attack (a photo or a screen held up): the liveness check refused it.
    Spoof,
}

impl From<Band> for Outcome {
    fn from(b: Band) -> Self {
        match b {
            Band::Match => Self::Match,
            Band::Uncertain => Self::Uncertain,
            Band::Unknown => Self::Unknown,
            Band::LowQuality => Self::LowQuality,
            Band::Spoof => Self::Spoof,
        }
    }
}

/// The person an event is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonRef {
    /// Stable id.
    pub id: String,
    /// Display name, unless withheld by config.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Scores and the thresholds they were held against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    /// The score that decided.
    pub score: f32,
    /// Which comparison it came from.
    pub basis: Basis,
    /// The threshold it was held against.
    pub threshold: f32,
    /// Below the threshold by at most this much is `uncertain`.
    pub uncertain_margin: f32,
    /// The false accept rate the threshold was calibrated at.
    pub target_far: f64,
    /// Cosine over the whole feature.
    pub full: f32,
    /// Cosine over the filters the occlusion left intact, when something was occluded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub masked: Option<f32>,
    /// The runner-up person's score.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub second: Option<f32>,
}

/// The face an event is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaceInfo {
    /// `[x1, y1, x2, y2]` in frame pixels.
    pub bbox: [f32; 4],
    /// Detector confidence.
    pub detector_score: f32,
    /// Quality measures and problems.
    pub quality: Quality,
    /// The liveness check, when it ran on this face.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness: Option<LivenessInfo>,
}

/// What the liveness check said about a face.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LivenessInfo {
    /// Probability of a live face, 0..1.
    pub score: f32,
    /// The score a face must reach.
    pub threshold: f32,
}

/// Milliseconds spent per stage on the frame behind the event.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Latency {
    /// Face detection (whole frame).
    pub detect: f32,
    /// Alignment and quality of this face.
    pub align: f32,
    /// Embedding of this face.
    pub embed: f32,
    /// Gallery search and explanation.
    #[serde(rename = "match")]
    pub matching: f32,
    /// The liveness check of this face.
    #[serde(default)]
    pub liveness: f32,
    /// From frame capture to the event being built.
    pub total: f32,
}

/// One event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// [`EVENT_SCHEMA`].
    pub schema: u32,
    /// Event id: the same for every lifecycle step of one face track.
    pub id: String,
    /// Increases by one with every event this device publishes (survives restarts through the
    /// queue); consumers drop anything not newer than what they have seen.
    pub seq: u64,
    /// When it was built, RFC 3339 UTC.
    pub time: String,
    /// Lifecycle step.
    #[serde(rename = "type")]
    pub lifecycle: Lifecycle,
    /// The device id.
    pub device: String,
    /// The frame it comes from: sequence number and origin (file or camera).
    pub frame: FrameRef,
    /// The outcome.
    pub result: Outcome,
    /// `result` or `person` differs from this track's previous event (always on `new`, never on
    /// `end`; false on an `update` sent only to carry a door decision). Consumers that react
    /// once per outcome of a visit (Home Assistant's Face event) fire on this.
    #[serde(default)]
    pub result_changed: bool,
    /// Who, when there is a candidate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub person: Option<PersonRef>,
    /// Scores and thresholds, when there is a candidate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scores: Option<Scores>,
    /// Regions an occluder hides.
    pub occluded: Vec<Region>,
    /// Per region: support, disagreement, occlusion.
    pub regions: Vec<RegionExplanation>,
    /// The face, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub face: Option<FaceInfo>,
    /// Frames in a row that agreed on this person.
    pub agreeing_frames: u32,
    /// The door decision taken with this event, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access: Option<Access>,
    /// The model that decided.
    pub model_id: String,
    /// Time per stage.
    pub latency_ms: Latency,
}

/// Which frame an event comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameRef {
    /// The source's frame number.
    pub seq: u64,
    /// File name or camera device.
    pub origin: String,
}

/// RFC 3339 UTC time with milliseconds.
pub fn rfc3339(t: std::time::SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// Now, as [`rfc3339`]: the one clock of events, enrollments and state.
pub fn now() -> String {
    rfc3339(std::time::SystemTime::now())
}

/// Privacy settings (`[privacy]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Privacy {
    /// Publish display names in events (ids are always published).
    pub publish_names: bool,
    /// Whose face crops go to `.../image/face`.
    pub face_crops: FaceCrops,
}

/// Whose face crops are published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FaceCrops {
    /// Nobody's.
    None,
    /// Recognised people's only (the default: a stranger's face is not sent anywhere).
    Known,
    /// Everyone's, strangers included.
    All,
}

impl Default for Privacy {
    fn default() -> Self {
        Self {
            publish_names: true,
            face_crops: FaceCrops::Known,
        }
    }
}
