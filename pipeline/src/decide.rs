//! *decide*: from per-frame match results to one decision per visit.
//!
//! Pipeline position: after *match*, before *publish*. Faces are followed across frames as
//! tracks (box overlap between consecutive frames). A grant needs `agreeing_frames` frames in a
//! row matching the same person above threshold; `uncertain` is never acted on; one visit gives
//! one grant (debounce), and the same person is not granted again within `cooldown` (so a
//! person lingering at the door, or walking out and back in, does not re-trigger the relay).
//! A match outside the person's schedule is denied (`outside_schedule`). A face the liveness
//! check refuses is `spoof`: it breaks the run of agreeing frames, so every frame behind a grant
//! passed the check, and the track is denied once (`presentation_attack`) and granted nothing
//! for the rest of the visit: a photo wiggled until one frame passes must not open the door
//! (a resident refused by mistake steps out of view and back: a new track).

use crate::schedule::Schedule;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How a single observation of a face was classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Band {
    /// Above the person's threshold.
    Match,
    /// Within the uncertainty margin below the threshold: never acted on.
    Uncertain,
    /// Below it, or nobody enrolled.
    Unknown,
    /// Seen but not good enough to decide on.
    LowQuality,
    /// The liveness check found a presentation attack (a photo, a screen): refused, whoever it
    /// looks like.
    Spoof,
}

/// Decision settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DecideRules {
    /// Frames in a row that must match the same person before a grant.
    pub agreeing_frames: u32,
    /// Scores within this margin below the threshold are `uncertain`.
    pub uncertain_margin: f32,
    /// No second grant for the same person within this many seconds.
    pub cooldown_seconds: f32,
    /// A face missing from this many analysed frames in a row ends its track. Frames a live
    /// source dropped while the pipeline was busy do not count: a slow pipeline on a fast
    /// camera must not split one visit into many.
    pub track_gap_frames: u64,
    /// Box overlap (intersection over union) that continues a track.
    pub track_overlap: f32,
}

impl Default for DecideRules {
    fn default() -> Self {
        Self {
            agreeing_frames: 2,
            uncertain_margin: 0.02,
            cooldown_seconds: 10.0,
            track_gap_frames: 5,
            track_overlap: 0.3,
        }
    }
}

impl DecideRules {
    /// The band of a score held against `threshold`.
    pub fn band(&self, score: f32, threshold: f32) -> Band {
        if score >= threshold {
            Band::Match
        } else if score >= threshold - self.uncertain_margin {
            Band::Uncertain
        } else {
            Band::Unknown
        }
    }
}

/// One face in one frame, as *match* saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// Face box `[x1, y1, x2, y2]`, camera pixels.
    pub bbox: [f32; 4],
    /// The band.
    pub band: Band,
    /// The best candidate's person id, when there is one.
    pub person: Option<String>,
}

/// What happened to a track in this frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lifecycle {
    /// First event of this track.
    New,
    /// The track's band or person changed, or a door decision was taken.
    Update,
    /// The track left the view.
    End,
}

/// The door decision taken with an event, if any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "lowercase")]
pub enum Access {
    /// Open the door for this person.
    Grant {
        /// Who.
        person: String,
    },
    /// A face was seen and refused.
    Deny {
        /// Why (`unknown`, `cooldown`, ...).
        reason: String,
    },
}

/// An event for *publish*: one per change of a track.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Track id (stable over the visit).
    pub track: u64,
    /// Which face of the frame this is about (`None` for `end`).
    pub face: Option<usize>,
    /// Lifecycle step.
    pub lifecycle: Lifecycle,
    /// The band now.
    pub band: Band,
    /// The person now (best candidate).
    pub person: Option<String>,
    /// Frames in a row that agreed on `person` with a match.
    pub agreeing: u32,
    /// The door decision, when one is taken with this event.
    pub access: Option<Access>,
    /// The band or person differs from the track's previous event (always for `new`, never
    /// for `end`): false on an event sent only to carry a door decision.
    pub changed: bool,
}

#[derive(Debug, Clone)]
struct Track {
    id: u64,
    bbox: [f32; 4],
    last_frame: u64,
    band: Band,
    person: Option<String>,
    agreeing: u32,
    granted: bool,
    denied: bool,
    /// The liveness check refused a frame of this track: no grant for the rest of the visit.
    spoofed: bool,
}

