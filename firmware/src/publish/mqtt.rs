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
//! never written to the on-disk queue: one still unsent when it expires is dropped.

use super::access::{AccessDecision, AccessSigner, Verdict, unix_now};
use super::event::{Event, Outcome};
use super::outbox::{Counter, Outbox, OutboxError};
use super::presence::Presence;
use super::topics::Topics;
use super::{PublishError, Sink};
use crate::command::{Command, Gate};
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
    /// Home Assistant discovery: the discovery prefix and the device's display name.
    pub discovery: Option<(String, String)>,
    /// TLS, when the broker is reached over it.
    pub tls: Option<Arc<rustls::ClientConfig>>,
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

/// A message that is not queued on disk.
#[derive(Debug, Clone)]
struct Transient {
    topic: String,
    payload: Vec<u8>,
    qos: QoS,
    retain: bool,
    /// Access decisions only: not sent after this.
    expires: Option<Instant>,
}

impl Transient {
    fn new(topic: String, payload: Vec<u8>, qos: QoS, retain: bool) -> Self {
        Self {
            topic,
            payload,
            qos,
            retain,
            expires: None,
        }
    }
}

/// Most accepted commands waiting for the main loop; beyond, requests are refused as busy.
const COMMAND_LIMIT: usize = 32;
/// Most enrollment verdicts held while disconnected.
pub const PROGRESS_LIMIT: usize = 64;
/// Most transient messages held while disconnected (newest kept).
const TRANSIENT_LIMIT: usize = 8;
/// How long the sender waits for one acknowledgement before sending again.
const ACK_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Default)]
struct LinkState {
    connected: bool,
    session: u64,
    acks: u64,
    stop: bool,
    stop_network: bool,
    transient: VecDeque<Transient>,
    state_payload: Vec<u8>,
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
}

/// Recognitions mirrored as Frigate `tracked_object_update` messages, for automations written
/// against Frigate's face recognition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrigateMirror {
    /// Where they go (Frigate's own is `frigate/tracked_object_update`).
    pub topic: String,
    /// The `camera` field.
    pub camera: String,
}

