//! The running program, as systemd and a technician drive it, against a real Mosquitto: frames
//! arrive through a named pipe (as from another program), `facegate request` sends signed
//! commands and waits for their answers, SIGHUP and the `reload` action re-read the config
//! (a broken file refused with its problems while the door keeps running, a new person taken
//! in place, a renamed device opened again), SIGTERM stops it with exit status 0, and with
//! `--log-format json` every log line is a JSON object.
//!
//! The broker is the one in `FACEGATE_TEST_MQTT` (`scripts/test` starts it); without it, a
//! private Mosquitto is started from the PATH.

#![allow(clippy::unwrap_used)] // Test code: a panic is how a failure is reported.

use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The longest any one step may take (model loading and enrollment in a test build included).
const LIMIT: Duration = Duration::from_secs(60);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The broker's address, and the private broker when one had to be started.
fn broker() -> (String, u16, Option<Child>) {
    if let Ok(addr) = std::env::var("FACEGATE_TEST_MQTT")
        && let Some((host, port)) = addr.rsplit_once(':')
    {
        return (host.to_owned(), port.parse().unwrap(), None);
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let conf = std::env::temp_dir().join(format!("facegate-reload-mq-{port}.conf"));
    std::fs::write(
        &conf,
        format!("listener {port} 127.0.0.1\nallow_anonymous true\n"),
    )
    .unwrap();
    let child = Command::new("mosquitto")
        .arg("-c")
        .arg(&conf)
        .stderr(Stdio::null())
        .spawn()
        .expect("mosquitto on the PATH, or FACEGATE_TEST_MQTT set");
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "mosquitto did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    ("127.0.0.1".into(), port, Some(child))
}

/// Topic and payload of each message received.
type Messages = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// Every message under `filters`, recorded on a thread.
struct Recorder(Messages);

impl Recorder {
    fn start(host: &str, port: u16, filters: &[String]) -> Self {
        let got = Arc::new(Mutex::new(Vec::new()));
        let mut opts = MqttOptions::new(format!("reload-rec-{}", std::process::id()), host, port);
        opts.set_max_packet_size(16 << 20, 1 << 16);
        let (client, mut conn) = Client::new(opts, 64);
        for f in filters {
            client.subscribe(f.as_str(), QoS::AtLeastOnce).unwrap();
        }
        let (ready, wait) = std::sync::mpsc::channel();
        let sink = Arc::clone(&got);
        std::thread::spawn(move || {
            let _client = client;
            let mut subscribed = 0;
            for event in conn.iter() {
                match event {
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        subscribed += 1;
                        let _ = ready.send(subscribed);
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        sink.lock().unwrap().push((p.topic, p.payload.to_vec()));
                    }
                    Ok(_) => {}
                    Err(_) => std::thread::sleep(Duration::from_millis(100)),
                }
            }
        });
        while wait.recv_timeout(LIMIT).unwrap() < filters.len() {}
        Self(got)
    }

    /// Waits until a message on a topic ending with `suffix` satisfies `want`; returns it.
    fn wait(&self, suffix: &str, what: &str, want: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            let found = self.0.lock().unwrap().iter().find_map(|(t, p)| {
                let v: Value = serde_json::from_slice(p).ok()?;
                (t.ends_with(suffix) && want(&v)).then_some(v)
            });
            if let Some(v) = found {
                return v;
            }
            assert!(start.elapsed() < LIMIT, "never saw {what} on ...{suffix}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn clear(&self) {
        self.0.lock().unwrap().clear();
    }
}

/// Writes an enrolled person's photo twice (a visit: two agreeing frames, a grant), then a
/// grey frame every 150 ms, into the pipe; again from the start whenever the device opens it
/// again (after a restart), until `done`.
fn feed(pipe: PathBuf, done: Arc<AtomicBool>) {
    let visit =
        std::fs::read(repo().join("config/demo/frames/02-obama-enrolled-photo.jpg")).unwrap();
    let mut jpeg = Vec::new();
    image::RgbImage::from_pixel(320, 240, image::Rgb([90, 90, 90]))
        .write_to(
            &mut std::io::Cursor::new(&mut jpeg),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
    std::thread::spawn(move || {
        while !done.load(Ordering::Relaxed) {
            // Blocks until the device opens its end.
            let Ok(mut w) = std::fs::OpenOptions::new().write(true).open(&pipe) else {
                return;
            };
            if w.write_all(&visit)
                .and_then(|()| w.write_all(&visit))
                .is_err()
            {
                continue;
            }
            while !done.load(Ordering::Relaxed) && w.write_all(&jpeg).is_ok() {
                std::thread::sleep(Duration::from_millis(150));
            }
        }
    });
}

/// The Prometheus endpoint's port in every config of this test.
fn metrics_port() -> u16 {
    static PORT: std::sync::OnceLock<u16> = std::sync::OnceLock::new();
    *PORT.get_or_init(|| {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    })
}

/// `GET /metrics` on the device's loopback port.
fn scrape() -> String {
    use std::io::Read;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", metrics_port())).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    assert!(
        text.starts_with("HTTP/1.0 200") || text.starts_with("HTTP/1.1 200"),
        "{text}"
    );
    text
}

/// The value of the sample `name` (with its labels, as rendered), if present.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

fn config(dir: &Path, host: &str, port: u16, name: &str, extra: &str) -> String {
    let demo = repo().join("config/demo");
    format!(
        "[device]\nid = \"reload-door-{pid}\"\nname = \"{name}\"\n[storage]\ndir = \"state\"\n\
         [metrics]\nenabled = true\nport = {metrics}\n\
         [source]\nkind = \"mjpeg\"\npath = \"frames.pipe\"\n\
         [mqtt]\nhost = \"{host}\"\nport = {port}\ndrain_seconds = 1\n\
         [commands]\nenabled = true\nkey_file = \"{key}\"\n\
         [liveness]\nenabled = false\n\
         [[people]]\nid = \"obama\"\nname = \"Barack Obama\"\n\
         photos = [\"{demo}/enroll/obama.jpg\"]\n{extra}",
        pid = std::process::id(),
        metrics = metrics_port(),
        key = dir.join("command.key").display(),
        demo = demo.display(),
    )
}

/// `facegate request --config CONFIG ARGS`.
fn request(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_facegate"))
        .args(["request", "--config"])
        .arg(config)
        .args(["--timeout", "30"])
        .args(args)
        .output()
        .unwrap()
}

fn answer(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: stdout {:?}, stderr {:?}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// A command key file, readable by its owner only (as the device insists).
fn write_key(path: &Path, key: &[u8]) {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .unwrap()
        .write_all(key)
        .unwrap();
}

fn people(state: &Value) -> u64 {
    state["people"].as_u64().unwrap_or(u64::MAX)
}

#[test]
fn a_technician_reloads_and_commands_the_running_device() {
    let (host, port, _private) = broker();
    let dir = std::env::temp_dir().join(format!("facegate-reload-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    write_key(
        &dir.join("command.key"),
        b"a-test-command-key-of-32-bytes!!",
    );
    assert!(
        Command::new("mkfifo")
            .arg(dir.join("frames.pipe"))
            .status()
            .unwrap()
            .success()
    );
    let cfg = dir.join("facegate.toml");
    std::fs::write(&cfg, config(&dir, &host, port, "Front door", "")).unwrap();
    let base = format!("facegate/reload-door-{}", std::process::id());
    let rec = Recorder::start(
        &host,
        port,
        &[
            format!("{base}/#"),
            format!(
                "homeassistant/device/reload-door-{}/config",
                std::process::id()
            ),
        ],
    );
    let done = Arc::new(AtomicBool::new(false));
    feed(dir.join("frames.pipe"), Arc::clone(&done));
    let log = dir.join("stderr.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_facegate"))
        .args(["--log-format", "json", "run"])
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();

    // Ready: the retained state counts the config's one person.
    rec.wait("/state", "the state with one person", |s| people(s) == 1);

    // The visit at the start is granted; Prometheus and the retained stats count it.
    rec.wait("/access", "the signed grant", |a| {
        a["payload"]
            .as_str()
            .and_then(|p| serde_json::from_str::<Value>(p).ok())
            .is_some_and(|d| d["decision"] == "grant")
    });
    let stats = rec.wait("/stats", "the stats", |s| s["frames"].as_u64().is_some());
    assert!(stats["latency_ms"].is_object(), "{stats}");
    assert_eq!(stats["people"], 1, "{stats}");
    let start = Instant::now();
    let text = loop {
        let text = scrape();
        if sample(&text, "facegate_decisions_total{decision=\"grant\"}") == Some(1.0)
            && sample(&text, "facegate_broker_connected") == Some(1.0)
        {
            break text;
        }
        assert!(start.elapsed() < LIMIT, "no grant counted: {text}");
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(
        sample(&text, "facegate_frames_total").is_some_and(|n| n >= 2.0),
        "{text}"
    );
    assert!(
        sample(&text, "facegate_stage_seconds_count{stage=\"embed\"}").is_some_and(|n| n >= 2.0),
        "{text}"
    );
    assert!(
        text.contains("facegate_stage_seconds_bucket{stage=\"detect\",le=\"0.5\"}"),
        "{text}"
    );

    // A second door whose config names the same state folder is refused before it touches
    // the gallery or the queue.
    let second = dir.join("second.toml");
    std::fs::write(
        &second,
        config(&dir, &host, port, "Side door", "").replace("reload-door-", "side-door-"),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_facegate"))
        .arg("run")
        .arg(&second)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("in use by another running facegate"),
        "{stderr}"
    );

    // `facegate request list` signs, sends, and prints the answer; exit status 0.
    let out = request(&cfg, &["list"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let listed = answer(&out);
    assert_eq!(listed["people"][0]["id"], "obama", "{listed}");

    // Enroll by request (then erase): each photo's verdict printed as it comes, exit status 0.
    let photo = repo().join("config/demo/enroll/biden.jpg");
    let out = request(
        &cfg,
        &[
            "enroll",
            "--person",
            "joe",
            "--name",
            "Joe",
            photo.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("joe photo 1/1"), "{stderr}");
    let out = request(&cfg, &["erase", "joe"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let out = request(&cfg, &["erase", "nobody"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "an erasure of nobody fails: {out:?}"
    );

    // A broken file: SIGHUP and `reload` are refused, each problem named; the door runs on.
    std::fs::write(
        &cfg,
        config(
            &dir,
            &host,
            port,
            "Front door",
            "[decision]\nagreeing_frames = 0\n",
        ),
    )
    .unwrap();
    signal(&child, "HUP");
    let out = request(&cfg.with_file_name("missing.toml"), &["reload"]);
    assert_eq!(out.status.code(), Some(2), "no config, no request: {out:?}");
    // The request reads the good parts it needs from a copy (the device's file is broken).
    let good = dir.join("good.toml");
    std::fs::write(&good, config(&dir, &host, port, "Front door", "")).unwrap();
    let out = request(&good, &["reload"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let refused = answer(&out);
    assert_eq!(refused["ok"], false);
    assert_eq!(
        refused["problems"][0]["field"], "decision.agreeing_frames",
        "{refused}"
    );
    assert!(refused["problems"][0]["line"].is_u64(), "{refused}");
    assert!(child.try_wait().unwrap().is_none(), "still running");

    // A new person in the file: SIGHUP enrolls them in place (verdicts on enroll/progress, the
    // state re-published), no restart.
    let biden = format!(
        "[[people]]\nid = \"biden\"\nname = \"Joe Biden\"\nphotos = [\"{}\"]\n",
        repo().join("config/demo/enroll/biden.jpg").display()
    );
    std::fs::write(&cfg, config(&dir, &host, port, "Front door", &biden)).unwrap();
    signal(&child, "HUP");
    let verdict = rec.wait("/enroll/progress", "biden's verdict", |m| {
        m["person"] == "biden"
    });
    assert_eq!(verdict["source"], "config");
    assert_eq!(verdict["verdict"], "accepted", "{verdict}");
    rec.wait("/state", "the state with two people", |s| people(s) == 2);

    // Signed with another key: refused, exit status 1.
    let forged = dir.join("forged.toml");
    std::fs::write(
        &forged,
        config(&dir, &host, port, "Front door", "").replace("command.key", "forged.key"),
    )
    .unwrap();
    write_key(&dir.join("forged.key"), b"another-key-that-the-door-lacks!");
    let out = request(&forged, &["list"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(answer(&out)["error"], "bad signature");

    // A new name (discovery, topics): the reload answers, then the device opens itself again
    // with the new file, without exiting.
    rec.clear();
    std::fs::write(&cfg, config(&dir, &host, port, "Back door", &biden)).unwrap();
    let out = request(&cfg, &["reload"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(answer(&out)["restart"], serde_json::json!(["device"]));
    let announced = rec.wait("/config", "discovery under the new name", |d| {
        d["dev"]["name"] == "Back door"
    });
    assert!(announced["cmps"].is_object());
    rec.wait("/state", "the state after the restart", |s| people(s) == 2);
    assert!(
        child.try_wait().unwrap().is_none(),
        "still the same process"
    );
    let out = request(&cfg, &["list"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "answers after the restart: {out:?}"
    );
    assert!(
        scrape().contains("facegate_frames_total"),
        "the metrics port is served again after the restart"
    );

    // SIGTERM: a clean stop with exit status 0 (systemd's Restart=on-failure stays quiet).
    signal(&child, "TERM");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(start.elapsed() < LIMIT, "did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    done.store(true, Ordering::Relaxed);
    assert_eq!(status.code(), Some(0));

    // Every log line is one JSON object; the refused reload and the restart are there.
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let said = |needle: &str, level: &str| {
        lines.iter().any(|l| {
            l["level"] == level
                && l["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains(needle))
        })
    };
    assert!(said("reload refused", "ERROR"), "{text}");
    assert!(said("agreeing_frames", "ERROR"), "{text}");
    assert!(said("config reloaded", "INFO"), "{text}");
    assert!(
        said("starting again with the reloaded config", "INFO"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
