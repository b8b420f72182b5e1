//! Test support for facegate's end-to-end tests: a real Mosquitto broker and MQTT helpers.
//!
//! `scripts/test` starts one broker for the whole run and passes its address in
//! `FACEGATE_TEST_MQTT` (`host:port`). When that variable is absent (a developer running
//! `cargo test` by hand) each test starts its own Mosquitto on a free loopback port, so the tests
//! never silently skip the broker path. Tests that must stop the broker use
//! [`Broker::private`] to get one of their own.

use facegate_pipeline::Pipeline;
use facegate_pipeline::sink::Sink;
use facegate_pipeline::source::Frame;
use rumqttc::{Client, Connection, Event, MqttOptions, Packet, Publish};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Environment variable through which the test command passes the shared broker's address.
pub const BROKER_ENV: &str = "FACEGATE_TEST_MQTT";

/// A reachable MQTT broker; stopped on drop if this process started it.
pub struct Broker {
    /// Host to connect to.
    pub host: String,
    /// Port to connect to.
    pub port: u16,
    child: Option<Child>,
    dir: Option<PathBuf>,
    persistent: bool,
    /// Extra lines for the listener (TLS settings).
    listener: String,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name unique to this process and call, for client ids and topic levels.
pub fn unique(tag: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{tag}-{}-{n}", std::process::id())
}

fn mosquitto_binary() -> PathBuf {
    let candidates = [
        "/usr/sbin/mosquitto",
        "/usr/bin/mosquitto",
        "/usr/local/sbin/mosquitto",
    ];
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("mosquitto"))
}

impl Broker {
    /// The shared broker from `FACEGATE_TEST_MQTT`, or a private one when it is not set.
    pub fn shared() -> Self {
        match std::env::var(BROKER_ENV) {
            Ok(addr) => {
                let (host, port) = addr
                    .rsplit_once(':')
                    .unwrap_or_else(|| panic!("{BROKER_ENV}={addr:?}: expected host:port"));
                let port = port
                    .parse()
                    .unwrap_or_else(|_| panic!("{BROKER_ENV}={addr:?}: port is not a number"));
                Self {
                    host: host.to_owned(),
                    port,
                    child: None,
                    dir: None,
                    persistent: false,
                    listener: String::new(),
                }
            }
            Err(_) => Self::private(),
        }
    }

