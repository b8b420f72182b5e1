//! The network thread: drives rumqttc's event loop (connect, reconnect with back-off from 1 s
//! to 30 s), feeds packet ids and acknowledgements to the sender's [`super::delivery`], and
//! screens what arrives from the broker before anything reads it.

use super::messages;
use super::{LinkState, MAX_ENROLL_REQUEST, MAX_REQUEST, Shared};
use crate::publish::access::unix_now;
use crate::publish::queues::{Class, Outgoing};
use crate::publish::ratelimit::{LogThrottle, TokenBucket};
use crate::publish::request::{Admission, Refusal};
use crate::publish::topics::Topics;
use rumqttc::{Client, Connection, Packet, QoS};
use std::time::{Duration, Instant};

/// Most accepted commands waiting for the main loop; beyond, requests are refused as busy.
const COMMAND_LIMIT: usize = 32;
/// How often `online` is re-asserted at most when the retained availability is seen `offline`
/// while connected (a last will that lost a race with the reconnect).
const HEAL_INTERVAL: Duration = Duration::from_secs(1);
/// The longest wait between two connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The discovery message as sent: its topic, Home Assistant's status topic (when announcing:
/// a restart of Home Assistant asks for it again) and the payload (empty to withdraw).
pub(super) struct Announcement {
    pub topic: String,
    pub status: Option<String>,
    pub payload: Vec<u8>,
}

pub(super) struct Network<'a> {
    pub shared: &'a Shared,
    pub topics: &'a Topics,
    pub where_: &'a str,
    pub client: Client,
    pub gate: Option<Box<dyn Admission>>,
    /// The discovery message sent on every connect.
    pub discovery: Announcement,
    /// Refusals answered at most at this rate.
    pub refusals: TokenBucket,
    pub refusal_log: LogThrottle,
    pub ignored_log: LogThrottle,
    /// When `online` was last re-asserted.
    pub healed: Option<Instant>,
}

/// The payload limit of a request topic's action.
fn request_limit(action: &str) -> usize {
    if action == "enroll" {
        MAX_ENROLL_REQUEST
    } else {
        MAX_REQUEST
    }
}

