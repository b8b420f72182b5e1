//! Home Assistant MQTT discovery: one retained device-based message
//! (`<discovery prefix>/device/<device id>/config`, Home Assistant 2024.11+) declaring the
//! face and door-decision events, the heat map and face images, the last-person,
//! people-at-the-door and enrolled-people sensors, all bound to the device's availability
//! topic. Re-sent when Home Assistant announces itself (`<prefix>/status` = `online`); with
//! discovery turned off, an empty retained message on the same topic removes the device from
//! Home Assistant. Nothing declared here can open a door.

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

/// What the Face event entity fires: the outcome, once per change of a visit (never for the
/// `end` event, which repeats the track's last result, nor for an `update` sent only to carry a
/// door decision), with the event id to tie it to its picture and to feedback, and the face's
/// live score (`spoof` when it is below the liveness threshold). Home Assistant ignores a
/// message whose template renders empty.
pub const FACE_EVENT_TEMPLATE: &str = "{% if value_json.result_changed is defined and value_json.result_changed %}\
{{ {'event_type': value_json.result, 'event_id': value_json.id, 'lifecycle': value_json.type, \
'person': (value_json.person.id if value_json.person is defined else none), \
'name': (value_json.person.name if value_json.person is defined and value_json.person.name is defined else none), \
'score': (value_json.scores.score if value_json.scores is defined else none), \
'live_score': (value_json.face.liveness.score if value_json.face is defined and value_json.face.liveness is defined else none), \
'access': (value_json.access.decision if value_json.access is defined else none)} | tojson }}\
{% endif %}";

/// What the Door decision event entity fires: `grant` or `deny` once per decision the device
/// took (the same decisions it signs on `.../access`), with the reason of a denial.
pub const DOOR_EVENT_TEMPLATE: &str = "{% if value_json.access is defined %}\
{{ {'event_type': value_json.access.decision, 'event_id': value_json.id, \
'person': (value_json.person.id if value_json.person is defined else none), \
'name': (value_json.person.name if value_json.person is defined and value_json.person.name is defined else none), \
'reason': (value_json.access.reason if value_json.access.reason is defined else none)} | tojson }}\
{% endif %}";

/// The discovery payload for `device` (`name` shown in Home Assistant). Every component
/// carries its own QoS (Home Assistant does not read one at device level) and a name unique
/// within the device.
pub fn payload(topics: &Topics, device: &str, name: &str) -> Value {
    let version = env!("CARGO_PKG_VERSION");
    let url = env!("CARGO_PKG_REPOSITORY");
    json!({
        "dev": {
            "ids": [format!("facegate_{device}")],
            "name": name,
            "mf": "facegate",
            "mdl": "facegate door",
            "sw": version,
        },
        "o": { "name": "facegate", "sw": version, "url": url },
        "availability_topic": topics.availability(),
        "cmps": {
            format!("{device}_face"): {
                "p": "event",
                "name": "Face",
                "unique_id": format!("facegate_{device}_face"),
                "state_topic": topics.events(),
                "qos": 1,
                "event_types": ["match", "uncertain", "unknown", "low_quality", "spoof"],
                "value_template": FACE_EVENT_TEMPLATE,
                "icon": "mdi:face-recognition",
            },
            format!("{device}_door"): {
                "p": "event",
                "name": "Door decision",
                "unique_id": format!("facegate_{device}_door"),
                "state_topic": topics.events(),
                "qos": 1,
                "event_types": ["grant", "deny"],
                "value_template": DOOR_EVENT_TEMPLATE,
                "icon": "mdi:door",
            },
            format!("{device}_heatmap"): {
                "p": "image",
                "name": "Explanation",
                "unique_id": format!("facegate_{device}_heatmap"),
                "image_topic": topics.heatmap(),
                "qos": 1,
                "content_type": "image/png",
            },
            format!("{device}_face_image"): {
                "p": "image",
                "name": "Face picture",
                "unique_id": format!("facegate_{device}_face_image"),
                "image_topic": topics.face(),
                "qos": 1,
                "content_type": "image/jpeg",
            },
            format!("{device}_last_person"): {
                "p": "sensor",
                "name": "Last person",
                "unique_id": format!("facegate_{device}_last_person"),
                "state_topic": topics.last_person(),
                "qos": 1,
                "value_template": "{{ value_json.name if value_json.name else value_json.id }}",
                "json_attributes_topic": topics.last_person(),
                "icon": "mdi:account",
            },
            format!("{device}_present"): {
                "p": "sensor",
                "name": "People at the door",
                "unique_id": format!("facegate_{device}_present"),
                "state_topic": topics.presence(),
                "qos": 1,
                "value_template": "{{ value_json.count }}",
                "json_attributes_topic": topics.presence(),
                "state_class": "measurement",
                "unit_of_measurement": "people",
                "icon": "mdi:account-group",
            },
            format!("{device}_people"): {
                "p": "sensor",
                "name": "Enrolled people",
                "unique_id": format!("facegate_{device}_people"),
                "state_topic": topics.state(),
                "qos": 1,
                "value_template": "{{ value_json.people }}",
                "state_class": "measurement",
                "unit_of_measurement": "people",
                "entity_category": "diagnostic",
                "icon": "mdi:account-multiple",
            },
        },
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::collections::BTreeSet;

    /// The keys Home Assistant's MQTT discovery requires per platform (beyond `p` and, in a
    /// device message, `unique_id`), from its schema for each platform.
    const REQUIRED: &[(&str, &[&str])] = &[
        ("event", &["state_topic", "event_types"]),
        ("image", &["image_topic"]),
        ("sensor", &["state_topic"]),
    ];

    /// Platforms whose state is a number: a count gets a state class so Home Assistant keeps
    /// statistics and draws graphs.
    const COUNTS: &[&str] = &["People at the door", "Enrolled people"];

    #[test]
    fn every_component_has_what_home_assistant_requires() {
        let d = payload(&Topics::new("facegate", "door"), "door", "Front door");
        assert!(d.get("qos").is_none(), "QoS is read per component only");
        assert!(d["o"]["url"].as_str().unwrap().starts_with("https://"));
        let cmps = d["cmps"].as_object().unwrap();
        let mut names = BTreeSet::new();
        let mut ids = BTreeSet::new();
        for (key, c) in cmps {
            let platform = c["p"].as_str().unwrap();
            let (_, required) = REQUIRED
                .iter()
                .find(|(p, _)| *p == platform)
                .unwrap_or_else(|| panic!("{key}: platform {platform} not in the table"));
            for k in *required {
                assert!(c.get(*k).is_some(), "{key} ({platform}) lacks {k}");
            }
            // Home Assistant reads QoS per component; the broker delivers at the lower of the
            // publish and subscribe QoS, so events keep their at-least-once delivery.
            assert_eq!(c["qos"], 1, "{key}: subscribed below QoS 1");
            let name = c["name"].as_str().unwrap();
            assert!(names.insert(name.to_owned()), "two components named {name}");
            assert!(ids.insert(c["unique_id"].as_str().unwrap().to_owned()));
            if COUNTS.contains(&name) {
                assert_eq!(c["state_class"], "measurement", "{name}");
            }
        }
        assert_eq!(cmps.len(), 7);
        // The entity of the device's own bookkeeping is a diagnostic one.
        assert_eq!(cmps["door_people"]["entity_category"], "diagnostic");
        // Only what the running device sends is declared.
        assert!(
            !cmps["door_face"]["event_types"]
                .as_array()
                .unwrap()
                .contains(&"no_face".into())
        );
    }
}
