//! Publishing over MQTT (rumqttc), with nothing lost while the broker is away.
//!
//! Two threads: the *network* thread drives rumqttc's event loop (connect, reconnect with
//! back-off from 1 s to 30 s, acknowledgements); the *sender* thread is the only publisher. It
//! sends one QoS 1 message at a time and waits for its acknowledgement, so order is kept and a
//! message leaves the on-disk [`Outbox`] only once the broker has it. Events therefore arrive
//! at least once and in order; after a reconnect one may arrive twice (consumers drop an event
//! whose `seq` they have seen).
//!
//! On connect the device publishes `availability` = `online` and its `state` (both retained);
//! the broker publishes the retained last will `offline` if the device vanishes, and the device
//! publishes `offline` itself on a clean shutdown. Heat maps are best-effort (QoS 0, not
//! retained: a face picture should not linger on the broker).
//!
//! Access decisions (see [`super::access`]) are signed and sent ahead of queued events, but
//! never written to the on-disk queue: one still unsent when it expires is dropped. What else
//! waits, and in which order, is [`super::queues`]: door decisions first, then availability and
//! state, then events taking turns with everything else, every queue bounded.
//!
//! Incoming messages are untrusted: a payload over its topic's limit is dropped unread (the
//! client reads packets up to [`MAX_INCOMING`], far above any limit, so an oversized message
//! never costs the connection), retained messages on the request and Home Assistant status
//! topics are ignored (a stale or planted request must not run at every reconnect), refusals
//! are answered only up to a rate and counted beyond it, and their log lines are throttled.

use super::access::{AccessDecision, AccessSigner, Verdict, unix_now};
use super::event::{Event, Outcome};
use super::outbox::{Counter, Outbox, OutboxError};
use super::presence::Presence;
use super::queues::{Class, Dropped, Next, Outgoing, Queues};
use super::ratelimit::{LogThrottle, TokenBucket};
use super::request::{Admission, Command, Refusal};
use super::topics::Topics;
use super::{PublishError, Sink};
use rumqttc::{Client, Connection, LastWill, MqttOptions, Packet, QoS};
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How the device reaches its broker.
#[derive(Debug, Clone)]
pub struct MqttSettings {
    /// Broker host.
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// Client id.
    pub client_id: String,
    /// User name and password, if the broker wants them.
    pub credentials: Option<(String, String)>,
    /// Keep-alive interval.
    pub keep_alive: Duration,
    /// What Home Assistant is told about the device.
    pub discovery: Discovery,
    /// TLS, when the broker is reached over it.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Refused requests answered per second at most (twice as many in a burst); the rest are
    /// counted and not answered.
    pub refusals_per_second: f64,
}

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

/// Most accepted commands waiting for the main loop; beyond, requests are refused as busy.
const COMMAND_LIMIT: usize = 32;
/// How long the sender waits for one acknowledgement before sending again.
const ACK_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest packet the client reads. Far above every payload limit below, so that an oversized
/// message is read and dropped instead of failing the connection (which a retained one would
/// do again at every reconnect); the broker's own limit should be lower (README, deployment).
pub const MAX_INCOMING: usize = 64 * 1024 * 1024;
/// Largest packet the device sends (heat maps and crops are tens of kilobytes).
const MAX_OUTGOING: usize = 4 * 1024 * 1024;
/// Largest `enroll` request read (photos base64-encoded in the JSON): 16 MiB in all.
pub const MAX_ENROLL_REQUEST: usize = 16 * 1024 * 1024;
/// Largest request of any other action read.
pub const MAX_REQUEST: usize = 64 * 1024;
/// How often `online` is re-asserted at most when the retained availability is seen `offline`
/// while connected (a last will that lost a race with the reconnect).
const HEAL_INTERVAL: Duration = Duration::from_secs(1);
/// At most one log line per this about refused or dropped requests.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// What became of requests from the broker, since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RequestCounts {
    /// Passed the gate and queued for the main loop.
    pub accepted: u64,
    /// Refused (bad, unsigned, stale, replayed, busy), answered or not.
    pub refused: u64,
    /// Refused without an answer: beyond the refusal rate.
    pub unanswered: u64,
    /// Over their topic's size limit: dropped unread.
    pub oversized: u64,
    /// Retained on the broker: ignored.
    pub retained: u64,
}

