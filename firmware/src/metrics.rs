//! What a monitoring stack reads: counters of frames, faces, events and decisions, latency
//! histograms per stage, the event queue's depth and the broker link. Two ways out:
//!
//! - the retained `<prefix>/<device>/stats` message, once at start and then every minute, for
//!   those who only have MQTT ([`Stats::tick`] builds it; the device publishes it);
//! - Prometheus' text format on a loopback port (`[metrics] enabled = true`), through the
//!   `metrics` facade and its Prometheus exporter ([`Exporter`]); off by default.
//!
//! A sink beside the MQTT link: it sees each analysed frame's cost and each event, and never
//! changes what the door decides.

use facegate_pipeline::decide::Access;
use facegate_pipeline::event::Event;
use facegate_pipeline::sink::{FrameCost, PublishError, Sink};
use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// `[metrics]`: the Prometheus endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsConfig {
    /// The port on 127.0.0.1 where `/metrics` is served.
    pub port: u16,
}

impl MetricsConfig {
    /// The port by default (the one Prometheus' exporters list keeps free for such uses).
    pub const DEFAULT_PORT: u16 = 9464;
}

/// How often the retained `stats` message is published.
pub const STATS_EVERY: Duration = Duration::from_secs(60);
/// How often the queue and broker gauges are refreshed.
const GAUGES_EVERY: Duration = Duration::from_secs(1);

/// Upper bounds of the latency histograms' buckets, in seconds.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// The stages whose time is measured, as the `stage` label names them.
const STAGES: [&str; 5] = ["detect", "align", "liveness", "embed", "match"];

/// One stage's time over the current minute.
#[derive(Debug, Default, Clone, Copy)]
struct Minute {
    sum_ms: f64,
    max_ms: f32,
    count: u64,
}

impl Minute {
    fn add(&mut self, ms: f32) {
        self.sum_ms += f64::from(ms);
        self.max_ms = self.max_ms.max(ms);
        self.count += 1;
    }

    fn json(&self) -> Value {
        if self.count == 0 {
            return Value::Null;
        }
        json!({
            "mean": (self.sum_ms / self.count as f64 * 100.0).round() / 100.0,
            "max": (f64::from(self.max_ms) * 100.0).round() / 100.0,
            "count": self.count,
        })
    }
}

/// Counts since start and this minute's latencies.
#[derive(Debug, Default)]
struct Totals {
    frames: u64,
    faces: u64,
    events: u64,
    grants: u64,
    denials: BTreeMap<String, u64>,
    minute: [Minute; 5],
}

/// The device's counters, shared by the sink in the pipeline's fan-out and the run loop that
/// publishes them.
#[derive(Debug, Clone)]
pub struct Stats {
    totals: Arc<Mutex<Totals>>,
    started: Instant,
    last_stats: Option<Instant>,
    last_gauges: Option<Instant>,
}

impl Default for Stats {
    fn default() -> Self {
        Self::new()
    }
}

/// What the run loop knows that the sink does not: the queue and the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkState {
    /// Events waiting on disk for the broker.
    pub queued: usize,
    /// Connected to the broker now.
    pub connected: bool,
    /// People and templates in the matcher.
    pub people: usize,
    /// Templates in the matcher.
    pub templates: usize,
}

impl Stats {
    /// Counting from now.
    pub fn new() -> Self {
        Self {
            totals: Arc::default(),
            started: Instant::now(),
            last_stats: None,
            last_gauges: None,
        }
    }

    fn totals(&self) -> std::sync::MutexGuard<'_, Totals> {
        self.totals.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The sink to put in the pipeline's fan-out (it shares these counters).
    pub fn sink(&self) -> StatsSink {
        StatsSink {
            totals: Arc::clone(&self.totals),
        }
    }

