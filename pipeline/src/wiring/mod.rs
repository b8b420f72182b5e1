//! The pipeline, stage by stage: source -> detect -> align -> embed -> match -> decide ->
//! publish. [`analyse`] takes a frame through detect..match; [`Pipeline`] adds the decision
//! across frames and turns decisions into events for a [`Sink`]; [`run`] drives it from a frame
//! source (live sources through a newest-wins hand-off, so a slow stage drops old frames).

pub mod explain;
pub mod survey;
mod sync;

pub use sync::{sync_config, sync_config_alive};

use crate::analyse::{AnalyseError, Detection, FaceAnalysis, FrameAnalysis, Limits, analyse};
use crate::decide::{Access, Band, DecideRules, Decider, Decision, Lifecycle, Observation};
use crate::enrollment::Person;
use crate::event::{
    EVENT_SCHEMA, Event, FaceCrops, FaceInfo, FrameRef, Latency, LivenessInfo, Outcome, PersonRef,
    Privacy, Scores, rfc3339,
};
use crate::gallery::{Gallery, GalleryError};
use crate::matching::{Enrolled, Index, IndexError, MatchRules, Matcher, Thresholds};
use crate::model::Models;
use crate::quality::QualityRules;
use crate::schedule::Schedule;
use crate::sink::{FaceCost, FrameCost, PublishError, Sink};
use crate::source::handoff::Handoff;
use crate::source::{Frame, FrameSource, SourceError};
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Why the pipeline stopped.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The gallery could not be read.
    #[error(transparent)]
    Gallery(#[from] GalleryError),
    /// The gallery's templates do not fit the model.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// The card has no threshold at the configured operating point.
    #[error(
        "model card {card} has no full-comparison threshold at a false accept rate of {far} or \
         below; recalibrate the model (facegate-train eval --update-card) or raise \
         matching.target_far"
    )]
    NoThreshold {
        /// The card.
        card: String,
        /// The target asked for.
        far: f64,
    },
    /// The source failed beyond recovery.
    #[error("source: {0}")]
    Source(#[from] SourceError),
    /// A frame could not be analysed (the model or detector failed).
    #[error(transparent)]
    Analyse(#[from] AnalyseError),
    /// A sink refused an event.
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// A person's stored schedule does not parse (it was checked when written).
    #[error("gallery: person {person:?} has a schedule that cannot be read: {message}")]
    StoredSchedule {
        /// Whose.
        person: String,
        /// What is wrong.
        message: String,
    },
}

impl PipelineError {
    /// Whether this error is about one frame only (a size the detector cannot take): the frame
    /// is skipped and counted, the door goes on.
    pub fn is_bad_frame(&self) -> bool {
        matches!(
            self,
            Self::Analyse(AnalyseError::Detect(
                facegate_detect::DetectError::ImageSize { .. }
            ))
        )
    }
}

/// Processes `frame`, skipping (and counting) it when it is bad rather than stopping the run.
fn process_or_skip(
    pipeline: &mut Pipeline,
    frame: &Frame,
    sink: &mut dyn Sink,
) -> Result<(), PipelineError> {
    match pipeline.process(frame, sink) {
        Err(e) if e.is_bad_frame() => {
            tracing::warn!("skipping frame {} ({}): {e}", frame.seq, frame.origin);
            pipeline.stats.bad_frames += 1;
            Ok(())
        }
        other => other,
    }
}

/// What the pipeline reads of the device's configuration: each stage's own settings, the
/// door's identity and time zone, and the people listed there. The device crate assembles it
/// from the checked config file; the pipeline never sees that file.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The device id events carry.
    pub device_id: String,
    /// The door's time zone, for schedules.
    pub time_zone: jiff::tz::TimeZone,
    /// Detection.
    pub detection: Detection,
    /// Matching.
    pub matching: MatchRules,
    /// Which faces are matched.
    pub quality: QualityRules,
    /// Decision across frames.
    pub decision: DecideRules,
    /// What events carry.
    pub privacy: Privacy,
    /// The people the config lists (their schedules are the config's, not the gallery's).
    pub people: Vec<Person>,
}

impl Settings {
    /// The limits every analysed face is held to, from the quality, detection and matching
    /// settings.
    pub fn limits(&self) -> Limits<'_> {
        Limits {
            quality: &self.quality,
            min_score: self.detection.min_score,
            max_faces: self.matching.max_faces,
        }
    }
}