/// Follows faces over frames and takes decisions; one per camera.
#[derive(Debug, Clone)]
pub struct Decider {
    rules: DecideRules,
    tracks: Vec<Track>,
    next_track: u64,
    last_grant: Vec<(String, Duration)>,
    schedules: Vec<(String, Schedule)>,
    time_zone: TimeZone,
    /// Frames taken so far: the clock tracks age by.
    analysed: u64,
}

/// Whether `person` may come in at `time` (people without a schedule: always).
fn in_schedule(
    schedules: &[(String, Schedule)],
    tz: &TimeZone,
    person: &str,
    time: Duration,
) -> bool {
    schedules
        .iter()
        .find(|(p, _)| p == person)
        .is_none_or(|(_, s)| s.allows(time.as_secs_f64(), tz))
}

/// The reason a track is denied on a frame of this band, if the band alone denies it.
fn deny_reason(band: Band) -> Option<&'static str> {
    match band {
        Band::Unknown => Some("unknown"),
        Band::Spoof => Some("presentation_attack"),
        Band::Match | Band::Uncertain | Band::LowQuality => None,
    }
}

fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    let area = |r: &[f32; 4]| (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0);
    let union = area(a) + area(b) - inter;
    if union > 0.0 { inter / union } else { 0.0 }
}

impl Decider {
    /// A decider with `rules`.
    pub fn new(rules: DecideRules) -> Self {
        Self {
            rules,
            tracks: Vec::new(),
            next_track: 1,
            last_grant: Vec::new(),
            schedules: Vec::new(),
            time_zone: TimeZone::UTC,
            analysed: 0,
        }
    }

    /// Grants only within each person's schedule (people not listed: any time), in `tz`.
    pub fn with_schedules(mut self, schedules: Vec<(String, Schedule)>, tz: TimeZone) -> Self {
        self.schedules = schedules;
        self.time_zone = tz;
        self
    }

    /// Replaces the schedules (the gallery changed); open tracks keep their state.
    pub fn set_schedules(&mut self, schedules: Vec<(String, Schedule)>) {
        self.schedules = schedules;
    }

    /// Replaces the rules and the time zone (a reloaded config); open tracks keep their state.
    pub fn reconfigure(&mut self, rules: DecideRules, tz: TimeZone) {
        self.rules = rules;
        self.time_zone = tz;
    }

    /// The rules in use.
    pub fn rules(&self) -> &DecideRules {
        &self.rules
    }

    /// Takes the next analysed frame (at `time` since the decider's epoch) with its
    /// observations; returns the events to publish, tracks that ended first.
    pub fn frame(&mut self, time: Duration, faces: &[Observation]) -> Vec<Decision> {
        self.analysed += 1;
        let seq = self.analysed;
        let gap = self.rules.track_gap_frames;
        let mut out = self.end_tracks(|t| seq.saturating_sub(t.last_frame) > gap);
        let mut taken = vec![false; self.tracks.len()];
        for (i, face) in faces.iter().enumerate() {
            let best = self
                .tracks
                .iter()
                .enumerate()
                .filter(|(k, t)| !taken[*k] && t.last_frame < seq)
                .map(|(k, t)| (k, iou(&t.bbox, &face.bbox)))
                .filter(|(_, o)| *o >= self.rules.track_overlap)
                .max_by(|a, b| a.1.total_cmp(&b.1));
            let (k, lifecycle) = match best {
                Some((k, _)) => {
                    taken[k] = true;
                    (k, Lifecycle::Update)
                }
                None => {
                    self.tracks.push(Track {
                        id: self.next_track,
                        bbox: face.bbox,
                        last_frame: seq,
                        band: face.band,
                        person: face.person.clone(),
                        agreeing: 0,
                        granted: false,
                        denied: false,
                        spoofed: false,
                    });
                    taken.push(true);
                    self.next_track += 1;
                    (self.tracks.len() - 1, Lifecycle::New)
                }
            };
            let rules = self.rules;
            let track = &mut self.tracks[k];
            let changed = lifecycle == Lifecycle::New
                || track.band != face.band
                || track.person != face.person;
            let agrees =
                face.band == Band::Match && (track.person == face.person || track.agreeing == 0);
            track.agreeing = if agrees { track.agreeing + 1 } else { 0 };
            if face.band == Band::Match && !agrees {
                // A match on someone else restarts the count with this frame.
                track.agreeing = 1;
            }
            track.spoofed |= face.band == Band::Spoof;
            track.bbox = face.bbox;
            track.last_frame = seq;
            track.band = face.band;
            track.person = face.person.clone();
            let mut access = None;
            if face.band == Band::Match
                && !track.granted
                && !track.spoofed
                && track.agreeing >= rules.agreeing_frames
            {
                let person = face.person.clone().unwrap_or_default();
                let cooling = self.last_grant.iter().any(|(p, at)| {
                    *p == person && time.saturating_sub(*at).as_secs_f32() < rules.cooldown_seconds
                });
                track.granted = true;
                access = Some(if cooling {
                    Access::Deny {
                        reason: "cooldown".into(),
                    }
                } else if !in_schedule(&self.schedules, &self.time_zone, &person, time) {
                    Access::Deny {
                        reason: "outside_schedule".into(),
                    }
                } else {
                    self.last_grant.retain(|(p, _)| *p != person);
                    self.last_grant.push((person.clone(), time));
                    Access::Grant { person }
                });
            } else if let (Some(reason), false, false) =
                (deny_reason(face.band), track.denied, track.granted)
            {
                track.denied = true;
                access = Some(Access::Deny {
                    reason: reason.into(),
                });
            }
            if changed || access.is_some() {
                out.push(Decision {
                    track: track.id,
                    face: Some(i),
                    lifecycle,
                    band: track.band,
                    person: track.person.clone(),
                    agreeing: track.agreeing,
                    access,
                    changed,
                });
            }
        }
        out
    }

