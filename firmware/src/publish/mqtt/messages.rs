//! What the device sends, as pure functions from events and state to messages: no clock, no
//! randomness, no network (the caller passes sequence numbers, nonces and times in), so each
//! rule about what a message may say is unit-tested here.

use crate::publish::access::{ACCESS_SCHEMA, AccessDecision, AccessSigner, Verdict};
use crate::publish::presence::PresenceState;
use crate::publish::queues::{Class, Outgoing};
use crate::publish::request::Refusal;
use crate::publish::topics::Topics;
use facegate_pipeline::decide::{Access, Lifecycle};
use facegate_pipeline::event::{Event, Outcome};
use rumqttc::QoS;
use std::time::{Duration, Instant};

/// Signing of the door decisions on `.../access`.
#[derive(Debug)]
pub struct AccessSettings {
    /// The device's key.
    pub signer: AccessSigner,
    /// The device id written into each decision.
    pub device: String,
    /// How long a decision stays valid.
    pub valid: Duration,
}

/// What makes one door decision unique and dated: the caller draws them.
#[derive(Debug, Clone, Copy)]
pub struct Stamp {
    /// The access message's sequence number (persistent across restarts).
    pub seq: u64,
    /// 16 random bytes.
    pub nonce: [u8; 16],
    /// Now, Unix seconds.
    pub now: f64,
    /// Now, for the queue's expiry.
    pub instant: Instant,
}

/// The signed door decision taken with `event`, or `None` when the event takes none. A denial
/// names the person only when one was recognised (a cool-down), never the nearest stranger's
/// candidate.
pub fn access(
    settings: &AccessSettings,
    topics: &Topics,
    event: &Event,
    stamp: Stamp,
) -> Option<Result<Outgoing, serde_json::Error>> {
    let (decision, reason) = match event.access.as_ref()? {
        Access::Grant { .. } => (Verdict::Grant, None),
        Access::Deny { reason } => (Verdict::Deny, Some(reason.clone())),
    };
    let person = (decision == Verdict::Grant || event.result == Outcome::Match)
        .then(|| event.person.clone())
        .flatten();
    let decision = AccessDecision {
        schema: ACCESS_SCHEMA,
        device: settings.device.clone(),
        seq: stamp.seq,
        nonce: facegate_contract::fsutil::hex(&stamp.nonce),
        issued_at: stamp.now,
        expires_at: stamp.now + settings.valid.as_secs_f64(),
        decision,
        person,
        reason,
        event_id: event.id.clone(),
    };
    let signed = settings
        .signer
        .sign(&decision)
        .and_then(|m| serde_json::to_vec(&m));
    Some(signed.map(|payload| Outgoing {
        expires: Some(stamp.instant + settings.valid),
        ..Outgoing::new(
            Class::Access,
            topics.access(),
            payload,
            QoS::AtLeastOnce,
            false,
        )
    }))
}

/// The retained availability, `online` or `offline`.
pub fn availability(topics: &Topics, online: bool) -> Outgoing {
    let payload = if online { "online" } else { "offline" };
    Outgoing::new(
        Class::Control,
        topics.availability(),
        payload.as_bytes().to_vec(),
        QoS::AtLeastOnce,
        true,
    )
}

/// The retained state message for `state`.
pub fn state(topics: &Topics, state: &serde_json::Value) -> Outgoing {
    Outgoing::new(
        Class::Control,
        topics.state(),
        state.to_string().into_bytes(),
        QoS::AtLeastOnce,
        true,
    )
}

/// The retained counts and latencies (`.../stats`): the newest replaces any waiting one.
pub fn stats(topics: &Topics, body: &serde_json::Value) -> Outgoing {
    Outgoing::new(
        Class::Latest,
        topics.stats(),
        body.to_string().into_bytes(),
        QoS::AtLeastOnce,
        true,
    )
}

/// The retained "last person recognised", for a match that is not a track's end (an `end`
/// keeps the track's last result and would announce the person again as they leave).
pub fn last_person(topics: &Topics, event: &Event) -> Option<Outgoing> {
    let person = event.person.as_ref()?;
    if event.result != Outcome::Match || event.lifecycle == Lifecycle::End {
        return None;
    }
    let last = serde_json::json!({
        "id": person.id,
        "name": person.name,
        "time": event.time,
        "event_id": event.id,
    });
    Some(Outgoing::new(
        Class::Latest,
        topics.last_person(),
        last.to_string().into_bytes(),
        QoS::AtLeastOnce,
        true,
    ))
}

/// Who is at the door now (retained: a dashboard opened later sees it).
pub fn presence(topics: &Topics, state: &PresenceState) -> Result<Outgoing, serde_json::Error> {
    Ok(Outgoing::new(
        Class::Latest,
        topics.presence(),
        serde_json::to_vec(state)?,
        QoS::AtLeastOnce,
        true,
    ))
}