/// The matcher for the gallery's people and the model in use.
pub fn matcher(
    models: &Models,
    gallery: &Gallery,
    cfg: &Settings,
) -> Result<Matcher, PipelineError> {
    let model_id = &models.card.model_id;
    let mut people: Vec<Enrolled> = Vec::new();
    for s in gallery.summaries(model_id)? {
        // The config is the source of its people's schedules; the gallery of the others'.
        let schedule = match cfg.people.iter().find(|p| p.id == s.person.id) {
            Some(listed) => listed.schedule.clone(),
            None => Schedule::parse_all(&s.person.schedule).map_err(|(i, message)| {
                PipelineError::StoredSchedule {
                    person: s.person.id.clone(),
                    message: format!("schedule[{i}]: {message}"),
                }
            })?,
        };
        people.push(Enrolled {
            id: s.person.id,
            name: s.person.name,
            threshold: s.person.threshold,
            schedule,
        });
    }
    let thresholds =
        Thresholds::from_card(&models.card, cfg.matching.target_far).ok_or_else(|| {
            PipelineError::NoThreshold {
                card: models.card_path.display().to_string(),
                far: cfg.matching.target_far,
            }
        })?;
    // "Not this person" feedback only ever raises a person's threshold.
    let floors = gallery.feedback_floors(model_id)?;
    let people = people
        .into_iter()
        .map(|mut p| {
            if let Some((_, floor)) = floors.iter().find(|(id, _)| *id == p.id) {
                let own = p.threshold.unwrap_or(thresholds.full);
                p.threshold = Some(own.max(*floor));
            }
            p
        })
        .collect();
    let templates = gallery.templates(model_id)?;
    let index = Index::new(models.card.outputs.feature.dim as usize, people, &templates)?;
    Ok(Matcher::new(
        index,
        models.regions.clone(),
        cfg.matching.occlusion,
        thresholds,
    ))
}

/// The schedules of the matcher's people who have one.
fn schedules(matcher: &Matcher) -> Vec<(String, Schedule)> {
    matcher
        .index()
        .people()
        .iter()
        .filter(|p| !p.schedule.0.is_empty())
        .map(|p| (p.id.clone(), p.schedule.clone()))
        .collect()
}

/// Counts of one run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunStats {
    /// Frames analysed.
    pub frames: u64,
    /// Frames skipped: unreadable, undecodable, over the pixel limit, or of a size the
    /// detector cannot take.
    pub bad_frames: u64,
    /// Frames dropped because a newer one arrived first.
    pub dropped: u64,
    /// Faces analysed.
    pub faces: u64,
    /// Events published.
    pub events: u64,
    /// Grants.
    pub grants: u64,
}

/// Decision across frames and event building, over one matcher.
pub struct Pipeline<'a> {
    models: &'a Models,
    cfg: Settings,
    matcher: Matcher,
    decider: Decider,
    run_id: String,
    next_seq: u64,
    stats: RunStats,
    recent: VecDeque<Recent>,
}

/// Most recent events whose face is kept for feedback, and for how long.
const RECENT_LIMIT: usize = 64;
const RECENT_FOR: Duration = Duration::from_secs(600);

/// A recent event's face, kept in memory (never published, never stored unless feedback asks)
/// so that `feedback` can refer to it.
#[derive(Debug, Clone)]
pub struct Recent {
    /// The event id.
    pub event_id: String,
    /// The face's feature.
    pub feature: Vec<f32>,
    /// The best candidate's person id and full-feature score.
    pub candidate: Option<(String, f32)>,
    at: Instant,
}

impl<'a> Pipeline<'a> {
    /// A pipeline for `cfg` with `models`, matching with `matcher`.
    pub fn new(models: &'a Models, cfg: Settings, matcher: Matcher) -> Self {
        let started = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let schedules = schedules(&matcher);
        Self {
            models,
            decider: Decider::new(cfg.decision).with_schedules(schedules, cfg.time_zone.clone()),
            cfg,
            matcher,
            run_id: format!("{started:x}"),
            next_seq: 1,
            stats: RunStats::default(),
            recent: VecDeque::new(),
        }
    }

    /// The decision rules in use (tracks, agreeing frames, cool-down).
    pub fn decide_rules(&self) -> &DecideRules {
        self.decider.rules()
    }

    /// The face of a recent event (the last 64, up to 10 minutes old), for feedback.
    pub fn recent(&self, event_id: &str) -> Option<&Recent> {
        self.recent
            .iter()
            .rev()
            .find(|r| r.event_id == event_id && r.at.elapsed() <= RECENT_FOR)
    }

    /// The counts so far.
    pub fn stats(&self) -> RunStats {
        self.stats
    }