    /// Ends every open track (the source ran out); returns their `end` events.
    pub fn finish(&mut self) -> Vec<Decision> {
        self.end_tracks(|_| true)
    }

    /// Removes the tracks `ended` picks; returns their `end` events.
    fn end_tracks(&mut self, ended: impl Fn(&Track) -> bool) -> Vec<Decision> {
        let mut out = Vec::new();
        self.tracks.retain(|t| {
            if !ended(t) {
                return true;
            }
            out.push(Decision {
                track: t.id,
                face: None,
                lifecycle: Lifecycle::End,
                band: t.band,
                person: t.person.clone(),
                agreeing: t.agreeing,
                access: None,
                changed: false,
            });
            false
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(band: Band, person: Option<&str>) -> Observation {
        Observation {
            bbox: [10.0, 10.0, 60.0, 60.0],
            band,
            person: person.map(Into::into),
        }
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    /// Empty frames until the open tracks end; their `end` events.
    fn leave(d: &mut Decider, time: Duration) -> Vec<Decision> {
        let mut out = Vec::new();
        for _ in 0..=d.rules().track_gap_frames {
            out.extend(d.frame(time, &[]));
        }
        out
    }

    #[test]
    fn a_track_ends_after_the_gap_in_analysed_frames_only() {
        let mut d = Decider::new(DecideRules::default());
        let gap = d.rules().track_gap_frames;
        d.frame(secs(0), &[seen(Band::Match, Some("ann"))]);
        // Missing from fewer than `gap` analysed frames (however many frames the camera sent
        // meanwhile): the same visit.
        for _ in 1..gap {
            assert!(d.frame(secs(0), &[]).is_empty());
        }
        let e = d.frame(secs(1), &[seen(Band::Match, Some("ann"))]);
        assert_eq!(e[0].lifecycle, Lifecycle::Update);
        assert!(matches!(e[0].access, Some(Access::Grant { .. })));
        // Missing from `gap` frames: the track ends on the next one, and the next sighting is
        // a new visit.
        for _ in 0..gap {
            assert!(d.frame(secs(1), &[]).is_empty());
        }
        let e = d.frame(secs(1), &[]);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].lifecycle, Lifecycle::End);
        let e = d.frame(secs(2), &[seen(Band::Match, Some("ann"))]);
        assert_eq!(e[0].lifecycle, Lifecycle::New);
    }

    #[test]
    fn a_grant_needs_agreeing_frames_and_comes_once_per_visit() {
        let mut d = Decider::new(DecideRules::default());
        let e = d.frame(secs(0), &[seen(Band::Match, Some("ann"))]);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].lifecycle, Lifecycle::New);
        assert_eq!(e[0].access, None, "one frame is not enough");
        assert!(e[0].changed);
        let e = d.frame(secs(0), &[seen(Band::Match, Some("ann"))]);
        assert_eq!(
            e[0].access,
            Some(Access::Grant {
                person: "ann".into()
            })
        );
        // Sent for the decision alone: the outcome is the one already told.
        assert!(!e[0].changed);
        // Same visit: nothing more, however long ann stays.
        for _ in 2..10 {
            assert!(
                d.frame(secs(1), &[seen(Band::Match, Some("ann"))])
                    .is_empty()
            );
        }
        // She leaves; the track ends.
        let e = leave(&mut d, secs(2));
        assert_eq!(e[0].lifecycle, Lifecycle::End);
        assert!(!e[0].changed);
        // Back within the cool-down: refused for that reason.
        d.frame(secs(3), &[seen(Band::Match, Some("ann"))]);
        let e = d.frame(secs(3), &[seen(Band::Match, Some("ann"))]);
        assert_eq!(
            e[0].access,
            Some(Access::Deny {
                reason: "cooldown".into()
            })
        );
    }

