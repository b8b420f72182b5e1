//! facegate's pipeline: camera frames in, decided events out, with no MQTT and no command line.
//!
//! The stages run one way, one module per stage (see ARCHITECTURE.md):
//! [`source`] -> detect ([`facegate_detect`]) -> [`liveness`] -> [`align`] -> [`quality`] ->
//! [`embed`] -> [`matching`] -> [`decide`] -> [`event`] into a [`sink::Sink`]. [`wiring`] joins
//! the stages and reads only its [`wiring::Settings`]; [`gallery`] and [`enrollment`] keep the
//! enrolled people; [`model`] loads the model files once; [`heatmap`] draws the explanation.
//! The device crate (`facegate`) adds the config file, MQTT, the door, the screen and the CLI.

pub mod align;
pub mod analyse;
pub mod decide;
pub mod embed;
pub mod enrollment;
pub mod event;
pub mod gallery;
pub mod heatmap;
pub mod liveness;
pub mod matching;
pub mod model;
pub mod quality;
pub mod schedule;
pub mod secret;
pub mod sink;
pub mod source;
pub mod sqlite;
pub mod wiring;

pub use wiring::{Pipeline, PipelineError, Settings};
