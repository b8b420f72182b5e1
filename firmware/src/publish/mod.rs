//! *publish*: events, heat maps and door decisions leave the device over MQTT. The pipeline
//! crate hands each event to a [`facegate_pipeline::sink::Sink`]; [`mqtt`] is the sink that
//! carries them to the broker, in order, door decisions first.

pub mod access;
pub mod discovery;
pub mod mqtt;
pub mod outbox;
pub mod presence;
pub mod queues;
pub mod ratelimit;
pub mod request;
pub mod state;
pub mod tls;
pub mod topics;

/// A minimal event for tests of what consumes events: track `id`, a `result` about `person`
/// (id; named "<id> Example"), no face, no scores.
#[cfg(test)]
pub(crate) fn sample_event(
    id: &str,
    lifecycle: facegate_pipeline::decide::Lifecycle,
    result: facegate_pipeline::event::Outcome,
    person: Option<&str>,
    access: Option<facegate_pipeline::decide::Access>,
) -> facegate_pipeline::event::Event {
    use facegate_pipeline::decide::Lifecycle;
    use facegate_pipeline::event::{EVENT_SCHEMA, Event, FrameRef, Latency, PersonRef};
    Event {
        schema: EVENT_SCHEMA,
        id: id.into(),
        seq: 1,
        time: String::new(),
        lifecycle,
        device: "door".into(),
        frame: FrameRef {
            seq: 0,
            origin: String::new(),
        },
        result,
        result_changed: lifecycle != Lifecycle::End,
        person: person.map(|p| PersonRef {
            id: p.into(),
            name: Some(format!("{p} Example")),
        }),
        scores: None,
        occluded: Vec::new(),
        regions: Vec::new(),
        face: None,
        agreeing_frames: 0,
        access,
        model_id: String::new(),
        latency_ms: Latency::default(),
    }
}