impl Network<'_> {
    /// Queues the retained discovery message, or its removal (on connect, and when Home
    /// Assistant restarts).
    fn announce(&self, s: &mut LinkState) {
        s.queues.push(Outgoing::new(
            Class::Latest,
            self.discovery.topic.clone(),
            self.discovery.payload.clone(),
            QoS::AtLeastOnce,
            true,
        ));
    }

    /// A message that is not read: counted, and logged at most once per [`super::LOG_EVERY`].
    fn ignore(&mut self, topic: &str, why: &str) {
        if let Some(n) = self.ignored_log.hit(Instant::now()) {
            tracing::warn!("ignored {n} message(s) from the broker; the latest on {topic}: {why}");
        }
    }

    /// A request arrived: refused ones are answered now (up to the refusal rate), accepted
    /// ones wait for the main loop.
    fn request(&mut self, topic: &str, payload: &[u8]) {
        let action = topic.rsplit('/').next().unwrap_or_default().to_owned();
        let Some(gate) = &mut self.gate else {
            return;
        };
        let limit = request_limit(&action);
        if payload.len() > limit {
            self.shared.lock().requests.oversized += 1;
            self.ignore(
                topic,
                &format!("{} bytes, over the limit of {limit}", payload.len()),
            );
            return;
        }
        let checked = gate.check(topic, payload, unix_now());
        let mut s = self.shared.lock();
        let refusal = match checked {
            Ok(command) if s.commands.len() < COMMAND_LIMIT => {
                s.requests.accepted += 1;
                s.commands.push_back(command);
                self.shared.changed.notify_all();
                return;
            }
            Ok(command) => Refusal {
                transaction: Some(command.transaction),
                reason: "busy: too many commands waiting".into(),
            },
            Err(r) => r,
        };
        s.requests.refused += 1;
        let now = Instant::now();
        // Answered up to the rate, and only while the answer does not push another out.
        if s.queues.bulk_has_room() && self.refusals.take(now) {
            s.queues
                .push(messages::refusal(self.topics, &action, &refusal));
            self.shared.changed.notify_all();
        } else {
            s.requests.unanswered += 1;
        }
        let counts = s.requests;
        drop(s);
        if let Some(n) = self.refusal_log.hit(now) {
            tracing::warn!(
                "refused {n} request(s); the latest on {topic}: {} (since start: {} refused, \
                 {} unanswered beyond the refusal rate)",
                refusal.reason,
                counts.refused,
                counts.unanswered
            );
        }
    }

    /// Our own retained availability came back as `offline` while we are connected (a last
    /// will published after our reconnect, or someone else's message): say `online` again,
    /// at most once per [`HEAL_INTERVAL`].
    fn heal(&mut self) {
        let now = Instant::now();
        if self
            .healed
            .is_some_and(|at| now.duration_since(at) < HEAL_INTERVAL)
        {
            return;
        }
        let mut s = self.shared.lock();
        if !s.connected || s.stop || s.stop_network {
            return;
        }
        self.healed = Some(now);
        s.queues.push(messages::availability(self.topics, true));
        tracing::info!("availability read `offline` while connected: `online` published again");
        self.shared.changed.notify_all();
    }

    fn incoming(&mut self, p: &rumqttc::Publish) {
        let topics = self.topics;
        if p.topic == topics.availability() {
            if &p.payload[..] == b"offline" {
                self.heal();
            }
            return;
        }
        let status = self.discovery.status.as_deref();
        let is_request = p.topic.starts_with(&topics.requests_prefix());
        if (is_request || status == Some(p.topic.as_str())) && p.retain {
            self.shared.lock().requests.retained += 1;
            self.ignore(&p.topic, "retained (only live messages are read here)");
            return;
        }
        if is_request {
            self.request(&p.topic, &p.payload);
        } else if status == Some(p.topic.as_str()) && &p.payload[..] == b"online" {
            let mut s = self.shared.lock();
            self.announce(&mut s);
            self.shared.changed.notify_all();
        }
    }

    /// Connected: announce the device before any queued event, and subscribe.
    fn connected(&mut self) {
        let (shared, topics) = (self.shared, self.topics);
        let mut s = shared.lock();
        s.connected = true;
        s.ever_connected = true;
        s.listening = false;
        s.last_error = None;
        let state = s.state.as_ref().map(|st| messages::state(topics, st));
        s.queues
            .connected(messages::availability(topics, true), state);
        self.announce(&mut s);
        // Requests first: the first SUBACK then means "listening".
        if self.gate.is_some() {
            let _ = self
                .client
                .try_subscribe(topics.requests(), QoS::AtLeastOnce);
        }
        if let Some(status) = &self.discovery.status {
            let _ = self.client.try_subscribe(status, QoS::AtLeastOnce);
        }
        let _ = self
            .client
            .try_subscribe(topics.availability(), QoS::AtMostOnce);
        tracing::info!("MQTT connected to {}", self.where_);
        shared.changed.notify_all();
    }

    /// The connection ended: what was in flight is abandoned (sent again after the reconnect).
    fn disconnected(s: &mut LinkState) {
        s.connected = false;
        s.delivery.abandon();
    }

    pub(super) fn run(&mut self, mut connection: Connection) {
        let shared = self.shared;
        let mut backoff = Duration::from_secs(1);
        // Blocking receive: rumqttc's poll must not be cancelled half-way (a timed-out poll can
        // drop a connection being made). The loop ends when every client handle is gone.
        while let Ok(event) = connection.recv() {
            match event {
                Ok(rumqttc::Event::Incoming(Packet::ConnAck(_))) => {
                    if shared.lock().stop_network {
                        // Connected only after the link was closed (while it was reconnecting):
                        // nobody will use or close this connection, so it is dropped; the
                        // broker's last will says `offline`.
                        return;
                    }
                    backoff = Duration::from_secs(1);
                    self.connected();
                }
                Ok(rumqttc::Event::Incoming(Packet::Publish(p))) => self.incoming(&p),
                Ok(rumqttc::Event::Incoming(Packet::SubAck(_))) => {
                    shared.lock().listening = true;
                    shared.changed.notify_all();
                }
                Ok(rumqttc::Event::Outgoing(rumqttc::Outgoing::Publish(pkid))) => {
                    shared.lock().delivery.written(pkid);
                }
                Ok(rumqttc::Event::Incoming(Packet::PubAck(ack))) => {
                    let mut s = shared.lock();
                    if !s.delivery.acknowledged(ack.pkid) {
                        tracing::debug!(
                            "PUBACK {} belongs to no message in flight ({} since start)",
                            ack.pkid,
                            s.delivery.foreign_acks()
                        );
                    }
                    shared.changed.notify_all();
                }
                Ok(rumqttc::Event::Outgoing(rumqttc::Outgoing::Disconnect)) => {
                    Self::disconnected(&mut shared.lock());
                    shared.changed.notify_all();
                    return;
                }
                Ok(_) => {}
                Err(e) => {
                    {
                        let mut s = shared.lock();
                        if s.stop_network {
                            return;
                        }
                        if s.connected || s.last_error.is_none() {
                            tracing::warn!(
                                "MQTT broker {}: {e}; events are queued on disk, retrying",
                                self.where_
                            );
                        }
                        Self::disconnected(&mut s);
                        s.last_error = Some(e.to_string());
                        shared.changed.notify_all();
                    }
                    let until = Instant::now() + backoff;
                    if shared
                        .wait_until(Some(until), |s| s.stop_network)
                        .stop_network
                    {
                        return;
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
}