    /// The matcher in use.
    pub fn matcher(&self) -> &Matcher {
        &self.matcher
    }

    /// Replaces the matcher (the gallery changed); open tracks keep their state.
    pub fn set_matcher(&mut self, matcher: Matcher) {
        self.decider.set_schedules(schedules(&matcher));
        self.matcher = matcher;
    }

    /// Takes reloaded settings and the matcher built for them; open tracks, recent events and
    /// counts are kept, so a reload in the middle of a visit does not restart it.
    pub fn reconfigure(&mut self, cfg: Settings, matcher: Matcher) {
        self.decider
            .reconfigure(cfg.decision, cfg.time_zone.clone());
        self.cfg = cfg;
        self.set_matcher(matcher);
    }

    /// Analyses one frame and publishes what it changed.
    pub fn process(&mut self, frame: &Frame, sink: &mut dyn Sink) -> Result<(), PipelineError> {
        let analysis = analyse(
            self.models,
            self.cfg.limits(),
            Some(&self.matcher),
            &frame.image,
        )?;
        self.stats.frames += 1;
        self.stats.faces += analysis.faces.len() as u64;
        sink.analysed(&FrameCost {
            detect_ms: analysis.detect_ms,
            faces: analysis
                .faces
                .iter()
                .map(|f| FaceCost {
                    align_ms: f.align_ms,
                    liveness_ms: f.liveness_ms,
                    embed_ms: f.embed_ms,
                    match_ms: f.match_ms,
                })
                .collect(),
        });
        let observations: Vec<Observation> = analysis
            .faces
            .iter()
            .map(|f| {
                let b = &f.face.bbox;
                let (band, person) = match (&f.matched, f.quality.is_good()) {
                    (_, false) => (Band::LowQuality, None),
                    (Some(m), true) => match &m.best {
                        Some(c) => {
                            let band = self.cfg.decision.band(c.score, c.threshold);
                            let id = self.matcher.index().people()[c.person].id.clone();
                            match band {
                                Band::Match | Band::Uncertain => (band, Some(id)),
                                _ => (band, None),
                            }
                        }
                        None => (Band::Unknown, None),
                    },
                    (None, true) => (Band::Unknown, None),
                };
                // No grant without a live face: a refused check outranks any match.
                let band = if f.refused_by(self.models.liveness.as_ref()) {
                    Band::Spoof
                } else {
                    band
                };
                Observation {
                    bbox: [b.x1, b.y1, b.x2, b.y2],
                    band,
                    person,
                }
            })
            .collect();
        let time = frame.time.duration_since(UNIX_EPOCH).unwrap_or_default();
        let decisions = self.decider.frame(time, &observations);
        for d in decisions {
            self.emit(&d, Some((frame, &analysis)), sink)?;
        }
        sink.frame_done();
        Ok(())
    }

    /// Ends every open track (the source ran out) and publishes the `end` events.
    pub fn finish(&mut self, sink: &mut dyn Sink) -> Result<RunStats, PipelineError> {
        for d in self.decider.finish() {
            self.emit(&d, None, sink)?;
        }
        sink.frame_done();
        Ok(self.stats)
    }

    /// Publishes the event of decision `d` (with the face it was taken on, when `seen`), and
    /// keeps the face among the recent ones for feedback.
    fn emit(
        &mut self,
        d: &Decision,
        seen: Option<(&Frame, &FrameAnalysis)>,
        sink: &mut dyn Sink,
    ) -> Result<(), PipelineError> {
        let face = seen.and_then(|(_, a)| d.face.and_then(|i| a.faces.get(i)));
        if matches!(d.access, Some(Access::Grant { .. })) {
            self.stats.grants += 1;
        }
        let seq = match sink.next_seq() {
            Some(s) => s.max(self.next_seq),
            None => self.next_seq,
        };
        let event = self.event(d, seen, face, seq);
        debug_assert!(event.lifecycle != Lifecycle::End || event.face.is_none());
        if let Some(f) = face {
            self.remember(&event.id, f);
        }
        self.next_seq = seq + 1;
        self.stats.events += 1;
        self.publish(&event, face, seen.map(|(frame, _)| frame), sink)
    }