impl FrigateMirror {
    /// The mirrored message for `event`, when it is a recognition.
    pub fn message(&self, event: &Event) -> Option<serde_json::Value> {
        let person = event.person.as_ref()?;
        if event.result != Outcome::Match || event.lifecycle == crate::decide::Lifecycle::End {
            return None;
        }
        Some(serde_json::json!({
            "type": "face",
            "id": event.id,
            "name": person.name.as_deref().unwrap_or(&person.id),
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
        gate: Option<Gate>,
    ) -> Self {
        let mut opts = MqttOptions::new(&settings.client_id, &settings.host, settings.port);
        opts.set_keep_alive(settings.keep_alive);
        opts.set_clean_session(true);
        opts.set_max_packet_size(4 * 1024 * 1024, 4 * 1024 * 1024);
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
            let discovery = settings.discovery.as_ref().map(|(prefix, name)| {
                let device = topics
                    .base()
                    .rsplit('/')
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                (
                    super::discovery::topic(prefix, &device),
                    super::discovery::status_topic(prefix),
                    super::discovery::payload(&topics, &device, name)
                        .to_string()
                        .into_bytes(),
                )
            });
            std::thread::spawn(move || {
                let mut net = Network {
                    shared: &shared,
                    topics: &topics,
                    where_: &where_,
                    client,
                    gate,
                    discovery,
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
        }
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
    fn access_message(&self, settings: &AccessSettings, event: &Event) -> Option<Transient> {
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
            Ok(payload) => Some(Transient {
                expires: Some(Instant::now() + settings.valid),
                ..Transient::new(self.topics.access(), payload, QoS::AtLeastOnce, false)
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
        let payload = state.to_string().into_bytes();
        let mut s = self.shared.lock();
        s.state_payload.clone_from(&payload);
        push_transient(
            &mut s,
            Transient::new(self.topics.state(), payload, QoS::AtLeastOnce, true),
        );
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
            let (connected, ever, failed) = {
                let s = self.shared.lock();
                (s.connected, s.ever_connected, s.last_error.is_some())
            };
            // A broker never reached in this run is not waited for (the events stay queued);
            // one that went away may come back within the drain time.
            let hopeless = !connected && !ever && failed;
            if left == 0 || Instant::now() >= deadline || hopeless {
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
        let connected = self.shared.lock().connected;
        {
            let mut s = self.shared.lock();
            s.stop_network = true;
            self.shared.changed.notify_all();
        }
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

    /// Publishes one enrollment verdict on `.../enroll/progress` (QoS 1, not retained; at most
    /// [`PROGRESS_LIMIT`] wait while the broker is away, the oldest dropped).
    pub fn progress(&self, body: &serde_json::Value) {
        let mut s = self.shared.lock();
        let topic = self.topics.enroll_progress();
        if s.transient.iter().filter(|t| t.topic == topic).count() >= PROGRESS_LIMIT
            && let Some(at) = s.transient.iter().position(|t| t.topic == topic)
        {
            s.transient.remove(at);
        }
        s.transient.push_back(Transient::new(
            topic,
            body.to_string().into_bytes(),
            QoS::AtLeastOnce,
            false,
        ));
        self.shared.changed.notify_all();
    }

    /// Publishes the response to `command`.
    pub fn respond(&self, command: &Command, body: &serde_json::Value) {
        let mut s = self.shared.lock();
        s.transient.push_back(Transient::new(
            self.topics.response(&command.action),
            body.to_string().into_bytes(),
            QoS::AtLeastOnce,
            false,
        ));
        self.shared.changed.notify_all();
    }
}

/// Most access decisions waiting to be sent (oldest dropped; they expire in seconds anyway).
const ACCESS_LIMIT: usize = 16;

/// Queues an access decision ahead of everything but earlier decisions.
fn push_access(s: &mut LinkState, t: Transient) {
    let waiting = s
        .transient
        .iter()
        .take_while(|t| t.expires.is_some())
        .count();
    if waiting >= ACCESS_LIMIT {
        s.transient.pop_front();
    }
    let at = waiting.min(ACCESS_LIMIT - 1);
    s.transient.insert(at, t);
}

fn push_transient(s: &mut LinkState, t: Transient) {
    // A newer message on the same topic replaces an unsent older one.
    s.transient.retain(|old| old.topic != t.topic);
    if s.transient.len() >= TRANSIENT_LIMIT {
        s.transient.pop_front();
    }
    s.transient.push_back(t);
}

struct Network<'a> {
    shared: &'a Shared,
    topics: &'a Topics,
    where_: &'a str,
    client: Client,
    gate: Option<Gate>,
    /// Discovery topic, Home Assistant's status topic, and the payload.
    discovery: Option<(String, String, Vec<u8>)>,
}

impl Network<'_> {
    /// Queues the retained discovery message (on connect, and when Home Assistant restarts).
    fn announce(&self, s: &mut LinkState) {
        if let Some((topic, _, payload)) = &self.discovery {
            push_transient(
                s,
                Transient::new(topic.clone(), payload.clone(), QoS::AtLeastOnce, true),
            );
        }
    }

    /// A request arrived: refused ones are answered now, accepted ones wait for the main loop.
    fn request(&mut self, topic: &str, payload: &[u8]) {
        let action = topic.rsplit('/').next().unwrap_or_default().to_owned();
        let now = unix_now();
        let refusal = match &mut self.gate {
            Some(gate) => gate.check(topic, payload, now),
            None => return,
        };
        let mut s = self.shared.lock();
        let refusal = match refusal {
            Ok(command) if s.commands.len() < COMMAND_LIMIT => {
                s.commands.push_back(command);
                self.shared.changed.notify_all();
                return;
            }
            Ok(command) => crate::command::Refusal {
                transaction: Some(command.transaction),
                reason: "busy: too many commands waiting".into(),
            },
            Err(r) => r,
        };
        tracing::warn!("refused a request on {topic}: {}", refusal.reason);
        let body = serde_json::json!({
            "transaction": refusal.transaction,
            "ok": false,
            "error": refusal.reason,
        });
        // Every refusal is answered (no replacing by topic), within a bound.
        if s.transient.len() < TRANSIENT_LIMIT * 4 {
            s.transient.push_back(Transient::new(
                self.topics.response(&action),
                body.to_string().into_bytes(),
                QoS::AtLeastOnce,
                false,
            ));
        }
        self.shared.changed.notify_all();
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
                    s.connected = true;
                    s.ever_connected = true;
                    s.listening = false;
                    s.session += 1;
                    s.last_error = None;
                    backoff = Duration::from_secs(1);
                    // Announce ourselves first, before any queued event.
                    s.transient.retain(|t| t.topic != topics.availability());
                    if !s.state_payload.is_empty() {
                        let state = s.state_payload.clone();
                        s.transient.retain(|t| t.topic != topics.state());
                        s.transient.push_front(Transient::new(
                            topics.state(),
                            state,
                            QoS::AtLeastOnce,
                            true,
                        ));
                    }
                    s.transient.push_front(Transient::new(
                        topics.availability(),
                        b"online".to_vec(),
                        QoS::AtLeastOnce,
                        true,
                    ));
                    self.announce(&mut s);
                    // Requests first: the first SUBACK then means "listening".
                    if self.gate.is_some() {
                        let _ = self
                            .client
                            .try_subscribe(topics.requests(), QoS::AtLeastOnce);
                    }
                    if let Some((_, status, _)) = &self.discovery {
                        let _ = self.client.try_subscribe(status, QoS::AtLeastOnce);
                    }
                    tracing::info!("MQTT connected to {where_}");
                    shared.changed.notify_all();
                }
                Ok(rumqttc::Event::Incoming(Packet::Publish(p))) => {
                    let ha_restarted = self.discovery.as_ref().is_some_and(|(_, status, _)| {
                        p.topic == *status && &p.payload[..] == b"online"
                    });
                    if p.topic.starts_with(&topics.requests_prefix()) {
                        self.request(&p.topic, &p.payload);
                    } else if ha_restarted {
                        let mut s = shared.lock();
                        self.announce(&mut s);
                        shared.changed.notify_all();
                    }
                }
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

fn sender_loop(client: &Client, shared: &Shared, outbox: &Mutex<Outbox>) {
    loop {
        let (session, transient) = {
            let mut s = shared.wait_until(None, |s| s.stop || s.connected);
            if s.stop {
                return;
            }
            (s.session, s.transient.pop_front())
        };
        if let Some(t) = transient {
            if t.expires.is_some_and(|e| Instant::now() >= e) {
                tracing::warn!("an access decision expired before the broker took it: dropped");
                continue;
            }
            let acks = shared.lock().acks;
            if client
                .publish(&t.topic, t.qos, t.retain, t.payload.clone())
                .is_err()
            {
                return;
            }
            if t.qos != QoS::AtMostOnce {
                let s = shared.wait_until(Some(Instant::now() + ACK_TIMEOUT), |s| {
                    s.acks > acks || s.session != session || s.stop
                });
                tracing::debug!(
                    "sent {} (acks {} -> {}, session {} -> {})",
                    t.topic,
                    acks,
                    s.acks,
                    session,
                    s.session
                );
                if s.acks == acks && !s.stop {
                    // Not acknowledged: try again after the reconnect.
                    drop(s);
                    let mut s = shared.lock();
                    if t.expires.is_some() {
                        s.transient.push_front(t);
                    } else {
                        push_transient(&mut s, t);
                    }
                }
            }
            continue;
        }
        let next = match lock_outbox(outbox).peek() {
            Ok(n) => n,
            Err(e) => {
                tracing::error!("{e}");
                None
            }
        };
        let Some(m) = next else {
            // Nothing to send: wait for news.
            let s = shared.lock();
            if s.transient.is_empty() && !s.stop {
                drop(
                    shared
                        .changed
                        .wait_timeout(s, Duration::from_millis(200))
                        .unwrap_or_else(PoisonError::into_inner),
                );
            }
            continue;
        };
        let acks = shared.lock().acks;
        if client
            .publish(&m.topic, QoS::AtLeastOnce, false, m.payload)
            .is_err()
        {
            return;
        }
        let s = shared.wait_until(Some(Instant::now() + ACK_TIMEOUT), |s| {
            s.acks > acks || s.session != session || s.stop
        });
        let acked = s.acks > acks;
        drop(s);
        if acked && let Err(e) = lock_outbox(outbox).remove(m.id) {
            tracing::error!("{e}");
        }
    }
}

impl Sink for MqttLink {
    fn face_crop(&mut self, _event: &Event, jpeg: &[u8]) {
        let mut s = self.shared.lock();
        push_transient(
            &mut s,
            Transient::new(self.topics.face(), jpeg.to_vec(), QoS::AtMostOnce, false),
        );
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
        push_transient(
            &mut s,
            Transient::new(self.topics.presence(), payload, QoS::AtLeastOnce, true),
        );
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
        lock_outbox(&self.outbox)
            .push(&self.topics.events(), &json)
            .map_err(|e| PublishError::Queue(e.to_string()))?;
        let access = self
            .access
            .as_ref()
            .and_then(|settings| self.access_message(settings, event));
        let mut s = self.shared.lock();
        if let Some(t) = access {
            push_access(&mut s, t);
        }
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
            push_transient(
                &mut s,
                Transient::new(
                    self.topics.last_person(),
                    last.to_string().into_bytes(),
                    QoS::AtLeastOnce,
                    true,
                ),
            );
        }
        if let Some(f) = &self.frigate
            && let Some(m) = f.message(event)
            && s.transient.len() < TRANSIENT_LIMIT * 4
        {
            s.transient.push_back(Transient::new(
                f.topic.clone(),
                m.to_string().into_bytes(),
                QoS::AtMostOnce,
                false,
            ));
        }
        if let Some(png) = heatmap {
            push_transient(
                &mut s,
                Transient::new(self.topics.heatmap(), png.to_vec(), QoS::AtMostOnce, false),
            );
        }
        self.shared.changed.notify_all();
        Ok(())
    }
}
