//! *sink*: where events leave the pipeline. A [`Sink`] takes each event with its heat map: the
//! console sink prints JSON lines (the demo, `--print`); a folder sink keeps the heat maps as
//! files; the device crate adds the MQTT link, the door screen and the relay.

use crate::event::Event;
use std::io::Write;
use std::path::PathBuf;

/// Why an event could not be published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// Writing to the console or a file failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being written.
        what: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The on-disk queue refused the event.
    #[error("{0}")]
    Queue(String),
}

/// What one analysed frame cost, stage by stage, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FrameCost {
    /// Face detection over the whole frame.
    pub detect_ms: f32,
    /// Each face found (at most the configured number of faces).
    pub faces: Vec<FaceCost>,
}

/// What one face cost, stage by stage, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FaceCost {
    /// Alignment and quality.
    pub align_ms: f32,
    /// Liveness (0 when off).
    pub liveness_ms: f32,
    /// Embedding.
    pub embed_ms: f32,
    /// Gallery search and explanation.
    pub match_ms: f32,
}

/// Somewhere events go.
pub trait Sink {
    /// The sequence number for the next event, when this sink keeps a persistent counter (so
    /// numbers keep increasing across restarts); `None` lets the pipeline count.
    fn next_seq(&mut self) -> Option<u64> {
        None
    }

    /// Publishes one event and, when there is one, its heat map (PNG bytes).
    fn publish(&mut self, event: &Event, heatmap: Option<&[u8]>) -> Result<(), PublishError>;

    /// A frame was analysed (before its events): what each stage cost, for counters and
    /// latency histograms.
    fn analysed(&mut self, _cost: &FrameCost) {}

    /// A frame was processed (after its events): for messages refreshed on a clock.
    fn frame_done(&mut self) {}

    /// The face crop (JPEG) of the event just published, when privacy allows publishing it.
    fn face_crop(&mut self, _event: &Event, _jpeg: &[u8]) {}
}

/// Prints each event as one JSON line on standard output. Printing is a convenience beside the
/// door's work: when standard output goes away (`facegate run ... | head`, a journal that
/// restarted) the sink says so once and stops printing; the device goes on deciding.
#[derive(Debug, Default)]
pub struct ConsoleSink {
    closed: bool,
}

impl ConsoleSink {
    /// Writes `line`, or gives up printing for good after the first failed write.
    fn print(&mut self, line: &str) {
        if self.closed {
            return;
        }
        let mut out = std::io::stdout().lock();
        if let Err(e) = writeln!(out, "{line}").and_then(|()| out.flush()) {
            self.closed = true;
            tracing::warn!("standard output: {e}; events are no longer printed there");
        }
    }
}

impl Sink for ConsoleSink {
    fn publish(&mut self, event: &Event, _heatmap: Option<&[u8]>) -> Result<(), PublishError> {
        let line = serde_json::to_string(event).map_err(|e| PublishError::Io {
            what: "event JSON".into(),
            source: e.into(),
        })?;
        self.print(&line);
        Ok(())
    }
}

/// Writes each event's heat map to `<dir>/<event id>-<seq>.png`.
#[derive(Debug)]
pub struct HeatmapFolder {
    /// The folder.
    pub dir: PathBuf,
}

impl Sink for HeatmapFolder {
    fn publish(&mut self, event: &Event, heatmap: Option<&[u8]>) -> Result<(), PublishError> {
        let Some(png) = heatmap else {
            return Ok(());
        };
        let path = self.dir.join(format!("{}-{}.png", event.id, event.seq));
        facegate_contract::fsutil::write_atomic(&path, png).map_err(|source| PublishError::Io {
            what: path.display().to_string(),
            source,
        })
    }
}

/// Several sinks, each given every event in turn.
#[derive(Default)]
pub struct Fanout<'a>(pub Vec<&'a mut dyn Sink>);

impl Sink for Fanout<'_> {
    fn next_seq(&mut self) -> Option<u64> {
        self.0.iter_mut().find_map(|s| s.next_seq())
    }

    fn publish(&mut self, event: &Event, heatmap: Option<&[u8]>) -> Result<(), PublishError> {
        for s in &mut self.0 {
            s.publish(event, heatmap)?;
        }
        Ok(())
    }

    fn analysed(&mut self, cost: &FrameCost) {
        for s in &mut self.0 {
            s.analysed(cost);
        }
    }

    fn frame_done(&mut self) {
        for s in &mut self.0 {
            s.frame_done();
        }
    }

    fn face_crop(&mut self, event: &Event, jpeg: &[u8]) {
        for s in &mut self.0 {
            s.face_crop(event, jpeg);
        }
    }
}
