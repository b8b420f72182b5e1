//! Device configuration: the TOML file a field technician edits.
//!
//! Pipeline position: read once at start-up (and on reload), before any stage runs; every stage
//! gets its settings from the checked [`Config`]. Reading is two steps: the file is parsed into
//! position-keeping raw types, then [`check`] validates everything at once and reports *every*
//! problem with its line, so a technician fixes a config in one pass rather than one error at a
//! time. Relative paths in the file are relative to the file's own folder.

mod check;
mod raw;

use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};

pub use crate::publish::tls::Tls;
pub use check::check;
pub(crate) use check::id_problem;
pub use facegate_pipeline::analyse::Detection;
pub use facegate_pipeline::embed::{EmbedderConfig, TensorRtConfig, TrtPrecision};
pub use facegate_pipeline::enrollment::Person;
pub use facegate_pipeline::event::{FaceCrops, Privacy};
pub use facegate_pipeline::matching::MatchRules;
pub use facegate_pipeline::source::{PixelFormat, Source};

/// A checked configuration, with paths resolved against the config file's folder.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// This device.
    pub device: Identity,
    /// The model card to run; `None` means the shipped default model.
    pub model_card: Option<PathBuf>,
    /// Which runtime embeds faces.
    pub embedder: EmbedderConfig,
    /// Where frames come from.
    pub source: Source,
    /// The MQTT broker and topics.
    pub mqtt: Mqtt,
    /// People to enroll on start and on reload.
    pub people: Vec<Person>,
    /// Where the device keeps its state (gallery, key, event queue).
    pub storage_dir: PathBuf,
    /// Face detection settings.
    pub detection: Detection,
    /// Matching settings.
    pub matching: MatchRules,
    /// Face quality limits.
    pub quality: facegate_pipeline::quality::QualityRules,
    /// Decision settings.
    pub decision: facegate_pipeline::decide::DecideRules,
    /// What events may reveal.
    pub privacy: Privacy,
    /// Home Assistant discovery.
    pub home_assistant: HomeAssistant,
    /// Commands over MQTT; `None` when disabled (the default).
    pub commands: Option<Commands>,
    /// Signed door decisions on `.../access`; `None` when disabled.
    pub access: Option<Signing>,
    /// Liveness (presentation-attack) check before every grant; `None` when turned off.
    pub liveness: Option<facegate_pipeline::liveness::LivenessConfig>,
    /// The door screen; `None` when there is none (the default).
    pub display: Option<crate::display::DisplayConfig>,
    /// The local door relay; `None` when off (the default).
    pub door: Option<crate::door::DoorConfig>,
    /// The Frigate mirror.
    pub frigate: Frigate,
    /// The Prometheus endpoint; `None` when off (the default).
    pub metrics: Option<crate::metrics::MetricsConfig>,
}

/// Recognitions mirrored as Frigate `tracked_object_update` messages (`[frigate]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Frigate {
    /// Mirror them (off by default).
    pub enabled: bool,
    /// The topic.
    pub topic: String,
    /// The `camera` field; empty means the device id.
    pub camera: String,
}

impl Default for Frigate {
    fn default() -> Self {
        Self {
            enabled: false,
            topic: "frigate/tracked_object_update".into(),
            camera: String::new(),
        }
    }
}

/// Signed access decisions (`[access]`, on by default).
#[derive(Debug, Clone, PartialEq)]
pub struct Signing {
    /// The Ed25519 signing key (created on first run; its public half beside it as `.pub`).
    pub key_file: PathBuf,
    /// How long a decision stays valid after it is taken.
    pub valid_seconds: f64,
}

impl Signing {
    /// How long a decision stays valid when the config says nothing: long enough for a
    /// controller to receive it, short enough that a captured message is soon worthless.
    pub const DEFAULT_VALID_SECONDS: f64 = 5.0;
}

