//! What waits to leave the device besides the on-disk event queue, in which order, and what
//! gives way when a queue is full. Protocol state only: no network here, so the rules are
//! unit-tested; [`super::mqtt`] drives it.
//!
//! Order of sending, one message at a time:
//! 1. signed door decisions ([`Class::Access`]): always first, dropped only when they expire or
//!    when more than [`ACCESS_LIMIT`] wait (the oldest, which expires first);
//! 2. availability and state ([`Class::Control`]): the newest per topic, before events;
//! 3. then events (the on-disk queue) and everything else take turns, so neither can starve
//!    the other: responses and enrollment progress ([`Class::Reply`]), retained dashboards
//!    and discovery ([`Class::Latest`], the newest per topic), and best-effort messages
//!    ([`Class::Bulk`]: refusals, Frigate's mirror), in that order.
//!
//! Every queue is bounded and every message that gives way is counted in [`Dropped`].

use rumqttc::QoS;
use std::collections::VecDeque;
use std::time::Instant;

/// Most door decisions waiting (the oldest dropped; they expire in seconds anyway).
pub const ACCESS_LIMIT: usize = 16;
/// Most responses and enrollment verdicts waiting (the oldest dropped).
pub const REPLY_LIMIT: usize = 128;
/// Most best-effort messages waiting (the oldest dropped).
pub const BULK_LIMIT: usize = 32;
/// Most distinct retained topics waiting (each holds only its newest message).
pub const LATEST_LIMIT: usize = 16;

/// Where a message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// A signed door decision.
    Access,
    /// Availability and state: the newest per topic.
    Control,
    /// A response to an accepted command, or an enrollment verdict.
    Reply,
    /// A retained dashboard topic, discovery, a heat map or crop: the newest per topic.
    Latest,
    /// Refusals and mirrors: best effort.
    Bulk,
}

/// A message that does not go through the on-disk queue.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Topic.
    pub topic: String,
    /// Payload.
    pub payload: Vec<u8>,
    /// QoS.
    pub qos: QoS,
    /// Retained on the broker.
    pub retain: bool,
    /// Not sent after this (door decisions).
    pub expires: Option<Instant>,
    /// Its place in line.
    pub class: Class,
}

impl Outgoing {
    /// A message of `class` that never expires.
    pub fn new(class: Class, topic: String, payload: Vec<u8>, qos: QoS, retain: bool) -> Self {
        Self {
            topic,
            payload,
            qos,
            retain,
            expires: None,
            class,
        }
    }
}

/// Messages that gave way, by class, since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Dropped {
    /// Door decisions that expired or were pushed out by newer ones.
    pub access: u64,
    /// Responses and verdicts pushed out while the broker was away.
    pub replies: u64,
    /// Best-effort messages pushed out.
    pub bulk: u64,
    /// Retained-topic messages pushed out (too many distinct topics).
    pub latest: u64,
}

/// What the sender should do next.
#[derive(Debug)]
pub enum Next {
    /// Send this message.
    Send(Outgoing),
    /// Send the oldest queued event.
    Event,
    /// Nothing to send.
    Idle,
}

/// The queues of messages waiting for the broker.
#[derive(Debug, Default)]
pub struct Queues {
    access: VecDeque<Outgoing>,
    control: VecDeque<Outgoing>,
    reply: VecDeque<Outgoing>,
    latest: VecDeque<Outgoing>,
    bulk: VecDeque<Outgoing>,
    /// The last turn went to an event: the next goes to the other messages.
    event_had_turn: bool,
    dropped: Dropped,
}

fn bounded_push(q: &mut VecDeque<Outgoing>, m: Outgoing, limit: usize, dropped: &mut u64) {
    if q.len() >= limit {
        q.pop_front();
        *dropped += 1;
    }
    q.push_back(m);
}

impl Queues {
    /// Queues `m` in its class.
    pub fn push(&mut self, m: Outgoing) {
        match m.class {
            Class::Access => {
                bounded_push(&mut self.access, m, ACCESS_LIMIT, &mut self.dropped.access)
            }
            Class::Control => {
                self.control.retain(|o| o.topic != m.topic);
                self.control.push_back(m);
            }
            Class::Reply => {
                bounded_push(&mut self.reply, m, REPLY_LIMIT, &mut self.dropped.replies)
            }
            Class::Latest => {
                self.latest.retain(|o| o.topic != m.topic);
                bounded_push(&mut self.latest, m, LATEST_LIMIT, &mut self.dropped.latest);
            }
            Class::Bulk => bounded_push(&mut self.bulk, m, BULK_LIMIT, &mut self.dropped.bulk),
        }
    }

    /// Room for one more best-effort message without pushing another out.
    pub fn bulk_has_room(&self) -> bool {
        self.bulk.len() < BULK_LIMIT
    }

    /// Puts back a message the broker did not acknowledge, at the head of its queue, unless a
    /// newer message on the same topic replaced it meanwhile (control and retained topics).
    pub fn retry(&mut self, m: Outgoing) {
        let q = match m.class {
            Class::Access => &mut self.access,
            Class::Control => &mut self.control,
            Class::Reply => &mut self.reply,
            Class::Latest => &mut self.latest,
            Class::Bulk => &mut self.bulk,
        };
        let keyed = matches!(m.class, Class::Control | Class::Latest);
        if keyed && q.iter().any(|o| o.topic == m.topic) {
            return;
        }
        q.push_front(m);
    }

    /// A (re)connection: `online` first, then the state, ahead of everything but door
    /// decisions.
    pub fn connected(&mut self, availability: Outgoing, state: Option<Outgoing>) {
        self.control.clear();
        self.control.push_back(availability);
        if let Some(s) = state {
            self.control.push_back(s);
        }
    }

