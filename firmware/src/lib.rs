//! facegate, the device program: camera frames in, access decisions and explanations out.
//!
//! The pipeline runs one way, one module per stage (see ARCHITECTURE.md):
//! [`source`] -> detect ([`facegate_detect`]) -> [`align`] -> [`quality`] -> [`embed`] ->
//! [`matching`] -> [`decide`] -> [`publish`]. [`pipeline`] wires the stages; [`gallery`] and
//! [`enrollment`] keep the enrolled people; [`config`] is what a technician edits; [`model`] loads
//! the model files once.

pub mod align;
pub mod bench;
pub mod command;
pub mod config;
pub mod decide;
pub mod device;
pub mod display;
pub mod door;
pub mod embed;
pub mod enrollment;
pub mod gallery;
pub mod liveness;
pub mod matching;
pub mod model;
pub mod pipeline;
pub mod publish;
pub mod quality;
pub mod schedule;
pub mod secret;
pub mod service;
pub mod source;
pub mod sqlite;