#[derive(Debug, Default)]
struct LinkState {
    connected: bool,
    session: u64,
    acks: u64,
    stop: bool,
    stop_network: bool,
    queues: Queues,
    /// The sender has a message out and waits for its acknowledgement.
    sending: bool,
    requests: RequestCounts,
    /// The retained state, once set.
    state: Option<serde_json::Value>,
    commands: VecDeque<Command>,
    listening: bool,
    ever_connected: bool,
    last_error: Option<String>,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<LinkState>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, LinkState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wait_until(
        &self,
        deadline: Option<Instant>,
        mut done: impl FnMut(&LinkState) -> bool,
    ) -> MutexGuard<'_, LinkState> {
        let mut s = self.lock();
        while !done(&s) {
            let wait = deadline.map_or(Duration::from_millis(500), |d| {
                d.saturating_duration_since(Instant::now())
            });
            if wait.is_zero() {
                break;
            }
            s = self
                .changed
                .wait_timeout(s, wait.min(Duration::from_millis(500)))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        s
    }
}

/// The device's MQTT link: a [`Sink`] for events, plus availability and state.
pub struct MqttLink {
    client: Client,
    shared: Arc<Shared>,
    outbox: Arc<Mutex<Outbox>>,
    topics: Topics,
    network: Option<JoinHandle<()>>,
    sender: Option<JoinHandle<()>>,
    access: Option<AccessSettings>,
    presence: Presence,
    frigate: Option<FrigateMirror>,
    /// Events since start that will never reach the broker (see the state's `events_dropped`).
    events_dropped: u64,
    /// Log lines about events that could not be queued.
    queue_log: LogThrottle,
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
    /// The mirrored message for `event`: for a match (the display name, or the id when names
    /// are withheld) and for an unknown face (`name: null`, the best candidate's score if
    /// any); none for `uncertain`, `low_quality` and a track's `end`.
    pub fn message(&self, event: &Event) -> Option<serde_json::Value> {
        if event.lifecycle == crate::decide::Lifecycle::End {
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
        Some(serde_json::json!({
            "type": "face",
            "id": event.id,
            "name": name,
            "score": event.scores.as_ref().map(|s| s.score),
            "camera": self.camera,
            "timestamp": unix_now(),
        }))
    }
}

impl std::fmt::Debug for MqttLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttLink")
            .field("topics", &self.topics)
            .finish()
    }
}

fn lock_outbox(outbox: &Mutex<Outbox>) -> MutexGuard<'_, Outbox> {
    outbox.lock().unwrap_or_else(PoisonError::into_inner)
}

