//! Who is at the door now, for dashboards: the retained `<prefix>/<device>/presence` message.
//!
//! Part of *publish*, derived from the events alone (no stage reaches back). A person is
//! present from the first event that matches them on a face track until that track ends, so a
//! score that dips below the threshold for a frame does not make a dashboard flicker. The
//! message is retained with `since` (when this set of people began) and `expires_at`: it is
//! refreshed while anyone is present, so a reader that finds it past `expires_at` knows the
//! device stopped updating it. Never used for doors: that is `.../access`, signed and expiring.

use super::access::unix_now;
use facegate_pipeline::decide::Lifecycle;
use facegate_pipeline::event::{Event, Outcome, PersonRef, rfc3339};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

/// How long a presence message stays valid without a refresh.
pub const PRESENCE_TTL: Duration = Duration::from_secs(30);

/// One person in view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Present {
    /// Who (name withheld when the config withholds names).
    #[serde(flatten)]
    pub person: PersonRef,
    /// Since when, RFC 3339.
    pub since: String,
}

/// The presence payload.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PresenceState {
    /// The people in view, by id.
    pub people: Vec<Present>,
    /// How many.
    pub count: usize,
    /// When this set of people began, RFC 3339.
    pub since: String,
    /// Unix seconds after which the message is stale.
    pub expires_at: f64,
}

/// Follows events and says when the presence message must be (re)sent.
#[derive(Debug)]
pub struct Presence {
    /// Face tracks (event ids) and whom they show.
    tracks: BTreeMap<String, PersonRef>,
    /// The people in view (by id) and since when, while any track shows them.
    present: BTreeMap<String, (PersonRef, SystemTime)>,
    since: SystemTime,
    dirty: bool,
    sent: Option<Instant>,
}

impl Default for Presence {
    fn default() -> Self {
        Self {
            tracks: BTreeMap::new(),
            present: BTreeMap::new(),
            since: SystemTime::now(),
            // The first message says "nobody" (replacing whatever an earlier run left).
            dirty: true,
            sent: None,
        }
    }
}

impl Presence {
    /// Takes one event into account.
    pub fn observe(&mut self, event: &Event) {
        match (event.lifecycle, event.result, &event.person) {
            (Lifecycle::End, _, _) => {
                self.tracks.remove(&event.id);
            }
            (_, Outcome::Match, Some(person)) => {
                self.tracks.insert(event.id.clone(), person.clone());
            }
            _ => {}
        }
        // Only arrivals and departures change the message; a person stays present (with the
        // same `since`) while any track shows them.
        let now = SystemTime::now();
        let before = self.present.len();
        self.present
            .retain(|id, _| self.tracks.values().any(|p| p.id == *id));
        let mut changed = self.present.len() != before;
        for person in self.tracks.values() {
            if !self.present.contains_key(&person.id) {
                self.present
                    .insert(person.id.clone(), (person.clone(), now));
                changed = true;
            }
        }
        if changed {
            self.since = now;
            self.dirty = true;
        }
    }

    /// The people in view, by id.
    fn people(&self) -> Vec<Present> {
        self.present
            .values()
            .map(|(person, since)| Present {
                person: person.clone(),
                since: rfc3339(*since),
            })
            .collect()
    }

    /// The message to send now, if one is due: after a change, or a third of the way to the
    /// last one's expiry while someone is present.
    pub fn due(&mut self, now: Instant) -> Option<PresenceState> {
        let refresh = !self.present.is_empty()
            && self
                .sent
                .is_some_and(|at| now.duration_since(at) >= PRESENCE_TTL / 3);
        if !(self.dirty || refresh) {
            return None;
        }
        self.dirty = false;
        self.sent = Some(now);
        let people = self.people();
        Some(PresenceState {
            count: people.len(),
            people,
            since: rfc3339(self.since),
            expires_at: unix_now() + PRESENCE_TTL.as_secs_f64(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, lifecycle: Lifecycle, result: Outcome, person: Option<&str>) -> Event {
        crate::publish::sample_event(id, lifecycle, result, person, None)
    }

    fn ids(s: &PresenceState) -> Vec<&str> {
        s.people.iter().map(|p| p.person.id.as_str()).collect()
    }

    #[test]
    fn people_are_present_from_their_first_match_until_their_track_ends() {
        let mut p = Presence::default();
        let t0 = Instant::now();
        let first = p.due(t0).unwrap();
        assert_eq!(first.count, 0, "the first message clears an old one");
        assert!(p.due(t0).is_none());

        p.observe(&event("t1", Lifecycle::New, Outcome::Unknown, None));
        assert!(p.due(t0).is_none(), "a stranger is nobody to a dashboard");
        p.observe(&event("t2", Lifecycle::New, Outcome::Match, Some("ada")));
        p.observe(&event("t3", Lifecycle::New, Outcome::Match, Some("ada")));
        let s = p.due(t0).unwrap();
        assert_eq!((ids(&s), s.count), (vec!["ada"], 1), "one entry per person");
        assert!(s.expires_at > unix_now() + 29.0);

        // A dip to uncertain does not remove her; nothing changed, nothing sent...
        p.observe(&event(
            "t2",
            Lifecycle::Update,
            Outcome::Uncertain,
            Some("ada"),
        ));
        assert!(p.due(t0 + Duration::from_secs(1)).is_none());
        // ...until a refresh is due, a third of the way to expiry.
        assert!(p.due(t0 + PRESENCE_TTL / 3).is_some());

        p.observe(&event("t2", Lifecycle::End, Outcome::Match, Some("ada")));
        assert!(p.due(t0 + PRESENCE_TTL / 3).is_none(), "t3 still shows her");
        p.observe(&event("t3", Lifecycle::End, Outcome::Match, Some("ada")));
        let s = p.due(t0 + PRESENCE_TTL / 3).unwrap();
        assert_eq!(s.count, 0);
        assert!(p.due(t0 + PRESENCE_TTL).is_none(), "nobody: no refreshes");
    }
}