/// Commands over MQTT (`[commands]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Commands {
    /// The file holding the shared key requests are signed with.
    pub key_file: PathBuf,
    /// Requests issued longer ago (or further ahead) than this are refused.
    pub max_age_seconds: f64,
    /// Refused requests answered per second at most; beyond, they are counted, not answered.
    pub refusals_per_second: f64,
}

impl Commands {
    /// How far a request's time may be from the device's clock, by default.
    pub const DEFAULT_MAX_AGE_SECONDS: f64 = 60.0;
    /// Refusals answered per second, by default.
    pub const DEFAULT_REFUSALS_PER_SECOND: f64 = 5.0;
}

/// Home Assistant integration (`[home_assistant]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HomeAssistant {
    /// Publish the retained discovery message.
    pub discovery: bool,
    /// Home Assistant's discovery prefix.
    pub prefix: String,
}

impl Default for HomeAssistant {
    fn default() -> Self {
        Self {
            discovery: true,
            prefix: "homeassistant".into(),
        }
    }
}

/// Default state folder on a board.
pub const DEFAULT_STORAGE_DIR: &str = "/var/lib/facegate";

impl Config {
    /// What the pipeline reads: its stages' settings, the door's id and time zone, the people.
    pub fn pipeline(&self) -> facegate_pipeline::Settings {
        facegate_pipeline::Settings {
            device_id: self.device.id.clone(),
            time_zone: self.device.time_zone(),
            detection: self.detection,
            matching: self.matching,
            quality: self.quality,
            decision: self.decision,
            privacy: self.privacy,
            people: self.people.clone(),
        }
    }
}

/// A person's threshold below the card's operating point: it would let more strangers in.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "config: {field} = {threshold} is looser than the model's operating threshold \
     {operating:.4} (false accept rate {far}); a person's threshold may only be stricter \
     (higher), or leave it out"
)]
pub struct LooseThreshold {
    /// `people[i].threshold`.
    pub field: String,
    /// The configured value.
    pub threshold: f32,
    /// The card's threshold at the configured false accept rate.
    pub operating: f32,
    /// That false accept rate.
    pub far: f64,
}

/// A part of the config that a running device cannot take over in place: the models are
/// loaded, the broker connected, the camera, screen and relay open with what it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Section {
    /// `[device]` id or name (topics, discovery).
    Device,
    /// `[model]` (card, runtime).
    Model,
    /// `[detection]` (the detector is built with it).
    Detection,
    /// `[liveness]` (its models).
    Liveness,
    /// `[source]`.
    Source,
    /// `[mqtt]`.
    Mqtt,
    /// `[storage]`.
    Storage,
    /// `[home_assistant]`.
    HomeAssistant,
    /// `[commands]`.
    Commands,
    /// `[access]`.
    Access,
    /// `[display]`.
    Display,
    /// `[door]`.
    Door,
    /// `[frigate]`.
    Frigate,
    /// `[metrics]`.
    Metrics,
}

impl Config {
    /// The people's thresholds against the operating point of `card` at the configured false
    /// accept rate: none may be looser.
    pub fn check_thresholds(
        &self,
        card: &facegate_contract::ModelCard,
    ) -> Result<(), LooseThreshold> {
        let far = self.matching.target_far;
        let Some(operating) = facegate_pipeline::matching::Thresholds::from_card(card, far) else {
            return Ok(());
        };
        for (i, p) in self.people.iter().enumerate() {
            if let Some(threshold) = p.threshold
                && threshold < operating.full
            {
                return Err(LooseThreshold {
                    field: format!("people[{i}].threshold"),
                    threshold,
                    operating: operating.full,
                    far,
                });
            }
        }
        Ok(())
    }

