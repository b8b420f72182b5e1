//! The configuration file exactly as written: serde types that keep each checked value's
//! position in the file, so every problem can be reported with its line.
//!
//! Nothing outside `config` sees these types; [`super::check`] turns them into [`super::Config`].

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub device: RawDevice,
    pub model: Option<RawModel>,
    pub embedder: Option<RawEmbedder>,
    pub source: RawSource,
    #[serde(default)]
    pub mqtt: RawMqtt,
    #[serde(default)]
    pub people: Vec<RawPerson>,
    pub storage: Option<RawStorage>,
    pub detection: Option<Spanned<super::Detection>>,
    pub matching: Option<Spanned<super::MatchRules>>,
    pub quality: Option<Spanned<facegate_pipeline::quality::QualityRules>>,
    pub decision: Option<Spanned<facegate_pipeline::decide::DecideRules>>,
    pub privacy: Option<super::Privacy>,
    pub commands: Option<RawCommands>,
    pub access: Option<RawAccess>,
    pub liveness: Option<RawLiveness>,
    pub display: Option<RawDisplay>,
    pub door: Option<RawDoor>,
    pub frigate: Option<Spanned<super::Frigate>>,
    pub home_assistant: Option<Spanned<super::HomeAssistant>>,
    pub metrics: Option<RawMetrics>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMetrics {
    pub enabled: Spanned<bool>,
    pub port: Option<Spanned<u16>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCommands {
    pub enabled: Spanned<bool>,
    pub key_file: Option<Spanned<String>>,
    pub max_age_seconds: Option<Spanned<f64>>,
    pub refusals_per_second: Option<Spanned<f64>>,
}

/// The kinds of door output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum DoorKind {
    #[serde(rename = "none")]
    Off,
    Gpio,
    Command,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDoor {
    pub kind: Spanned<DoorKind>,
    pub chip: Option<Spanned<String>>,
    pub line: Option<Spanned<u32>>,
    pub active_low: Option<Spanned<bool>>,
    pub pulse_seconds: Option<Spanned<f64>>,
    pub command: Option<Spanned<Vec<String>>>,
    pub timeout_seconds: Option<Spanned<f64>>,
}

/// The kinds of door screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum DisplayKind {
    Framebuffer,
    Png,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDisplay {
    pub kind: Spanned<DisplayKind>,
    pub device: Option<Spanned<String>>,
    pub path: Option<Spanned<String>>,
    pub width: Option<Spanned<u32>>,
    pub height: Option<Spanned<u32>>,
    pub hold_seconds: Option<Spanned<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAccess {
    pub enabled: Option<Spanned<bool>>,
    pub valid_seconds: Option<Spanned<f64>>,
    pub key_file: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLiveness {
    pub enabled: Option<Spanned<bool>>,
    pub threshold: Option<Spanned<f32>>,
    pub models: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStorage {
    pub dir: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDevice {
    pub id: Spanned<String>,
    pub name: Option<String>,
    pub time_zone: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawModel {
    pub card: Spanned<String>,
}

/// The inference runtimes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum RuntimeKind {
    Tract,
    TensorRt,
}

/// TensorRT precisions as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum PrecisionKind {
    Fp32,
    Fp16,
    Int8,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEmbedder {
    pub runtime: Spanned<RuntimeKind>,
    pub precision: Option<Spanned<PrecisionKind>>,
    pub calibration: Option<Spanned<String>>,
    pub workspace_mib: Option<Spanned<u32>>,
}

/// The kinds of frame source; which other `[source]` fields apply depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum SourceKind {
    V4l2,
    Folder,
    Image,
    Mjpeg,
    Y4m,
    Stream,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSource {
    pub kind: Spanned<SourceKind>,
    pub path: Option<Spanned<String>>,
    pub device: Option<Spanned<String>>,
    pub format: Option<Spanned<super::PixelFormat>>,
    pub width: Option<Spanned<u32>>,
    pub height: Option<Spanned<u32>>,
    pub fps: Option<Spanned<u32>>,
    pub url: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMqtt {
    #[serde(default = "default_host")]
    pub host: Spanned<String>,
    #[serde(default = "default_port")]
    pub port: Spanned<u16>,
    #[serde(default = "default_prefix")]
    pub prefix: Spanned<String>,
    pub client_id: Option<Spanned<String>>,
    pub username: Option<Spanned<String>>,
    pub password: Option<Spanned<String>>,
    pub password_file: Option<Spanned<String>>,
    pub keep_alive_seconds: Option<Spanned<u64>>,
    pub queue_limit: Option<Spanned<usize>>,
    pub drain_seconds: Option<Spanned<f32>>,
    pub tls: Option<RawTls>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTls {
    pub ca_file: Spanned<String>,
    pub cert_file: Option<Spanned<String>>,
    pub key_file: Option<Spanned<String>>,
}

impl Default for RawMqtt {
    fn default() -> Self {
        Self {
            host: default_host(),
            port: default_port(),
            prefix: default_prefix(),
            client_id: None,
            username: None,
            password: None,
            password_file: None,
            keep_alive_seconds: None,
            queue_limit: None,
            drain_seconds: None,
            tls: None,
        }
    }
}

fn unplaced<T>(value: T) -> Spanned<T> {
    Spanned::new(0..0, value)
}

fn default_host() -> Spanned<String> {
    unplaced("127.0.0.1".to_owned())
}

fn default_port() -> Spanned<u16> {
    unplaced(1883)
}

fn default_prefix() -> Spanned<String> {
    unplaced("facegate".to_owned())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPerson {
    pub id: Spanned<String>,
    pub name: Spanned<String>,
    #[serde(default)]
    pub photos: Vec<Spanned<String>>,
    pub threshold: Option<Spanned<f32>>,
    pub schedule: Option<Spanned<Vec<String>>>,
}