/// A heat map (PNG): best effort, not retained (a face picture should not linger on the
/// broker).
pub fn heatmap(topics: &Topics, png: &[u8]) -> Outgoing {
    Outgoing::new(
        Class::Latest,
        topics.heatmap(),
        png.to_vec(),
        QoS::AtMostOnce,
        false,
    )
}

/// A face crop (JPEG): best effort, not retained.
pub fn face_crop(topics: &Topics, jpeg: &[u8]) -> Outgoing {
    Outgoing::new(
        Class::Latest,
        topics.face(),
        jpeg.to_vec(),
        QoS::AtMostOnce,
        false,
    )
}

/// The answer to a refused request on its action's response topic.
pub fn refusal(topics: &Topics, action: &str, refusal: &Refusal) -> Outgoing {
    let body = serde_json::json!({
        "transaction": refusal.transaction,
        "ok": false,
        "error": refusal.reason,
    });
    Outgoing::new(
        Class::Bulk,
        topics.response(action),
        body.to_string().into_bytes(),
        QoS::AtLeastOnce,
        false,
    )
}

/// A response or an enrollment verdict to an accepted request.
pub fn reply(topic: String, body: &serde_json::Value) -> Outgoing {
    Outgoing::new(
        Class::Reply,
        topic,
        body.to_string().into_bytes(),
        QoS::AtLeastOnce,
        false,
    )
}

/// Faces mirrored as Frigate `tracked_object_update` messages, for automations written against
/// Frigate's face recognition: a recognised person by name, an unknown face with `name: null`,
/// as Frigate sends them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrigateMirror {
    /// Where they go (Frigate's own is `frigate/tracked_object_update`).
    pub topic: String,
    /// The `camera` field.
    pub camera: String,
}