    /// A Mosquitto of this test's own on a free loopback port (it can be stopped and restarted).
    pub fn private() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("no free loopback port")
            .port();
        let dir = std::env::temp_dir().join(unique("facegate-broker"));
        std::fs::create_dir_all(&dir).expect("cannot create broker folder");
        let mut broker = Self {
            host: "127.0.0.1".into(),
            port,
            child: None,
            dir: Some(dir),
            persistent: false,
            listener: String::new(),
        };
        broker.start();
        broker
    }

    /// A broker of this test's own whose only listener speaks TLS with these Mosquitto
    /// listener settings (`cafile`, `certfile`, `keyfile`, `require_certificate`, ...).
    pub fn private_tls(listener: &str) -> Self {
        let mut broker = Self::private();
        broker.stop();
        broker.listener = listener.to_owned();
        broker.start();
        broker
    }

    /// A broker of this test's own that keeps sessions and queued messages across a restart
    /// (Mosquitto persistence), so a subscriber with a persistent session misses nothing.
    pub fn private_persistent() -> Self {
        let mut broker = Self::private();
        broker.stop();
        broker.persistent = true;
        broker.start();
        broker
    }

    /// (Re)starts a private broker on its port; panics if this broker is the shared one.
    pub fn start(&mut self) {
        let dir = self
            .dir
            .as_deref()
            .expect("the shared broker is not ours to start");
        let conf = dir.join("mosquitto.conf");
        let persistence = if self.persistent {
            format!(
                "persistence true\npersistence_location {}/\n",
                dir.display()
            )
        } else {
            "persistence false\n".to_owned()
        };
        let text = format!(
            "listener {} 127.0.0.1\n{}\nallow_anonymous true\n{persistence}log_dest none\n",
            self.port, self.listener
        );
        std::fs::write(&conf, text).expect("cannot write broker config");
        let child = Command::new(mosquitto_binary())
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start mosquitto ({e}): install it (apt-get install mosquitto) or run scripts/test")
            });
        self.child = Some(child);
        wait_listening(&self.host, self.port, Duration::from_secs(10));
    }

    /// Stops a private broker (for outage tests); the port stays reserved for [`Broker::start`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // A persistent broker is stopped with SIGTERM so it saves its sessions first.
            let terminated = self.persistent
                && Command::new("kill")
                    .arg("-TERM")
                    .arg(child.id().to_string())
                    .status()
                    .is_ok_and(|s| s.success());
            if !terminated {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }

    /// The broker's folder, if this process started it.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Connection options for a client of this broker with a unique id.
    pub fn options(&self, tag: &str) -> MqttOptions {
        let mut o = MqttOptions::new(unique(tag), &self.host, self.port);
        o.set_keep_alive(Duration::from_secs(5));
        // Heat maps are PNGs of tens of kilobytes: above rumqttc's 10 KiB default.
        o.set_max_packet_size(4 << 20, 4 << 20);
        o
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn wait_listening(host: &str, port: u16, limit: Duration) {
    let start = Instant::now();
    while TcpStream::connect((host, port)).is_err() {
        assert!(
            start.elapsed() < limit,
            "mosquitto did not listen on {host}:{port} within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Drives `conn` until an incoming packet satisfies `want`, or panics after `limit`.
pub fn wait_for(
    conn: &mut Connection,
    limit: Duration,
    mut want: impl FnMut(&Packet) -> bool,
) -> Packet {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no matching MQTT packet within {limit:?}");
        match conn.recv_timeout(left) {
            Ok(Ok(Event::Incoming(p))) if want(&p) => return p,
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("MQTT connection failed: {e}"),
            Err(_) => {}
        }
    }
}

/// Connects a client and waits for the broker's CONNACK.
pub fn connect(opts: MqttOptions) -> (Client, Connection) {
    let (client, mut conn) = Client::new(opts, 16);
    wait_for(&mut conn, Duration::from_secs(5), |p| {
        matches!(p, Packet::ConnAck(_))
    });
    (client, conn)
}

/// Waits for a PUBLISH on `topic`.
pub fn wait_publish(conn: &mut Connection, topic: &str, limit: Duration) -> Publish {
    match wait_for(
        conn,
        limit,
        |p| matches!(p, Packet::Publish(m) if m.topic == topic),
    ) {
        Packet::Publish(m) => m,
        other => panic!("expected a publish, got {other:?}"),
    }
}

/// One message a [`Recorder`] received.
#[derive(Debug, Clone)]
pub struct Received {
    /// Topic.
    pub topic: String,
    /// Payload.
    pub payload: Vec<u8>,
    /// Whether the broker delivered it as retained.
    pub retain: bool,
    /// When it arrived (consumers that check expiry hold it against this).
    pub at: std::time::SystemTime,
}

/// Subscribes to a topic filter on its own thread and records every message, subscribing again
/// after each reconnect (so it survives a broker restart).
pub struct Recorder {
    got: std::sync::Arc<std::sync::Mutex<Vec<Received>>>,
    subscribed: std::sync::Arc<AtomicU32>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    client: Client,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Recorder {
    /// Starts recording `filter` on `broker`; returns once the first subscription is acknowledged.
    pub fn start(broker: &Broker, filter: &str) -> Self {
        Self::with_options(broker.options("recorder"), filter)
    }

    /// Like [`Recorder::start`], with a persistent session: the broker keeps the subscription
    /// and queues QoS 1 messages while the recorder is away.
    pub fn persistent(broker: &Broker, filter: &str) -> Self {
        let mut opts = broker.options("recorder");
        opts.set_clean_session(false);
        Self::with_options(opts, filter)
    }

    fn with_options(opts: MqttOptions, filter: &str) -> Self {
        let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let subscribed = std::sync::Arc::new(AtomicU32::new(0));
        let (client, mut conn) = Client::new(opts, 64);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thread = {
            let stop = std::sync::Arc::clone(&stop);
            let got = std::sync::Arc::clone(&got);
            let subscribed = std::sync::Arc::clone(&subscribed);
            let client = client.clone();
            let filter = filter.to_owned();
            std::thread::spawn(move || {
                // Blocking receive: a poll cut short by a timeout can deliver a packet twice.
                while let Ok(event) = conn.recv() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    match event {
                        Ok(Event::Incoming(Packet::ConnAck(_))) => {
                            let _ = client.try_subscribe(&filter, rumqttc::QoS::AtLeastOnce);
                        }
                        Ok(Event::Incoming(Packet::SubAck(_))) => {
                            subscribed.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok(Event::Incoming(Packet::Publish(p))) => {
                            got.lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .push(Received {
                                    topic: p.topic.clone(),
                                    payload: p.payload.to_vec(),
                                    retain: p.retain,
                                    at: std::time::SystemTime::now(),
                                });
                        }
                        Ok(_) => {}
                        Err(_) => std::thread::sleep(Duration::from_millis(50)),
                    }
                }
            })
        };
        let r = Self {
            got,
            subscribed,
            stop,
            client,
            thread: Some(thread),
        };
        r.wait_subscribed(1, Duration::from_secs(10));
        r
    }

    /// Waits until the recorder has subscribed `n` times in all (after `n - 1` reconnects).
    pub fn wait_subscribed(&self, n: u32, limit: Duration) {
        let start = Instant::now();
        while self.subscribed.load(Ordering::SeqCst) < n {
            assert!(
                start.elapsed() < limit,
                "recorder did not subscribe in {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// How many times the recorder has subscribed (1 + reconnects).
    pub fn subscriptions(&self) -> u32 {
        self.subscribed.load(Ordering::SeqCst)
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Waits until `done` holds for what was received, or `limit` passes; returns it.
    pub fn wait_until(&self, limit: Duration, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let start = Instant::now();
        loop {
            let got = self.received();
            if done(&got) || start.elapsed() >= limit {
                return got;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.client.disconnect();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The repository's root folder.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A device folder for the tests: `frames` (copies of the demo's `frames` files, in order),
/// state in `state/`, the demo's Obama enrolled, talking to `broker` as `id`; `extra` TOML is
/// appended to the config (`[mqtt.tls]`, `[frigate]`, ...).
pub fn device_dir(broker: &Broker, id: &str, frames: &[&str], extra: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(unique("facegate-e2e-device"));
    // A folder of the same name can be left from an earlier run whose process had the same id
    // (tests that keep events queued do not remove theirs): its queue must not leak in.
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("frames")).expect("cannot create the device folder");
    let demo = repo().join("config/demo");
    for (i, f) in frames.iter().enumerate() {
        std::fs::copy(demo.join(f), dir.join(format!("frames/{i:03}.jpg")))
            .expect("cannot copy a demo frame");
    }
    let config = format!(
        r#"
[device]
id = "{id}"
[source]
kind = "folder"
path = "frames"
[storage]
dir = "state"
[detection]
min_face = 80  # the demo faces are over 200 px: no pyramid levels below that (tests run faster, qemu most)
[mqtt]
host = "{host}"
port = {port}
prefix = "facegate-test"
drain_seconds = 15
[[people]]
id = "obama"
name = "Barack Obama"
photos = ["{demo}/originals/obama2.jpg"]
{extra}
"#,
        host = broker.host,
        port = broker.port,
        demo = demo.display()
    );
    std::fs::write(dir.join("facegate.toml"), config).expect("cannot write the config");
    dir
}

/// A frame of `image` numbered `seq`, taken now, named after its number.
pub fn frame(seq: u64, image: &image::RgbImage) -> Frame {
    Frame {
        seq,
        time: std::time::SystemTime::now(),
        origin: format!("frame-{seq}"),
        image: image.clone(),
    }
}

/// The doorway empty (frames with no face) until the open tracks end, as between two visits;
/// `seq` numbers the frames and moves on.
pub fn leave(p: &mut Pipeline, sink: &mut dyn Sink, seq: &mut u64) {
    let empty = image::RgbImage::new(200, 200);
    for _ in 0..=p.decide_rules().track_gap_frames {
        if let Err(e) = p.process(&frame(*seq, &empty), sink) {
            panic!("an empty frame: {e}");
        }
        *seq += 1;
    }
}