impl MqttLink {
    /// Starts the link: connects in the background (the device runs whether or not the broker
    /// is there) and sends what `outbox` holds, then every new event, in order.
    pub fn start(
        settings: &MqttSettings,
        topics: Topics,
        outbox: Outbox,
        gate: Option<Box<dyn Admission>>,
    ) -> Self {
        let mut opts = MqttOptions::new(&settings.client_id, &settings.host, settings.port);
        opts.set_keep_alive(settings.keep_alive);
        opts.set_clean_session(true);
        opts.set_max_packet_size(MAX_INCOMING, MAX_OUTGOING);
        opts.set_last_will(LastWill::new(
            topics.availability(),
            "offline",
            QoS::AtLeastOnce,
            true,
        ));
        if let Some((user, pass)) = &settings.credentials {
            opts.set_credentials(user, pass);
        }
        if let Some(tls) = &settings.tls {
            opts.set_transport(rumqttc::Transport::tls_with_config(
                rumqttc::TlsConfiguration::Rustls(Arc::clone(tls)),
            ));
        }
        let (client, connection) = Client::new(opts, 64);
        let shared = Arc::new(Shared::default());
        let outbox = Arc::new(Mutex::new(outbox));
        let network = {
            let shared = Arc::clone(&shared);
            let topics = topics.clone();
            let where_ = format!("{}:{}", settings.host, settings.port);
            let client = client.clone();
            let device = topics
                .base()
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_owned();
            let discovery = match &settings.discovery {
                Discovery::Announce { prefix, name } => Announcement {
                    topic: super::discovery::topic(prefix, &device),
                    status: Some(super::discovery::status_topic(prefix)),
                    payload: super::discovery::payload(&topics, &device, name)
                        .to_string()
                        .into_bytes(),
                },
                Discovery::Withdraw { prefix } => Announcement {
                    topic: super::discovery::topic(prefix, &device),
                    status: None,
                    payload: Vec::new(),
                },
            };
            let refusals = TokenBucket::new(
                settings.refusals_per_second,
                2.0 * settings.refusals_per_second,
                Instant::now(),
            );
            std::thread::spawn(move || {
                let mut net = Network {
                    shared: &shared,
                    topics: &topics,
                    where_: &where_,
                    client,
                    gate,
                    discovery,
                    refusals,
                    refusal_log: LogThrottle::new(LOG_EVERY),
                    ignored_log: LogThrottle::new(LOG_EVERY),
                    healed: None,
                };
                net.run(connection);
            })
        };
        let sender = {
            let shared = Arc::clone(&shared);
            let outbox = Arc::clone(&outbox);
            let client = client.clone();
            std::thread::spawn(move || sender_loop(&client, &shared, &outbox))
        };
        Self {
            client,
            shared,
            outbox,
            topics,
            network: Some(network),
            sender: Some(sender),
            access: None,
            presence: Presence::default(),
            frigate: None,
            events_dropped: 0,
            queue_log: LogThrottle::new(LOG_EVERY),
        }
    }

    /// Counts events that will never reach the broker, in the retained state too.
    fn count_dropped(&mut self, n: u64) {
        self.events_dropped += n;
        let mut s = self.shared.lock();
        let Some(state) = s.state.as_mut() else {
            return;
        };
        state["events_dropped"] = self.events_dropped.into();
        let message = state_message(&self.topics, state);
        s.queues.push(message);
        self.shared.changed.notify_all();
    }

    /// Events since start that will never reach the broker.
    pub fn events_dropped(&self) -> u64 {
        self.events_dropped
    }

    /// Mirrors recognitions as Frigate `tracked_object_update` messages (QoS 0, not retained).
    pub fn enable_frigate(&mut self, mirror: FrigateMirror) {
        self.frigate = Some(mirror);
    }

    /// Publishes a signed decision on `.../access` with every event that takes one.
    pub fn enable_access(&mut self, settings: AccessSettings) {
        self.access = Some(settings);
    }

    /// The signed wire form of `event`'s door decision.
    fn access_message(&self, settings: &AccessSettings, event: &Event) -> Option<Outgoing> {
        let access = event.access.as_ref()?;
        let (decision, reason) = match access {
            crate::decide::Access::Grant { .. } => (Verdict::Grant, None),
            crate::decide::Access::Deny { reason } => (Verdict::Deny, Some(reason.clone())),
        };
        // A denial names the person only when one was recognised (a cool-down), never the
        // nearest stranger's candidate.
        let person = (decision == Verdict::Grant || event.result == Outcome::Match)
            .then(|| event.person.clone())
            .flatten();
        let seq = match lock_outbox(&self.outbox).next_of(Counter::Access) {
            Ok(seq) => seq,
            Err(e) => {
                tracing::error!("access decision not sent: {e}");
                return None;
            }
        };
        let now = unix_now();
        let decision = AccessDecision {
            schema: super::access::ACCESS_SCHEMA,
            device: settings.device.clone(),
            seq,
            nonce: facegate_contract::fsutil::hex(&crate::secret::random::<16>()),
            issued_at: now,
            expires_at: now + settings.valid.as_secs_f64(),
            decision,
            person,
            reason,
            event_id: event.id.clone(),
        };
        let signed = settings
            .signer
            .sign(&decision)
            .and_then(|m| serde_json::to_vec(&m));
        match signed {
            Ok(payload) => Some(Outgoing {
                expires: Some(Instant::now() + settings.valid),
                ..Outgoing::new(
                    Class::Access,
                    self.topics.access(),
                    payload,
                    QoS::AtLeastOnce,
                    false,
                )
            }),
            Err(e) => {
                tracing::error!("access decision not sent: {e}");
                None
            }
        }
    }

