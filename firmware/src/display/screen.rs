//! What the door screen shows, decided from the events: a welcome, a refusal, a hint to the
//! person in front of it, or the idle prompt. Pure state, no drawing.

use facegate_pipeline::decide::Access;
use facegate_pipeline::event::{Event, Outcome};
use facegate_pipeline::quality::QualityProblem;
use std::time::{Duration, Instant};

/// One screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum View {
    /// Nobody being decided on.
    Idle,
    /// The door opens for this person.
    Welcome {
        /// Display name (or id when names are withheld).
        name: String,
    },
    /// A face was refused.
    Refused {
        /// The line to show.
        why: String,
    },
    /// A face is being looked at but cannot be decided on yet.
    Hint {
        /// What the person should do.
        hint: String,
    },
}

/// What a face the liveness check refused is shown: no reason given.
pub const LOOK_AT_CAMERA: &str = "Please look at the camera";

/// The line a person in front of the camera can act on.
fn hint(problems: &[QualityProblem]) -> String {
    match problems.first() {
        Some(QualityProblem::TooSmall { .. }) => "Please come closer",
        Some(
            QualityProblem::Turned { .. }
            | QualityProblem::Tilted { .. }
            | QualityProblem::Rotated { .. },
        ) => "Please face the camera",
        Some(QualityProblem::Blurred { .. }) | None => "Please hold still",
    }
    .to_owned()
}

/// The screen's state: the current view, and when it falls back to idle.
#[derive(Debug)]
pub struct Screen {
    view: View,
    shown: Option<Instant>,
    hold: Duration,
}

impl Screen {
    /// An idle screen whose messages stay `hold` long.
    pub fn new(hold: Duration) -> Self {
        Self {
            view: View::Idle,
            shown: None,
            hold,
        }
    }

    /// What is shown now.
    pub fn view(&self) -> &View {
        &self.view
    }

    /// Takes an event at `now`; returns whether the view changed. A decision (welcome,
    /// refusal) is not replaced by a mere hint while it is held.
    pub fn observe(&mut self, event: &Event, now: Instant) -> bool {
        let name = || {
            event
                .person
                .as_ref()
                .map(|p| p.name.clone().unwrap_or_else(|| p.id.clone()))
                .unwrap_or_default()
        };
        let next = match &event.access {
            Some(Access::Grant { .. }) => View::Welcome { name: name() },
            Some(Access::Deny { reason }) if reason == "cooldown" => View::Welcome { name: name() },
            Some(Access::Deny { reason }) if reason == "outside_schedule" => View::Refused {
                why: "Not at this time".into(),
            },
            // A presentation attack is not told it was seen: the screen asks what it asks of
            // anyone the camera cannot decide on.
            Some(Access::Deny { reason }) if reason == "presentation_attack" => View::Hint {
                hint: LOOK_AT_CAMERA.into(),
            },
            Some(Access::Deny { .. }) => View::Refused {
                why: "Not recognised".into(),
            },
            None => match (event.result, &event.face) {
                (Outcome::LowQuality, Some(face)) => View::Hint {
                    hint: hint(&face.quality.problems),
                },
                (Outcome::Uncertain, _) => View::Hint { hint: hint(&[]) },
                (Outcome::Spoof, _) => View::Hint {
                    hint: LOOK_AT_CAMERA.into(),
                },
                _ => return false,
            },
        };
        let holding_decision = matches!(self.view, View::Welcome { .. } | View::Refused { .. })
            && self
                .shown
                .is_some_and(|at| now.duration_since(at) < self.hold);
        if matches!(next, View::Hint { .. }) && holding_decision {
            return false;
        }
        self.shown = Some(now);
        let changed = next != self.view;
        self.view = next;
        changed
    }

    /// Falls back to idle once the current view has been held long enough; returns whether
    /// the view changed.
    pub fn tick(&mut self, now: Instant) -> bool {
        if self.view != View::Idle
            && self
                .shown
                .is_some_and(|at| now.duration_since(at) >= self.hold)
        {
            self.view = View::Idle;
            self.shown = None;
            return true;
        }
        false
    }
}