    /// Called by the run loop between frames: refreshes the gauges every second and, at the
    /// first call and then every [`STATS_EVERY`], returns the `stats` message to publish
    /// (`link` read only then, through `state`).
    pub fn tick(&mut self, now: Instant, state: &dyn Fn() -> LinkState) -> Option<Value> {
        let due =
            |last: Option<Instant>, every| last.is_none_or(|t| now.duration_since(t) >= every);
        let gauges = due(self.last_gauges, GAUGES_EVERY);
        let stats = due(self.last_stats, STATS_EVERY);
        if !gauges && !stats {
            return None;
        }
        let link = state();
        gauge!("facegate_queue_depth").set(link.queued as f64);
        gauge!("facegate_broker_connected").set(if link.connected { 1.0 } else { 0.0 });
        gauge!("facegate_people").set(link.people as f64);
        gauge!("facegate_templates").set(link.templates as f64);
        self.last_gauges = Some(now);
        if !stats {
            return None;
        }
        self.last_stats = Some(now);
        let mut t = self.totals();
        let latency: serde_json::Map<String, Value> = STAGES
            .iter()
            .zip(&t.minute)
            .map(|(stage, m)| ((*stage).to_owned(), m.json()))
            .collect();
        let message = json!({
            "time": facegate_pipeline::event::now(),
            "uptime_seconds": now.duration_since(self.started).as_secs(),
            "frames": t.frames,
            "faces": t.faces,
            "events": t.events,
            "grants": t.grants,
            "denials": t.denials,
            "queued": link.queued,
            "broker_connected": link.connected,
            "people": link.people,
            "templates": link.templates,
            "latency_ms": latency,
        });
        t.minute = Default::default();
        Some(message)
    }
}

/// Counts what the pipeline hands over: each frame's cost, each event.
#[derive(Debug)]
pub struct StatsSink {
    totals: Arc<Mutex<Totals>>,
}

impl Sink for StatsSink {
    fn publish(&mut self, event: &Event, _heatmap: Option<&[u8]>) -> Result<(), PublishError> {
        let kind = match event.lifecycle {
            facegate_pipeline::decide::Lifecycle::New => "new",
            facegate_pipeline::decide::Lifecycle::Update => "update",
            facegate_pipeline::decide::Lifecycle::End => "end",
        };
        counter!("facegate_events_total", "type" => kind).increment(1);
        let mut t = self.totals.lock().unwrap_or_else(PoisonError::into_inner);
        t.events += 1;
        match &event.access {
            Some(Access::Grant { .. }) => {
                counter!("facegate_decisions_total", "decision" => "grant").increment(1);
                t.grants += 1;
            }
            Some(Access::Deny { reason }) => {
                counter!("facegate_decisions_total", "decision" => "deny", "reason" => reason.clone())
                    .increment(1);
                *t.denials.entry(reason.clone()).or_default() += 1;
            }
            None => {}
        }
        Ok(())
    }

    fn analysed(&mut self, cost: &FrameCost) {
        counter!("facegate_frames_total").increment(1);
        counter!("facegate_faces_total").increment(cost.faces.len() as u64);
        let mut t = self.totals.lock().unwrap_or_else(PoisonError::into_inner);
        t.frames += 1;
        t.faces += cost.faces.len() as u64;
        let mut record = |i: usize, ms: f32| {
            histogram!("facegate_stage_seconds", "stage" => STAGES[i]).record(f64::from(ms) / 1e3);
            t.minute[i].add(ms);
        };
        record(0, cost.detect_ms);
        for f in &cost.faces {
            record(1, f.align_ms);
            if f.liveness_ms > 0.0 {
                record(2, f.liveness_ms);
            }
            record(3, f.embed_ms);
            record(4, f.match_ms);
        }
    }
}

/// Why the Prometheus endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The port cannot be listened on (taken, or not allowed).
    #[error("metrics.port {port}: cannot listen on 127.0.0.1:{port}: {reason}")]
    Listen {
        /// The port.
        port: u16,
        /// Why.
        reason: String,
    },
    /// The exporter refused its settings.
    #[error("metrics: {0}")]
    Exporter(String),
}

