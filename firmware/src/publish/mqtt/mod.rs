//! Publishing over MQTT (rumqttc), with nothing lost while the broker is away.
//!
//! Two threads: the *network* thread (`network.rs`) drives rumqttc's event loop (connect,
//! reconnect with back-off from 1 s to 30 s) and screens what arrives; the *sender* thread
//! (`sender.rs`) is the only publisher. It sends one QoS 1 message at a time and waits for the
//! acknowledgement of that message's own packet id (`delivery.rs`, a state machine tested without
//! a broker), so order is kept and a message leaves the on-disk [`Outbox`] only once the broker
//! has it. Events therefore arrive at least once and in order; after a reconnect one may arrive
//! twice (consumers drop an event whose `seq` they have seen). What each message says is decided
//! by the pure functions in [`messages`].
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

mod delivery;
pub mod messages;
mod network;
mod sender;

pub use messages::{AccessSettings, FrigateMirror};

use super::access::unix_now;
use super::outbox::{Counter, Outbox, OutboxError};
use super::presence::Presence;
use super::queues::{Dropped, Outgoing, Queues};
use super::ratelimit::{LogThrottle, TokenBucket};
use super::request::{Admission, Command};
use super::topics::Topics;
use delivery::Delivery;
use facegate_pipeline::event::Event;
use facegate_pipeline::sink::{PublishError, Sink};
use network::{Announcement, Network};
use rumqttc::{Client, LastWill, MqttOptions, QoS};
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
    /// The message in flight and the acknowledgements seen.
    delivery: Delivery,
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

    /// Queues `message` for the sender.
    fn push(&self, message: Outgoing) {
        self.lock().queues.push(message);
        self.changed.notify_all();
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
            std::thread::spawn(move || sender::run(&client, &shared, &outbox))
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
        let message = messages::state(&self.topics, state);
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

    /// The signed wire form of `event`'s door decision, with a fresh sequence number and
    /// nonce; `None` when the event takes no decision or it cannot be signed (logged).
    fn access_message(&self, settings: &AccessSettings, event: &Event) -> Option<Outgoing> {
        event.access.as_ref()?;
        let seq = match lock_outbox(&self.outbox).next_of(Counter::Access) {
            Ok(seq) => seq,
            Err(e) => {
                tracing::error!("access decision not sent: {e}");
                return None;
            }
        };
        let stamp = messages::Stamp {
            seq,
            nonce: facegate_pipeline::secret::random::<16>(),
            now: unix_now(),
            instant: Instant::now(),
        };
        match messages::access(settings, &self.topics, event, stamp)? {
            Ok(message) => Some(message),
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
        s.queues.push(messages::state(&self.topics, state));
        self.shared.changed.notify_all();
    }

    /// The run loop's handle on the link: accepted commands and their answers, enrollment
    /// verdicts, state and stats, the queue's depth and the connection.
    pub fn handle(&self) -> LinkHandle {
        LinkHandle {
            shared: Arc::clone(&self.shared),
            outbox: Arc::clone(&self.outbox),
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
            // The sender has stopped: this is the only message in flight.
            let offline = messages::availability(&self.topics, false);
            self.shared.lock().delivery.hand_over();
            if self
                .client
                .publish(offline.topic, offline.qos, offline.retain, offline.payload)
                .is_ok()
            {
                drop(
                    self.shared
                        .wait_until(Some(Instant::now() + Duration::from_secs(2)), |s| {
                            s.delivery.settled().is_some()
                        }),
                );
            }
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

/// What the run loop holds of the link while the link itself is a sink in the pipeline's
/// fan-out: accepted commands waiting to run and the way their responses leave, enrollment
/// verdicts, the retained state and stats, the queue's depth and the connection.
#[derive(Clone)]
pub struct LinkHandle {
    shared: Arc<Shared>,
    outbox: Arc<Mutex<Outbox>>,
    topics: Topics,
}

impl std::fmt::Debug for LinkHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkHandle")
            .field("topics", &self.topics)
            .finish_non_exhaustive()
    }
}

impl LinkHandle {
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
        let message = messages::state(&self.topics, state);
        s.queues.push(message);
        self.shared.changed.notify_all();
    }

    /// Publishes the retained counts and latencies on `.../stats`.
    pub fn stats(&self, body: &serde_json::Value) {
        self.shared.push(messages::stats(&self.topics, body));
    }

    /// Events waiting on disk for the broker (0 when the queue cannot be read).
    pub fn queued(&self) -> usize {
        lock_outbox(&self.outbox).len().unwrap_or(0)
    }

    /// Whether the link is connected to the broker now.
    pub fn connected(&self) -> bool {
        self.shared.lock().connected
    }

    /// Publishes the response to `command`.
    pub fn respond(&self, command: &Command, body: &serde_json::Value) {
        self.reply(self.topics.response(&command.action), body);
    }

    fn reply(&self, topic: String, body: &serde_json::Value) {
        self.shared.push(messages::reply(topic, body));
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

impl Sink for MqttLink {
    fn face_crop(&mut self, _event: &Event, jpeg: &[u8]) {
        self.shared.push(messages::face_crop(&self.topics, jpeg));
    }

    fn frame_done(&mut self) {
        let Some(state) = self.presence.due(Instant::now()) else {
            return;
        };
        match messages::presence(&self.topics, &state) {
            Ok(m) => self.shared.push(m),
            Err(e) => tracing::error!("presence not sent: {e}"),
        }
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
        if let Some(m) = access {
            self.shared.push(m);
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
        self.presence.observe(event);
        let frigate = self
            .frigate
            .as_ref()
            .and_then(|f| f.message(event, unix_now()));
        let pictures = heatmap.map(|png| messages::heatmap(&self.topics, png));
        let mut s = self.shared.lock();
        for m in [
            messages::last_person(&self.topics, event),
            frigate,
            pictures,
        ]
        .into_iter()
        .flatten()
        {
            s.queues.push(m);
        }
        self.shared.changed.notify_all();
        Ok(())
    }
}