    /// The next thing to send; `event_waiting` tells whether the on-disk queue has an event.
    /// Door decisions past their expiry are dropped (and counted) here.
    pub fn next(&mut self, event_waiting: bool, now: Instant) -> Next {
        while let Some(m) = self.access.pop_front() {
            if m.expires.is_some_and(|e| now >= e) {
                self.dropped.access += 1;
                continue;
            }
            return Next::Send(m);
        }
        if let Some(m) = self.control.pop_front() {
            return Next::Send(m);
        }
        let other = !(self.reply.is_empty() && self.latest.is_empty() && self.bulk.is_empty());
        if event_waiting && (!other || !self.event_had_turn) {
            self.event_had_turn = true;
            return Next::Event;
        }
        self.event_had_turn = false;
        [&mut self.reply, &mut self.latest, &mut self.bulk]
            .into_iter()
            .find_map(VecDeque::pop_front)
            .map_or(Next::Idle, Next::Send)
    }

    /// Whether a message waits that a clean stop should deliver: a door decision not yet
    /// expired at `now`, availability or state, a response or verdict (best-effort messages are
    /// not waited for).
    pub fn has_essential(&self, now: Instant) -> bool {
        self.access
            .iter()
            .any(|m| m.expires.is_none_or(|e| now < e))
            || !self.control.is_empty()
            || !self.reply.is_empty()
    }

    /// Whether nothing but events waits.
    pub fn is_empty(&self) -> bool {
        self.access.is_empty()
            && self.control.is_empty()
            && self.reply.is_empty()
            && self.latest.is_empty()
            && self.bulk.is_empty()
    }

    /// Messages that gave way since start.
    pub fn dropped(&self) -> Dropped {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::time::Duration;

    fn msg(class: Class, topic: &str, n: u8) -> Outgoing {
        Outgoing::new(class, topic.into(), vec![n], QoS::AtLeastOnce, false)
    }

    fn sent(q: &mut Queues, events: bool) -> Option<(String, u8)> {
        match q.next(events, Instant::now()) {
            Next::Send(m) => Some((m.topic, m.payload[0])),
            Next::Event => Some(("EVENT".into(), 0)),
            Next::Idle => None,
        }
    }

    #[test]
    fn door_decisions_and_availability_go_first_and_no_flood_pushes_them_out() {
        let mut q = Queues::default();
        for i in 0..200 {
            q.push(msg(Class::Bulk, "refusal", i));
            q.push(msg(Class::Reply, "response", i));
            q.push(msg(Class::Latest, "heatmap", i));
        }
        q.push(msg(Class::Control, "state", 1));
        q.push(msg(Class::Access, "access", 7));
        q.connected(
            msg(Class::Control, "availability", 9),
            Some(msg(Class::Control, "state", 2)),
        );
        for i in 0..300 {
            q.push(msg(Class::Bulk, "refusal", i as u8));
        }
        assert_eq!(sent(&mut q, true), Some(("access".into(), 7)));
        assert_eq!(sent(&mut q, true), Some(("availability".into(), 9)));
        assert_eq!(sent(&mut q, true), Some(("state".into(), 2)));
        // Events and the rest take turns.
        assert_eq!(sent(&mut q, true).unwrap().0, "EVENT");
        assert_eq!(sent(&mut q, true).unwrap().0, "response");
        assert_eq!(sent(&mut q, true).unwrap().0, "EVENT");
        assert_eq!(q.dropped().bulk, 500 - BULK_LIMIT as u64);
        assert_eq!(q.dropped().replies, 200 - REPLY_LIMIT as u64);
        assert_eq!(q.dropped().latest, 0, "one topic keeps only its newest");
    }

    #[test]
    fn expired_decisions_are_dropped_and_counted_and_a_retry_keeps_its_place() {
        let mut q = Queues::default();
        let mut old = msg(Class::Access, "access", 1);
        old.expires = Some(Instant::now() - Duration::from_millis(1));
        q.push(old);
        q.push(msg(Class::Access, "access", 2));
        q.push(msg(Class::Access, "access", 3));
        let Next::Send(m) = q.next(false, Instant::now()) else {
            panic!("expected a decision")
        };
        assert_eq!(m.payload, [2]);
        assert_eq!(q.dropped().access, 1);
        assert!(q.has_essential(Instant::now()), "decision 3 waits");
        q.retry(m);
        assert_eq!(sent(&mut q, false), Some(("access".into(), 2)));
        assert_eq!(sent(&mut q, false), Some(("access".into(), 3)));
        // A retried state gives way to a newer one.
        q.push(msg(Class::Control, "state", 5));
        q.retry(msg(Class::Control, "state", 4));
        assert_eq!(sent(&mut q, false), Some(("state".into(), 5)));
        assert_eq!(sent(&mut q, false), None);
        assert!(q.is_empty());
        for i in 0..(ACCESS_LIMIT as u8 + 3) {
            q.push(msg(Class::Access, "access", i));
        }
        assert_eq!(q.dropped().access, 4);
        assert_eq!(sent(&mut q, false), Some(("access".into(), 3)));
    }

    #[test]
    fn events_alone_are_sent_back_to_back() {
        let mut q = Queues::default();
        assert_eq!(sent(&mut q, true).unwrap().0, "EVENT");
        assert_eq!(sent(&mut q, true).unwrap().0, "EVENT");
        q.push(msg(Class::Latest, "presence", 1));
        q.push(msg(Class::Latest, "presence", 2));
        let order: Vec<_> = (0..4).filter_map(|_| sent(&mut q, true)).collect();
        assert_eq!(
            order.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>(),
            ["presence", "EVENT", "EVENT", "EVENT"]
        );
        assert_eq!(order[0].1, 2, "only the newest presence is sent");
    }
}