    /// The event of decision `d`, numbered `seq`.
    fn event(
        &self,
        d: &Decision,
        seen: Option<(&Frame, &FrameAnalysis)>,
        face: Option<&FaceAnalysis>,
        seq: u64,
    ) -> Event {
        let candidate = face.and_then(FaceAnalysis::candidate);
        let people = self.matcher.index().people();
        let person = d.person.as_ref().map(|id| PersonRef {
            id: id.clone(),
            name: self
                .cfg
                .privacy
                .publish_names
                .then(|| people.iter().find(|p| &p.id == id).map(|p| p.name.clone()))
                .flatten(),
        });
        let scores = candidate.map(|(m, c)| Scores {
            score: c.score,
            basis: c.basis,
            threshold: c.threshold,
            uncertain_margin: self.cfg.decision.uncertain_margin,
            target_far: self.matcher.thresholds().target_far,
            full: c.full_score,
            masked: c.masked_score,
            second: m.second_score,
        });
        let latency = match (face, seen) {
            (Some(f), Some((frame, a))) => Latency {
                detect: a.detect_ms,
                align: f.align_ms,
                embed: f.embed_ms,
                matching: f.match_ms,
                liveness: f.liveness_ms,
                total: SystemTime::now()
                    .duration_since(frame.time)
                    .map_or(0.0, |d| d.as_secs_f32() * 1000.0),
            },
            _ => Latency::default(),
        };
        Event {
            schema: EVENT_SCHEMA,
            id: format!("{}-{}", self.run_id, d.track),
            seq,
            time: rfc3339(SystemTime::now()),
            lifecycle: d.lifecycle,
            device: self.cfg.device_id.clone(),
            frame: seen.map_or(
                FrameRef {
                    seq: 0,
                    origin: String::new(),
                },
                |(fr, _)| FrameRef {
                    seq: fr.seq,
                    origin: fr.origin.clone(),
                },
            ),
            result: Outcome::from(d.band),
            result_changed: d.changed,
            person,
            scores,
            occluded: candidate
                .map(|(m, _)| m.occluded.iter().collect())
                .unwrap_or_default(),
            regions: candidate
                .map(|(m, _)| m.regions.clone())
                .unwrap_or_default(),
            face: face.map(|f| FaceInfo {
                bbox: [
                    f.face.bbox.x1,
                    f.face.bbox.y1,
                    f.face.bbox.x2,
                    f.face.bbox.y2,
                ],
                detector_score: f.face.score,
                quality: f.quality.clone(),
                liveness: f
                    .live
                    .zip(self.models.liveness.as_ref())
                    .map(|(live, check)| LivenessInfo {
                        score: live.score,
                        threshold: check.threshold(),
                    }),
            }),
            agreeing_frames: d.agreeing,
            access: d.access.clone(),
            model_id: self.models.card.model_id.clone(),
            latency_ms: latency,
        }
    }

    /// Keeps `face` among the recent ones ("this is X" / "not this person" refer to them).
    fn remember(&mut self, event_id: &str, f: &FaceAnalysis) {
        let people = self.matcher.index().people();
        let candidate = f
            .candidate()
            .and_then(|(_, c)| people.get(c.person).map(|p| (p.id.clone(), c.full_score)));
        self.recent.retain(|r| r.event_id != event_id);
        if self.recent.len() >= RECENT_LIMIT {
            self.recent.pop_front();
        }
        self.recent.push_back(Recent {
            event_id: event_id.to_owned(),
            feature: f.embedding.feature.clone(),
            candidate,
            at: Instant::now(),
        });
    }

    /// Hands `event` to the sink with the face's pictures.
    fn publish(
        &self,
        event: &Event,
        face: Option<&FaceAnalysis>,
        frame: Option<&Frame>,
        sink: &mut dyn Sink,
    ) -> Result<(), PipelineError> {
        // Face pixels (the crop, and the heat map drawn over the face) leave the device only
        // as far as the privacy setting allows: by default never a stranger's.
        let known = matches!(event.result, Outcome::Match | Outcome::Uncertain);
        let crops = match self.cfg.privacy.face_crops {
            FaceCrops::None => false,
            FaceCrops::Known => known,
            FaceCrops::All => true,
        };
        let heat = face
            .filter(|_| crops)
            .and_then(|f| f.heatmap(self.models, &self.matcher));
        sink.publish(event, heat.as_deref())?;
        if let (true, Some(f), Some(frame)) = (crops, face, frame)
            && let Some(jpeg) = face_crop(&frame.image, &f.face.bbox)
        {
            sink.face_crop(event, &jpeg);
        }
        Ok(())
    }
}