    /// The sections in which `next` differs from this config and that only a restart of the
    /// device takes (empty: everything that changed, people, matching, quality, decision,
    /// privacy and the time zone, can be taken while running).
    pub fn restart_needed_for(&self, next: &Config) -> Vec<Section> {
        let changed = [
            (
                Section::Device,
                self.device.id != next.device.id || self.device.name != next.device.name,
            ),
            (
                Section::Model,
                self.model_card != next.model_card || self.embedder != next.embedder,
            ),
            (Section::Detection, self.detection != next.detection),
            (Section::Liveness, self.liveness != next.liveness),
            (Section::Source, self.source != next.source),
            (Section::Mqtt, self.mqtt != next.mqtt),
            (Section::Storage, self.storage_dir != next.storage_dir),
            (
                Section::HomeAssistant,
                self.home_assistant != next.home_assistant,
            ),
            (Section::Commands, self.commands != next.commands),
            (Section::Access, self.access != next.access),
            (Section::Display, self.display != next.display),
            (Section::Door, self.door != next.door),
            (Section::Frigate, self.frigate != next.frigate),
            (Section::Metrics, self.metrics != next.metrics),
        ];
        changed
            .into_iter()
            .filter_map(|(section, differs)| differs.then_some(section))
            .collect()
    }
}

/// Identity of the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Stable id: a single MQTT topic level and Home Assistant id (`[A-Za-z0-9_-]`, 1..=64).
    pub id: String,
    /// Human-readable name; defaults to the id.
    pub name: String,
    /// IANA time zone for schedules (`Europe/Berlin`); `None`: the system's.
    pub time_zone: Option<String>,
}

impl Identity {
    /// The door's time zone: the configured one, else the system's (UTC if it has none).
    pub fn time_zone(&self) -> jiff::tz::TimeZone {
        self.time_zone
            .as_deref()
            .and_then(|name| jiff::tz::TimeZone::get(name).ok())
            .unwrap_or_else(jiff::tz::TimeZone::system)
    }
}

/// The MQTT broker and topic prefix.
#[derive(Debug, Clone, PartialEq)]
pub struct Mqtt {
    /// Broker host name or address.
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// Topic prefix; the device publishes under `<prefix>/<device id>/`.
    pub prefix: String,
    /// MQTT client id; defaults to `facegate-<device id>`.
    pub client_id: String,
    /// User name and password, when the broker asks for them.
    pub credentials: Option<(String, String)>,
    /// Keep-alive interval in seconds.
    pub keep_alive_seconds: u64,
    /// Most events kept on disk while the broker is away (oldest dropped beyond).
    pub queue_limit: usize,
    /// On exit, how long to wait for queued events to reach the broker.
    pub drain_seconds: f32,
    /// TLS to the broker; `None` for plain TCP.
    pub tls: Option<Tls>,
}

impl Mqtt {
    /// Keep-alive interval by default, seconds.
    pub const DEFAULT_KEEP_ALIVE_SECONDS: u64 = 30;
    /// Events kept on disk by default while the broker is away.
    pub const DEFAULT_QUEUE_LIMIT: usize = 10_000;
    /// How long an exit waits for queued events by default, seconds.
    pub const DEFAULT_DRAIN_SECONDS: f32 = 5.0;
}

/// One problem found in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// 1-based line in the file, when the problem has a place in it.
    pub line: Option<usize>,
    /// The field, as a path (`people[1].photos[0]`).
    pub field: String,
    /// What is wrong and what was expected.
    pub message: String,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}: {}", self.field, self.message),
            None => write!(f, "{}: {}", self.field, self.message),
        }
    }
}

/// Why a config file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read at all.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file was read and has problems; each names its line and field.
    #[error("config {path} has {} problem(s):\n{}", issues.len(), list(issues))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Every problem found.
        issues: Vec<Issue>,
    },
}

fn list(issues: &[Issue]) -> String {
    issues
        .iter()
        .map(|i| format!("  {i}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Reads and checks the config file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    let base = path.parent().unwrap_or_else(|| Path::new(""));
    check(&text, base).map_err(|issues| ConfigError::Invalid {
        path: path.to_owned(),
        issues,
    })
}
