//! facegate, the device program: camera frames in, access decisions and explanations out over MQTT.
//!
//! The pipeline runs one way: source -> detect -> align -> embed -> match -> decide -> publish
//! (see ARCHITECTURE.md). Today this crate holds the configuration every stage will read; the
//! stages themselves arrive with the device-program issue.

pub mod config;