    /// The topics in use.
    pub fn topics(&self) -> &Topics {
        &self.topics
    }

    /// Sets the retained device state, published now and on every (re)connect.
    pub fn set_state(&self, state: &serde_json::Value) {
        let mut s = self.shared.lock();
        s.state = Some(state.clone());
        s.queues.push(state_message(&self.topics, state));
        self.shared.changed.notify_all();
    }

    /// The inbox of accepted commands, for the main loop.
    pub fn commands(&self) -> CommandInbox {
        CommandInbox {
            shared: Arc::clone(&self.shared),
            topics: self.topics.clone(),
        }
    }

    /// Whether the device is subscribed to its request topics now.
    pub fn listening(&self) -> bool {
        self.shared.lock().listening
    }

    /// Whether the broker is connected now.
    pub fn is_connected(&self) -> bool {
        self.shared.lock().connected
    }

    /// What became of requests from the broker so far.
    pub fn request_counts(&self) -> RequestCounts {
        self.shared.lock().requests
    }

    /// Messages other than events that gave way so far.
    pub fn dropped(&self) -> Dropped {
        self.shared.lock().queues.dropped()
    }

    /// Events still waiting for the broker.
    pub fn queued(&self) -> Result<usize, OutboxError> {
        lock_outbox(&self.outbox).len()
    }

    /// Stops the link: waits up to `drain` for queued events to reach the broker (what is
    /// left stays on disk for the next start), publishes `offline` and disconnects.
    pub fn close(mut self, drain: Duration) -> Result<usize, OutboxError> {
        let deadline = Instant::now() + drain;
        loop {
            let left = lock_outbox(&self.outbox).len()?;
            let (connected, ever, failed, essential) = {
                let s = self.shared.lock();
                (
                    s.connected,
                    s.ever_connected,
                    s.last_error.is_some(),
                    s.queues.has_essential(Instant::now()) || s.sending,
                )
            };
            // A broker never reached in this run is not waited for (the events stay queued);
            // one that went away may come back within the drain time. Door decisions, state
            // and responses still waiting are waited for like events.
            let hopeless = !connected && !ever && failed;
            if (left == 0 && !essential) || Instant::now() >= deadline || hopeless {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        {
            let mut s = self.shared.lock();
            s.stop = true;
            self.shared.changed.notify_all();
        }
        if let Some(h) = self.sender.take() {
            let _ = h.join();
        }
        // Read under the same lock that stops the network: a connection made after this is
        // dropped by the network thread itself, one made before is closed below.
        let connected = {
            let mut s = self.shared.lock();
            s.stop_network = true;
            self.shared.changed.notify_all();
            s.connected
        };
        if connected {
            let acks = self.shared.lock().acks;
            let _ = self.client.publish(
                self.topics.availability(),
                QoS::AtLeastOnce,
                true,
                "offline",
            );
            drop(
                self.shared
                    .wait_until(Some(Instant::now() + Duration::from_secs(2)), |s| {
                        s.acks > acks || !s.connected
                    }),
            );
            let _ = self.client.disconnect();
        }
        let left = lock_outbox(&self.outbox).len();
        // Dropping the last client handle ends the network loop if it is still reconnecting.
        let network = self.network.take();
        drop(self);
        if let Some(h) = network {
            let _ = h.join();
        }
        left
    }
}

/// Accepted commands waiting to run, and the way their responses leave.
#[derive(Debug, Clone)]
pub struct CommandInbox {
    shared: Arc<Shared>,
    topics: Topics,
}

impl CommandInbox {
    /// Every command waiting, oldest first.
    pub fn take(&self) -> Vec<Command> {
        self.shared.lock().commands.drain(..).collect()
    }

    /// Publishes one enrollment verdict on `.../enroll/progress` (QoS 1, not retained; while
    /// the broker is away at most [`super::queues::REPLY_LIMIT`] responses and verdicts wait).
    pub fn progress(&self, body: &serde_json::Value) {
        self.reply(self.topics.enroll_progress(), body);
    }

    /// The gallery changed (an enrollment, an erasure): the retained state's counts are
    /// updated and re-published when they differ, so dashboards never show a stale count.
    pub fn gallery_changed(&self, people: usize, templates: usize) {
        let mut s = self.shared.lock();
        let Some(state) = s.state.as_mut() else {
            return;
        };
        let now = (
            serde_json::Value::from(people),
            serde_json::Value::from(templates),
        );
        if (state.get("people"), state.get("templates")) == (Some(&now.0), Some(&now.1)) {
            return;
        }
        state["people"] = now.0;
        state["templates"] = now.1;
        let message = state_message(&self.topics, state);
        s.queues.push(message);
        self.shared.changed.notify_all();
    }

    /// Publishes the response to `command`.
    pub fn respond(&self, command: &Command, body: &serde_json::Value) {
        self.reply(self.topics.response(&command.action), body);
    }

    fn reply(&self, topic: String, body: &serde_json::Value) {
        let mut s = self.shared.lock();
        s.queues.push(Outgoing::new(
            Class::Reply,
            topic,
            body.to_string().into_bytes(),
            QoS::AtLeastOnce,
            false,
        ));
        self.shared.changed.notify_all();
    }
}

/// What Home Assistant is told about the device (`[home_assistant]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Discovery {
    /// Announce the device and its entities.
    Announce {
        /// Home Assistant's discovery prefix.
        prefix: String,
        /// The device's display name.
        name: String,
    },
    /// Discovery is off: an empty retained message removes the device that an earlier run
    /// may have announced.
    Withdraw {
        /// Home Assistant's discovery prefix.
        prefix: String,
    },
}

/// The discovery message as sent: its topic, Home Assistant's status topic (when announcing:
/// a restart of Home Assistant asks for it again) and the payload (empty to withdraw).
struct Announcement {
    topic: String,
    status: Option<String>,
    payload: Vec<u8>,
}

struct Network<'a> {
    shared: &'a Shared,
    topics: &'a Topics,
    where_: &'a str,
    client: Client,
    gate: Option<Box<dyn Admission>>,
    /// The discovery message sent on every connect.
    discovery: Announcement,
    /// Refusals answered at most at this rate.
    refusals: TokenBucket,
    refusal_log: LogThrottle,
    ignored_log: LogThrottle,
    /// When `online` was last re-asserted.
    healed: Option<Instant>,
}