impl FrigateMirror {
    /// The mirrored message for `event` at `now` (Unix seconds): for a match (the display
    /// name, or the id when names are withheld) and for an unknown face (`name: null`, the
    /// best candidate's score if any); none for `uncertain`, `low_quality` and a track's `end`.
    pub fn message(&self, event: &Event, now: f64) -> Option<Outgoing> {
        if event.lifecycle == Lifecycle::End {
            return None;
        }
        let name = match event.result {
            Outcome::Match => {
                let person = event.person.as_ref()?;
                Some(person.name.clone().unwrap_or_else(|| person.id.clone()))
            }
            Outcome::Unknown => None,
            _ => return None,
        };
        let body = serde_json::json!({
            "type": "face",
            "id": event.id,
            "name": name,
            "score": event.scores.as_ref().map(|s| s.score),
            "camera": self.camera,
            "timestamp": now,
        });
        Some(Outgoing::new(
            Class::Bulk,
            self.topic.clone(),
            body.to_string().into_bytes(),
            QoS::AtMostOnce,
            false,
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::publish::access::AccessVerifier;

    fn topics() -> Topics {
        Topics::new("facegate", "door")
    }

    fn json(m: &Outgoing) -> serde_json::Value {
        serde_json::from_slice(&m.payload).unwrap()
    }

    fn settings() -> AccessSettings {
        AccessSettings {
            signer: AccessSigner::from_seed(&[7; 32]),
            device: "door".into(),
            valid: Duration::from_secs(5),
        }
    }

    fn stamp(seq: u64) -> Stamp {
        Stamp {
            seq,
            nonce: [seq as u8; 16],
            now: 1_000.0,
            instant: Instant::now(),
        }
    }

    #[test]
    fn frigate_hears_of_recognised_and_unknown_faces_as_frigate_sends_them() {
        let mirror = FrigateMirror {
            topic: "frigate/tracked_object_update".into(),
            camera: "door".into(),
        };
        let known =
            crate::publish::sample_event("t1", Lifecycle::New, Outcome::Match, Some("ann"), None);
        let m = mirror.message(&known, 5.0).unwrap();
        assert_eq!(
            (m.topic.as_str(), m.qos, m.retain),
            (mirror.topic.as_str(), QoS::AtMostOnce, false)
        );
        let m = json(&m);
        assert_eq!(
            (&m["type"], &m["name"]),
            (&"face".into(), &"ann Example".into())
        );
        assert_eq!((&m["id"], &m["timestamp"]), (&"t1".into(), &5.0.into()));
        let stranger =
            crate::publish::sample_event("t2", Lifecycle::New, Outcome::Unknown, None, None);
        let m = json(&mirror.message(&stranger, 5.0).unwrap());
        assert!(m["name"].is_null(), "{m}");
        assert_eq!(m["camera"], "door");
        let ended =
            crate::publish::sample_event("t1", Lifecycle::End, Outcome::Match, Some("ann"), None);
        assert!(mirror.message(&ended, 5.0).is_none());
        let unsure = crate::publish::sample_event(
            "t3",
            Lifecycle::New,
            Outcome::Uncertain,
            Some("ann"),
            None,
        );
        assert!(mirror.message(&unsure, 5.0).is_none());
    }

    #[test]
    fn a_grant_is_signed_names_the_person_and_expires_in_the_queue() {
        let s = settings();
        let grant = Access::Grant {
            person: "ann".into(),
        };
        let event = crate::publish::sample_event(
            "t1",
            Lifecycle::New,
            Outcome::Match,
            Some("ann"),
            Some(grant),
        );
        let st = stamp(42);
        let m = access(&s, &topics(), &event, st).unwrap().unwrap();
        assert_eq!(m.class, Class::Access);
        assert_eq!(
            (m.topic.as_str(), m.retain),
            ("facegate/door/access", false)
        );
        assert_eq!(m.expires, Some(st.instant + s.valid));
        let mut verifier = AccessVerifier::new(&s.signer.public_key_hex(), "door").unwrap();
        let d = verifier.check(&m.payload, 1_001.0).unwrap();
        assert_eq!((d.decision, d.seq), (Verdict::Grant, 42));
        assert_eq!(d.person.unwrap().id, "ann");
        assert_eq!((d.event_id.as_str(), d.expires_at), ("t1", 1_005.0));
        assert!(
            verifier.check(&m.payload, 1_006.0).is_err(),
            "expired and replayed"
        );
    }

    #[test]
    fn a_denial_of_a_stranger_never_names_the_nearest_candidate() {
        let s = settings();
        let deny = Access::Deny {
            reason: "unknown".into(),
        };
        // The event carries the nearest candidate; the door decision must not.
        let stranger = crate::publish::sample_event(
            "t2",
            Lifecycle::New,
            Outcome::Unknown,
            Some("ann"),
            Some(deny.clone()),
        );
        let m = access(&s, &topics(), &stranger, stamp(1)).unwrap().unwrap();
        let mut verifier = AccessVerifier::new(&s.signer.public_key_hex(), "door").unwrap();
        let d = verifier.check(&m.payload, 1_000.5).unwrap();
        assert_eq!(
            (d.decision, d.reason.as_deref()),
            (Verdict::Deny, Some("unknown"))
        );
        assert!(d.person.is_none());
        // A recognised resident refused (a cool-down) is named.
        let known = crate::publish::sample_event(
            "t3",
            Lifecycle::Update,
            Outcome::Match,
            Some("ann"),
            Some(deny),
        );
        let m = access(&s, &topics(), &known, stamp(2)).unwrap().unwrap();
        assert_eq!(
            verifier
                .check(&m.payload, 1_000.5)
                .unwrap()
                .person
                .unwrap()
                .id,
            "ann"
        );
        // No decision, no message.
        let none =
            crate::publish::sample_event("t4", Lifecycle::New, Outcome::Uncertain, None, None);
        assert!(access(&s, &topics(), &none, stamp(3)).is_none());
    }

    #[test]
    fn last_person_is_a_match_while_the_track_lasts() {
        let t = topics();
        let seen =
            crate::publish::sample_event("t1", Lifecycle::New, Outcome::Match, Some("ann"), None);
        let m = last_person(&t, &seen).unwrap();
        assert!(m.retain);
        assert_eq!(
            (json(&m)["id"].as_str(), json(&m)["event_id"].as_str()),
            (Some("ann"), Some("t1"))
        );
        let left =
            crate::publish::sample_event("t1", Lifecycle::End, Outcome::Match, Some("ann"), None);
        assert!(last_person(&t, &left).is_none());
        let unsure = crate::publish::sample_event(
            "t2",
            Lifecycle::New,
            Outcome::Uncertain,
            Some("ann"),
            None,
        );
        assert!(last_person(&t, &unsure).is_none());
    }

    #[test]
    fn pictures_are_best_effort_and_never_retained() {
        let t = topics();
        for m in [heatmap(&t, b"png"), face_crop(&t, b"jpeg")] {
            assert_eq!(
                (m.qos, m.retain, m.class),
                (QoS::AtMostOnce, false, Class::Latest)
            );
        }
    }

    #[test]
    fn a_refusal_answers_on_its_actions_response_topic() {
        let r = Refusal {
            transaction: Some("x1".into()),
            reason: "bad signature".into(),
        };
        let m = refusal(&topics(), "erase", &r);
        assert_eq!(m.topic, topics().response("erase"));
        assert_eq!(
            json(&m),
            serde_json::json!({"transaction": "x1", "ok": false, "error": "bad signature"})
        );
        assert_eq!(m.class, Class::Bulk);
        let (on, off) = (
            availability(&topics(), true),
            availability(&topics(), false),
        );
        assert_eq!(
            (&on.payload[..], &off.payload[..], on.retain),
            (&b"online"[..], &b"offline"[..], true)
        );
    }
}
