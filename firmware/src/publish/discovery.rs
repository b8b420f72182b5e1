//! Home Assistant MQTT discovery: one retained device-based message
//! (`<discovery prefix>/device/<device id>/config`, Home Assistant 2024.11+) declaring the
//! face event, the heat map and face images, the last-person, people-at-the-door and
//! enrolled-people sensors, all bound to the device's
//! availability topic. Re-sent when Home Assistant announces itself (`<prefix>/status` =
//! `online`). Nothing declared here can open a door.

use super::topics::Topics;
use serde_json::{Value, json};

/// The discovery topic for `device`.
pub fn topic(discovery_prefix: &str, device: &str) -> String {
    format!("{discovery_prefix}/device/{device}/config")
}

/// Where Home Assistant announces that it (re)started.
pub fn status_topic(discovery_prefix: &str) -> String {
    format!("{discovery_prefix}/status")
}

/// The discovery payload for `device` (`name` shown in Home Assistant).
pub fn payload(topics: &Topics, device: &str, name: &str) -> Value {
    let version = env!("CARGO_PKG_VERSION");
    json!({
        "dev": {
            "ids": [format!("facegate_{device}")],
            "name": name,
            "mf": "facegate",
            "mdl": "facegate door",
            "sw": version,
        },
        "o": { "name": "facegate", "sw": version },
        "availability_topic": topics.availability(),
        "qos": 1,
        "cmps": {
            format!("{device}_face"): {
                "p": "event",
                "name": "Face",
                "unique_id": format!("facegate_{device}_face"),
                "state_topic": topics.events(),
                "event_types": ["match", "uncertain", "unknown", "low_quality", "no_face"],
                "value_template":
                    "{{ {'event_type': value_json.result, 'person': (value_json.person.id if value_json.person is defined else none), 'score': (value_json.scores.score if value_json.scores is defined else none)} | tojson }}",
            },
            format!("{device}_heatmap"): {
                "p": "image",
                "name": "Explanation",
                "unique_id": format!("facegate_{device}_heatmap"),
                "image_topic": topics.heatmap(),
                "content_type": "image/png",
            },
            format!("{device}_face_image"): {
                "p": "image",
                "name": "Face",
                "unique_id": format!("facegate_{device}_face_image"),
                "image_topic": topics.face(),
                "content_type": "image/jpeg",
            },
            format!("{device}_last_person"): {
                "p": "sensor",
                "name": "Last person",
                "unique_id": format!("facegate_{device}_last_person"),
                "state_topic": topics.last_person(),
                "value_template": "{{ value_json.name if value_json.name else value_json.id }}",
                "json_attributes_topic": topics.last_person(),
            },
            format!("{device}_present"): {
                "p": "sensor",
                "name": "People at the door",
                "unique_id": format!("facegate_{device}_present"),
                "state_topic": topics.presence(),
                "value_template": "{{ value_json.count }}",
                "json_attributes_topic": topics.presence(),
            },
            format!("{device}_people"): {
                "p": "sensor",
                "name": "Enrolled people",
                "unique_id": format!("facegate_{device}_people"),
                "state_topic": topics.state(),
                "value_template": "{{ value_json.people }}",
            },
        },
    })
}
