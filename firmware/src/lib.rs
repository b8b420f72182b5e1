//! facegate, the device program: the pipeline ([`facegate_pipeline`]) at a door.
//!
//! [`config`] is what a technician edits (checked, then split into the pipeline's and the
//! device's settings); [`device`] runs the pipeline over a source into the device's sinks:
//! [`publish`] (MQTT: events, signed door decisions, Home Assistant), [`display`] (the door
//! screen), [`door`] (the relay), [`metrics`] (counters for a monitoring stack); [`command`] serves requests from the bus between frames;
//! [`service`] talks to systemd; [`bench`](mod@bench) measures. Nothing here is imported by the pipeline.

pub mod bench;
pub mod command;
pub mod command_key;
pub mod config;
pub mod device;
pub mod display;
pub mod door;
pub mod metrics;
pub mod publish;
pub mod service;