    #[test]
    fn uncertain_is_never_acted_on_and_unknown_is_denied_once() {
        let mut d = Decider::new(DecideRules::default());
        for _ in 0..5 {
            for e in d.frame(secs(0), &[seen(Band::Uncertain, Some("ann"))]) {
                assert_eq!(e.access, None);
            }
        }
        let mut d = Decider::new(DecideRules::default());
        let denials: usize = (0..5)
            .map(|_| {
                d.frame(secs(0), &[seen(Band::Unknown, None)])
                    .iter()
                    .filter(|e| e.access.is_some())
                    .count()
            })
            .sum();
        assert_eq!(denials, 1);
    }

    #[test]
    fn a_spoofed_track_is_denied_once_and_never_granted() {
        let mut d = Decider::new(DecideRules::default());
        d.frame(secs(0), &[seen(Band::Match, Some("ann"))]);
        let e = d.frame(secs(0), &[seen(Band::Spoof, Some("ann"))]);
        assert_eq!(
            e[0].access,
            Some(Access::Deny {
                reason: "presentation_attack".into()
            })
        );
        assert_eq!(e[0].agreeing, 0, "a refused frame breaks the run");
        // The photo passes the check on later frames: still no grant on this track.
        for s in 2..8 {
            for e in d.frame(secs(0), &[seen(Band::Match, Some("ann"))]) {
                assert_eq!(e.access, None, "frame {s}");
            }
        }
        // A new visit (the track ended) is decided afresh.
        leave(&mut d, secs(30));
        d.frame(secs(30), &[seen(Band::Match, Some("ann"))]);
        let e = d.frame(secs(30), &[seen(Band::Match, Some("ann"))]);
        assert_eq!(
            e[0].access,
            Some(Access::Grant {
                person: "ann".into()
            })
        );
    }

    #[test]
    fn frames_that_disagree_restart_the_count() {
        let mut d = Decider::new(DecideRules::default());
        d.frame(secs(0), &[seen(Band::Match, Some("ann"))]);
        let e = d.frame(secs(0), &[seen(Band::Match, Some("bob"))]);
        assert_eq!(e[0].access, None);
        assert_eq!(e[0].agreeing, 1);
        let e = d.frame(secs(0), &[seen(Band::Match, Some("bob"))]);
        assert_eq!(
            e[0].access,
            Some(Access::Grant {
                person: "bob".into()
            })
        );
    }

    #[test]
    fn bands_follow_the_threshold_and_margin() {
        let r = DecideRules::default();
        assert_eq!(r.band(0.9, 0.9), Band::Match);
        assert_eq!(r.band(0.89, 0.9), Band::Uncertain);
        assert_eq!(r.band(0.5, 0.9), Band::Unknown);
    }

    #[test]
    fn a_match_outside_the_person_s_schedule_is_denied() {
        let weekdays = Schedule(vec![
            crate::schedule::Window::parse("mon-fri 07:00-19:00").unwrap(),
        ]);
        let mut d = Decider::new(DecideRules {
            agreeing_frames: 1,
            ..Default::default()
        })
        .with_schedules(vec![("ada".into(), weekdays)], TimeZone::UTC);
        // 2026-11-30 is a Monday: 06:00 UTC is before the window, 08:00 inside it.
        let monday = 1_795_996_800; // 2026-11-30T00:00:00Z
        let decide = |mut d: Decider, hour: u64| {
            d.frame(
                secs(monday + hour * 3600),
                &[seen(Band::Match, Some("ada"))],
            )[0]
            .access
            .clone()
        };
        assert_eq!(
            decide(d.clone(), 6),
            Some(Access::Deny {
                reason: "outside_schedule".into()
            })
        );
        assert_eq!(
            decide(d.clone(), 8),
            Some(Access::Grant {
                person: "ada".into()
            })
        );
        // Someone without a schedule: any time.
        let other = d.frame(secs(monday + 3 * 3600), &[seen(Band::Match, Some("bob"))]);
        assert!(matches!(other[0].access, Some(Access::Grant { .. })));
    }
}