/// The retained state message for `state`.
fn state_message(topics: &Topics, state: &serde_json::Value) -> Outgoing {
    Outgoing::new(
        Class::Control,
        topics.state(),
        state.to_string().into_bytes(),
        QoS::AtLeastOnce,
        true,
    )
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

    /// A message that is not read: counted, and logged at most once per [`LOG_EVERY`].
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
            let body = serde_json::json!({
                "transaction": refusal.transaction,
                "ok": false,
                "error": refusal.reason,
            });
            s.queues.push(Outgoing::new(
                Class::Bulk,
                self.topics.response(&action),
                body.to_string().into_bytes(),
                QoS::AtLeastOnce,
                false,
            ));
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
        s.queues.push(Outgoing::new(
            Class::Control,
            self.topics.availability(),
            b"online".to_vec(),
            QoS::AtLeastOnce,
            true,
        ));
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

    fn run(&mut self, mut connection: Connection) {
        let (shared, topics, where_) = (self.shared, self.topics, self.where_);
        let mut backoff = Duration::from_secs(1);
        // Blocking receive: rumqttc's poll must not be cancelled half-way (a timed-out poll can
        // drop a connection being made). The loop ends when every client handle is gone.
        while let Ok(event) = connection.recv() {
            match event {
                Ok(rumqttc::Event::Incoming(Packet::ConnAck(_))) => {
                    let mut s = shared.lock();
                    if s.stop_network {
                        // Connected only after the link was closed (while it was reconnecting):
                        // nobody will use or close this connection, so it is dropped; the
                        // broker's last will says `offline`.
                        return;
                    }
                    s.connected = true;
                    s.ever_connected = true;
                    s.listening = false;
                    s.session += 1;
                    s.last_error = None;
                    backoff = Duration::from_secs(1);
                    // Announce ourselves first, before any queued event.
                    let online = Outgoing::new(
                        Class::Control,
                        topics.availability(),
                        b"online".to_vec(),
                        QoS::AtLeastOnce,
                        true,
                    );
                    let state = s.state.as_ref().map(|st| state_message(topics, st));
                    s.queues.connected(online, state);
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
                    tracing::info!("MQTT connected to {where_}");
                    shared.changed.notify_all();
                }
                Ok(rumqttc::Event::Incoming(Packet::Publish(p))) => self.incoming(&p),
                Ok(rumqttc::Event::Incoming(Packet::SubAck(_))) => {
                    shared.lock().listening = true;
                    shared.changed.notify_all();
                }
                Ok(rumqttc::Event::Incoming(Packet::PubAck(_))) => {
                    let mut s = shared.lock();
                    s.acks += 1;
                    shared.changed.notify_all();
                }
                Ok(rumqttc::Event::Outgoing(rumqttc::Outgoing::Disconnect)) => {
                    let mut s = shared.lock();
                    s.connected = false;
                    s.session += 1;
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
                                "MQTT broker {where_}: {e}; events are queued on disk, retrying"
                            );
                        }
                        s.connected = false;
                        s.session += 1;
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
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    }
}

/// Publishes `payload` and waits for its acknowledgement (QoS 1) or for the session to end;
/// `None` when the client is gone, else whether the broker has it.
fn send_one(
    client: &Client,
    shared: &Shared,
    session: u64,
    topic: &str,
    qos: QoS,
    retain: bool,
    payload: Vec<u8>,
) -> Option<bool> {
    let acks = shared.lock().acks;
    client.publish(topic, qos, retain, payload).ok()?;
    if qos == QoS::AtMostOnce {
        return Some(true);
    }
    let s = shared.wait_until(Some(Instant::now() + ACK_TIMEOUT), |s| {
        s.acks > acks || s.session != session || s.stop
    });
    tracing::debug!(
        "sent {topic} (acks {acks} -> {}, session {session} -> {})",
        s.acks,
        s.session
    );
    Some(s.acks > acks)
}

fn sender_loop(client: &Client, shared: &Shared, outbox: &Mutex<Outbox>) {
    loop {
        let event = match lock_outbox(outbox).peek() {
            Ok(n) => n,
            Err(e) => {
                tracing::error!("{e}");
                None
            }
        };
        let (session, next) = {
            let mut s = shared.wait_until(None, |s| s.stop || s.connected);
            if s.stop {
                return;
            }
            let next = s.queues.next(event.is_some(), Instant::now());
            s.sending = !matches!(next, Next::Idle);
            (s.session, next)
        };
        match next {
            Next::Send(m) => {
                let Some(acked) = send_one(
                    client,
                    shared,
                    session,
                    &m.topic,
                    m.qos,
                    m.retain,
                    m.payload.clone(),
                ) else {
                    return;
                };
                let mut s = shared.lock();
                if !acked && !s.stop {
                    // Not acknowledged: at the head of its queue again after the reconnect.
                    s.queues.retry(m);
                }
                s.sending = false;
            }
            Next::Event => {
                let Some(m) = event else {
                    shared.lock().sending = false;
                    continue;
                };
                let Some(acked) = send_one(
                    client,
                    shared,
                    session,
                    &m.topic,
                    QoS::AtLeastOnce,
                    false,
                    m.payload,
                ) else {
                    return;
                };
                if acked && let Err(e) = lock_outbox(outbox).remove(m.id) {
                    tracing::error!("{e}");
                }
                shared.lock().sending = false;
            }
            Next::Idle => {
                // Nothing to send: wait for news.
                let s = shared.lock();
                if s.queues.is_empty() && !s.stop {
                    drop(
                        shared
                            .changed
                            .wait_timeout(s, Duration::from_millis(200))
                            .unwrap_or_else(PoisonError::into_inner),
                    );
                }
            }
        }
    }
}

impl Sink for MqttLink {
    fn face_crop(&mut self, _event: &Event, jpeg: &[u8]) {
        let mut s = self.shared.lock();
        s.queues.push(Outgoing::new(
            Class::Latest,
            self.topics.face(),
            jpeg.to_vec(),
            QoS::AtMostOnce,
            false,
        ));
        self.shared.changed.notify_all();
    }

    fn frame_done(&mut self) {
        let Some(state) = self.presence.due(Instant::now()) else {
            return;
        };
        let Ok(payload) = serde_json::to_vec(&state) else {
            return;
        };
        let mut s = self.shared.lock();
        s.queues.push(Outgoing::new(
            Class::Latest,
            self.topics.presence(),
            payload,
            QoS::AtLeastOnce,
            true,
        ));
        self.shared.changed.notify_all();
    }

    fn next_seq(&mut self) -> Option<u64> {
        match lock_outbox(&self.outbox).next_seq() {
            Ok(seq) => Some(seq),
            Err(e) => {
                tracing::error!("{e}");
                None
            }
        }
    }

    fn publish(&mut self, event: &Event, heatmap: Option<&[u8]>) -> Result<(), PublishError> {
        let json = serde_json::to_vec(event).map_err(|e| PublishError::Io {
            what: "event JSON".into(),
            source: e.into(),
        })?;
        // The door decision first: it waits for nothing, not even the event's write to disk.
        let access = self
            .access
            .as_ref()
            .and_then(|settings| self.access_message(settings, event));
        if let Some(t) = access {
            self.shared.lock().queues.push(t);
            self.shared.changed.notify_all();
        }
        // A queue that cannot take the event (a full disk that dropping old events did not
        // relieve) loses this event, counted; the door goes on deciding.
        let queued = lock_outbox(&self.outbox).push(&self.topics.events(), &json);
        match queued {
            Ok(0) => {}
            Ok(dropped) => self.count_dropped(dropped as u64),
            Err(e) => {
                if let Some(n) = self.queue_log.hit(Instant::now()) {
                    tracing::error!(
                        "{e}: {n} event(s) not queued for the broker; deciding goes on"
                    );
                }
                self.count_dropped(1);
            }
        }
        let mut s = self.shared.lock();
        self.presence.observe(event);
        if let (Outcome::Match, Some(person)) = (event.result, &event.person)
            && event.lifecycle != crate::decide::Lifecycle::End
        {
            let last = serde_json::json!({
                "id": person.id,
                "name": person.name,
                "time": event.time,
                "event_id": event.id,
            });
            s.queues.push(Outgoing::new(
                Class::Latest,
                self.topics.last_person(),
                last.to_string().into_bytes(),
                QoS::AtLeastOnce,
                true,
            ));
        }
        if let Some(f) = &self.frigate
            && let Some(m) = f.message(event)
        {
            s.queues.push(Outgoing::new(
                Class::Bulk,
                f.topic.clone(),
                m.to_string().into_bytes(),
                QoS::AtMostOnce,
                false,
            ));
        }
        if let Some(png) = heatmap {
            s.queues.push(Outgoing::new(
                Class::Latest,
                self.topics.heatmap(),
                png.to_vec(),
                QoS::AtMostOnce,
                false,
            ));
        }
        self.shared.changed.notify_all();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::decide::Lifecycle;

    #[test]
    fn frigate_hears_of_recognised_and_unknown_faces_as_frigate_sends_them() {
        let mirror = FrigateMirror {
            topic: "frigate/tracked_object_update".into(),
            camera: "door".into(),
        };
        let known = Event::sample("t1", Lifecycle::New, Outcome::Match, Some("ann"), None);
        let m = mirror.message(&known).unwrap();
        assert_eq!(
            (&m["type"], &m["name"]),
            (&"face".into(), &"ann Example".into())
        );
        assert_eq!(m["id"], "t1");
        let stranger = Event::sample("t2", Lifecycle::New, Outcome::Unknown, None, None);
        let m = mirror.message(&stranger).unwrap();
        assert!(m["name"].is_null(), "{m}");
        assert_eq!(m["camera"], "door");
        let ended = Event::sample("t1", Lifecycle::End, Outcome::Match, Some("ann"), None);
        assert!(mirror.message(&ended).is_none());
        let unsure = Event::sample("t3", Lifecycle::New, Outcome::Uncertain, Some("ann"), None);
        assert!(mirror.message(&unsure).is_none());
    }
}