/// The process's one recorder (the `metrics` facade takes one per process; a device opened
/// again after a reload keeps it, so counters go on increasing).
fn recorder() -> Result<&'static PrometheusHandle, MetricsError> {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    if let Some(h) = HANDLE.get() {
        return Ok(h);
    }
    let recorder = PrometheusBuilder::new()
        .set_buckets(BUCKETS)
        .map_err(|e| MetricsError::Exporter(e.to_string()))?
        .build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder)
        .map_err(|_| MetricsError::Exporter("another metrics recorder is installed".into()))?;
    metrics::describe_counter!("facegate_frames_total", "Frames analysed");
    metrics::describe_counter!("facegate_faces_total", "Faces found in analysed frames");
    metrics::describe_counter!("facegate_events_total", "Events published, by type");
    metrics::describe_counter!(
        "facegate_decisions_total",
        "Door decisions: grants, and denials by reason"
    );
    metrics::describe_histogram!(
        "facegate_stage_seconds",
        metrics::Unit::Seconds,
        "Time per stage: detect per frame; the others per face"
    );
    metrics::describe_gauge!(
        "facegate_queue_depth",
        "Events waiting on disk for the broker"
    );
    metrics::describe_gauge!(
        "facegate_broker_connected",
        "1 while connected to the broker"
    );
    metrics::describe_gauge!("facegate_people", "People enrolled");
    metrics::describe_gauge!("facegate_templates", "Templates enrolled");
    Ok(HANDLE.get_or_init(|| handle))
}

/// `/metrics` in Prometheus' text format on `127.0.0.1:port`, served from a thread until
/// dropped. Loopback only: a scraper on another host goes through a reverse proxy or an SSH
/// tunnel the installer sets up.
pub struct Exporter {
    server: Arc<tiny_http::Server>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exporter").finish_non_exhaustive()
    }
}

impl Exporter {
    /// Installs the recorder (once per process) and starts serving.
    pub fn start(config: &MetricsConfig) -> Result<Self, MetricsError> {
        let handle = recorder()?;
        let server = tiny_http::Server::http(("127.0.0.1", config.port)).map_err(|e| {
            MetricsError::Listen {
                port: config.port,
                reason: e.to_string(),
            }
        })?;
        let server = Arc::new(server);
        let serving = Arc::clone(&server);
        let thread = std::thread::spawn(move || {
            for request in serving.incoming_requests() {
                let response =
                    if request.url() == "/metrics" && *request.method() == tiny_http::Method::Get {
                        handle.run_upkeep();
                        let header = tiny_http::Header::from_bytes(
                            &b"Content-Type"[..],
                            &b"text/plain; version=0.0.4; charset=utf-8"[..],
                        );
                        let mut r = tiny_http::Response::from_string(handle.render());
                        if let Ok(h) = header {
                            r.add_header(h);
                        }
                        r
                    } else {
                        tiny_http::Response::from_string("GET /metrics\n").with_status_code(404)
                    };
                // A scraper that hung up is its own business.
                let _ = request.respond(response);
            }
        });
        tracing::info!("metrics on http://127.0.0.1:{}/metrics", config.port);
        Ok(Self {
            server,
            thread: Some(thread),
        })
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use facegate_pipeline::sink::FaceCost;

    fn link() -> LinkState {
        LinkState {
            queued: 3,
            connected: true,
            people: 2,
            templates: 4,
        }
    }

    #[test]
    fn stats_come_at_once_then_every_minute_with_the_minutes_latencies() {
        let mut stats = Stats::new();
        let mut sink = stats.sink();
        let face = FaceCost {
            align_ms: 1.0,
            liveness_ms: 0.0,
            embed_ms: 10.0,
            match_ms: 0.5,
        };
        sink.analysed(&FrameCost {
            detect_ms: 100.0,
            faces: vec![face, face],
        });
        sink.analysed(&FrameCost {
            detect_ms: 200.0,
            faces: vec![],
        });
        let t0 = Instant::now();
        let first = stats.tick(t0, &link).expect("the first tick publishes");
        assert_eq!(first["frames"], 2);
        assert_eq!(first["faces"], 2);
        assert_eq!(first["queued"], 3);
        assert_eq!(first["latency_ms"]["detect"]["mean"], 150.0);
        assert_eq!(first["latency_ms"]["detect"]["max"], 200.0);
        assert_eq!(first["latency_ms"]["embed"]["count"], 2);
        assert!(
            first["latency_ms"]["liveness"].is_null(),
            "off: not measured"
        );
        assert!(stats.tick(t0 + Duration::from_secs(30), &link).is_none());
        let next = stats.tick(t0 + STATS_EVERY, &link).expect("a minute later");
        assert!(
            next["latency_ms"]["detect"].is_null(),
            "latencies are this minute's"
        );
        assert_eq!(next["frames"], 2, "counts are since start");
    }
}