/// The face's box with a quarter of its size around it, at most 192 px a side, as JPEG.
fn face_crop(image: &image::RgbImage, bbox: &facegate_detect::Candidate) -> Option<Vec<u8>> {
    let (w, h) = (bbox.x2 - bbox.x1, bbox.y2 - bbox.y1);
    let x0 = (bbox.x1 - w / 4.0).max(0.0) as u32;
    let y0 = (bbox.y1 - h / 4.0).max(0.0) as u32;
    let x1 = ((bbox.x2 + w / 4.0) as u32).min(image.width());
    let y1 = ((bbox.y2 + h / 4.0) as u32).min(image.height());
    if x1 <= x0 + 1 || y1 <= y0 + 1 {
        return None;
    }
    let crop = image::imageops::crop_imm(image, x0, y0, x1 - x0, y1 - y0).to_image();
    let side = crop.width().max(crop.height());
    let crop = if side > 192 {
        let scale = 192.0 / side as f32;
        image::imageops::resize(
            &crop,
            ((crop.width() as f32 * scale) as u32).max(1),
            ((crop.height() as f32 * scale) as u32).max(1),
            image::imageops::FilterType::Triangle,
        )
    } else {
        crop
    };
    let mut out = std::io::Cursor::new(Vec::new());
    crop.write_to(&mut out, image::ImageFormat::Jpeg).ok()?;
    Some(out.into_inner())
}

/// Runs `pipeline` on every frame of `source` until it ends or `stop` is set (checked between
/// frames, and at least every 200 ms while a live source is silent), calling `between` before
/// each frame (commands run there, never in the middle of a frame). Either way the open tracks
/// end with their `end` events. A `live` source (a camera) is
/// read on its own thread through a newest-wins hand-off; a recorded one is processed frame by
/// frame. Undecodable frames are logged and skipped.
pub fn run(
    pipeline: &mut Pipeline,
    source: Box<dyn FrameSource>,
    live: bool,
    sink: &mut dyn Sink,
    between: &mut dyn FnMut(&mut Pipeline) -> Result<(), PipelineError>,
    stop: &AtomicBool,
) -> Result<RunStats, PipelineError> {
    let stopping = || stop.load(Ordering::Relaxed);
    if !live {
        let mut source = source;
        while !stopping() {
            match source.next_frame() {
                Ok(Some(frame)) => {
                    between(pipeline)?;
                    process_or_skip(pipeline, &frame, sink)?;
                }
                Ok(None) => break,
                Err(e) if e.is_recoverable() => {
                    tracing::warn!("skipping a frame: {e}");
                    pipeline.stats.bad_frames += 1;
                }
                Err(e) => return Err(e.into()),
            }
        }
        return pipeline.finish(sink);
    }
    let handoff: Arc<Handoff<Result<Frame, SourceError>>> = Arc::new(Handoff::default());
    let stopper = source.stopper();
    let producer = {
        let handoff = Arc::clone(&handoff);
        let mut source = source;
        std::thread::spawn(move || {
            loop {
                match source.next_frame() {
                    Ok(Some(_)) if handoff.is_closed() => break,
                    Ok(Some(frame)) => {
                        handoff.put(Ok(frame));
                    }
                    Ok(None) => break,
                    Err(e) => {
                        let fatal = !e.is_recoverable();
                        handoff.put(Err(e));
                        if fatal {
                            break;
                        }
                    }
                }
            }
            handoff.close();
        })
    };
    let started = Instant::now();
    let mut result = Ok(());
    while !stopping() {
        let Some(item) = handoff.take_within(Duration::from_millis(200)) else {
            if handoff.is_closed() {
                break;
            }
            // No frame (a camera reconnecting): commands are still served.
            if let Err(e) = between(pipeline) {
                result = Err(e);
                break;
            }
            continue;
        };
        match item {
            Ok(frame) => {
                if let Err(e) =
                    between(pipeline).and_then(|()| process_or_skip(pipeline, &frame, sink))
                {
                    result = Err(e);
                    break;
                }
            }
            Err(e) if e.is_recoverable() => {
                tracing::warn!("skipping a frame: {e}");
                pipeline.stats.bad_frames += 1;
            }
            Err(e) => {
                result = Err(e.into());
                break;
            }
        }
    }
    handoff.close();
    // A network stream's ffmpeg child is killed and reaped here, even while the reader waits
    // on it. A camera never ends by itself and may be waiting for its device: the reader
    // thread is joined only if it has stopped; otherwise it stops when the process does.
    if let Some(stop) = stopper {
        stop();
    }
    if producer.is_finished() {
        let _ = producer.join();
    }
    pipeline.stats.dropped = handoff.dropped();
    tracing::debug!("live run took {:?}", started.elapsed());
    result?;
    pipeline.finish(sink)
}
