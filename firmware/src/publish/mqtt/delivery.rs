//! Which acknowledgement belongs to the message in flight: the at-least-once sender's
//! bookkeeping, kept apart from the network so it can be tested without a broker.
//!
//! The sender hands one QoS 1 message at a time to rumqttc, which writes it under a packet id
//! of its choosing (reported as `Outgoing::Publish(pkid)`); the broker's `PUBACK` names that
//! id. A message counts as delivered only when the acknowledgement carries *its* id. Two things
//! make that more than counting acknowledgements:
//! - after a reconnect rumqttc writes every unacknowledged publish of the old connection again
//!   (its own replay), under the old ids, before anything new; the sender has meanwhile sent
//!   the same message again, so those writes and their acknowledgements are not the new
//!   attempt's;
//! - a message handed over just before the connection dropped may be written only after the
//!   reconnect, under an id the sender never saw: an *orphan*, whose write comes first.
//!
//! The sender is the only QoS 1 publisher while it runs (the link's last `offline` is sent
//! after it stopped), so every other write it sees is one of those.

use std::collections::VecDeque;

/// How many packet ids of abandoned attempts are remembered (rumqttc keeps 100 in flight at
/// most; the sender abandons one per reconnect or time-out).
const REMEMBERED: usize = 32;

/// Where the message in flight is on its way to the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Phase {
    /// Nothing in flight.
    #[default]
    Idle,
    /// Handed to the client; its packet id is not known yet.
    Handed,
    /// Written to the connection as packet `pkid`.
    Written {
        /// rumqttc's packet id.
        pkid: u16,
    },
    /// The broker acknowledged it.
    Acknowledged,
    /// The attempt was abandoned (the connection ended, or no acknowledgement came in time):
    /// the sender sends the message again.
    Abandoned,
}

/// The bookkeeping of one message at a time; see the module's documentation.
#[derive(Debug, Default)]
pub struct Delivery {
    phase: Phase,
    /// Packet ids of abandoned attempts, newest last: their writes (rumqttc's replay) and
    /// acknowledgements belong to no current attempt.
    abandoned: VecDeque<u16>,
    /// Abandoned attempts handed over but not yet written: the next writes are theirs.
    orphans: usize,
    /// Acknowledgements that matched no attempt, since start.
    foreign_acks: u64,
}

impl Delivery {
    /// The phase of the current attempt.
    #[cfg(test)]
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Acknowledgements since start that belonged to no current attempt (replays of
    /// abandoned attempts, or packets the sender did not send).
    pub fn foreign_acks(&self) -> u64 {
        self.foreign_acks
    }

    /// A new attempt: called *before* the message is handed to the client, so that its write
    /// cannot be reported before the attempt exists.
    pub fn hand_over(&mut self) {
        self.phase = Phase::Handed;
    }

    /// The client wrote a publish under `pkid` (`Outgoing::Publish`; QoS 0 publishes carry 0
    /// and are nobody's attempt).
    pub fn written(&mut self, pkid: u16) {
        if pkid == 0 || self.abandoned.contains(&pkid) {
            // rumqttc's replay of an abandoned attempt.
            return;
        }
        if self.orphans > 0 {
            // An abandoned attempt reaching the wire only now (writes leave in order).
            self.orphans -= 1;
            self.remember(pkid);
            return;
        }
        if self.phase == Phase::Handed {
            self.phase = Phase::Written { pkid };
        }
    }

    /// The broker acknowledged `pkid` (`PUBACK`); whether that delivered the current attempt.
    pub fn acknowledged(&mut self, pkid: u16) -> bool {
        if self.phase == (Phase::Written { pkid }) {
            self.phase = Phase::Acknowledged;
            return true;
        }
        if let Some(at) = self.abandoned.iter().position(|&p| p == pkid) {
            // That id is free again at rumqttc: it may be handed out anew.
            self.abandoned.remove(at);
        }
        self.foreign_acks += 1;
        false
    }

    /// The attempt is given up: the connection ended (the sender sends the message again
    /// after the reconnect) or the link stops. Its late write and acknowledgement are nobody's.
    pub fn abandon(&mut self) {
        match self.phase {
            Phase::Handed => self.orphans += 1,
            Phase::Written { pkid } => self.remember(pkid),
            Phase::Idle | Phase::Acknowledged | Phase::Abandoned => return,
        }
        self.phase = Phase::Abandoned;
    }

    /// No acknowledgement came in time while connected: the attempt is abandoned and what was
    /// learnt about orphans is forgotten, so a wrong guess costs one time-out and a message
    /// sent twice, never a message lost.
    pub fn timed_out(&mut self) {
        self.orphans = 0;
        if self.phase == Phase::Handed {
            // Not seen written: perhaps written under an id taken for an orphan's. Not counted
            // as an orphan itself, so the count cannot grow on guesses.
            self.phase = Phase::Abandoned;
        } else {
            self.abandon();
        }
    }

    /// The outcome once settled: `Some(true)` delivered, `Some(false)` abandoned.
    pub fn settled(&self) -> Option<bool> {
        match self.phase {
            Phase::Acknowledged => Some(true),
            Phase::Abandoned => Some(false),
            Phase::Idle | Phase::Handed | Phase::Written { .. } => None,
        }
    }

    /// Ends the attempt (whatever became of it), ready for the next one.
    pub fn finish(&mut self) {
        self.phase = Phase::Idle;
    }

    fn remember(&mut self, pkid: u16) {
        if self.abandoned.len() == REMEMBERED {
            self.abandoned.pop_front();
        }
        self.abandoned.push_back(pkid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(pkid: u16) -> Delivery {
        let mut d = Delivery::default();
        d.hand_over();
        d.written(pkid);
        d
    }

    #[test]
    fn only_the_acknowledgement_of_its_own_packet_delivers_a_message() {
        let mut d = written(3);
        assert_eq!(d.phase(), Phase::Written { pkid: 3 });
        assert!(!d.acknowledged(2), "another packet's acknowledgement");
        assert_eq!(d.settled(), None);
        assert!(d.acknowledged(3));
        assert_eq!(d.settled(), Some(true));
        assert_eq!(d.foreign_acks(), 1);
        d.finish();
        assert!(!d.acknowledged(3), "a second PUBACK delivers nothing");
        assert_eq!(d.phase(), Phase::Idle);
    }

    #[test]
    fn qos0_writes_are_nobodys_attempt() {
        let mut d = Delivery::default();
        d.hand_over();
        d.written(0);
        assert_eq!(d.phase(), Phase::Handed);
        d.written(7);
        assert_eq!(d.phase(), Phase::Written { pkid: 7 });
    }

    #[test]
    fn an_acknowledgement_before_anything_is_written_is_foreign() {
        let mut d = Delivery::default();
        d.hand_over();
        assert!(!d.acknowledged(1));
        assert_eq!(d.settled(), None);
    }

    #[test]
    fn after_a_reconnect_rumqttcs_replay_is_not_taken_for_the_new_attempt() {
        let mut d = written(5);
        d.abandon();
        assert_eq!(
            d.settled(),
            Some(false),
            "abandoned: the sender sends again"
        );
        d.finish();
        // Reconnected: the sender hands the message over again, and rumqttc first replays 5.
        d.hand_over();
        d.written(5);
        assert_eq!(d.phase(), Phase::Handed, "the replay is not this attempt");
        d.written(6);
        assert!(!d.acknowledged(5), "the replay's acknowledgement");
        assert_eq!(d.settled(), None);
        assert!(d.acknowledged(6));
        // Id 5 is free again: when rumqttc hands it out anew it is an attempt's.
        d.finish();
        d.hand_over();
        d.written(5);
        assert!(d.acknowledged(5));
    }

    #[test]
    fn a_message_handed_over_as_the_connection_dropped_is_an_orphan_written_first() {
        let mut d = Delivery::default();
        d.hand_over();
        d.abandon();
        assert_eq!(d.settled(), Some(false));
        d.finish();
        d.hand_over();
        d.written(9); // the orphan, written after the reconnect
        assert_eq!(d.phase(), Phase::Handed);
        d.written(10);
        assert!(!d.acknowledged(9));
        assert!(d.acknowledged(10));
    }

    #[test]
    fn a_time_out_abandons_the_attempt_and_its_late_acknowledgement_is_foreign() {
        let mut d = written(4);
        d.timed_out();
        assert_eq!(d.settled(), Some(false));
        d.finish();
        d.hand_over();
        d.written(11);
        assert!(!d.acknowledged(4), "late PUBACK of the abandoned attempt");
        assert_eq!(d.phase(), Phase::Written { pkid: 11 });
        assert!(d.acknowledged(11));
    }

    #[test]
    fn a_wrong_orphan_count_costs_one_time_out_not_a_message() {
        // Two attempts abandoned before being written; suppose only one is ever written.
        let mut d = Delivery::default();
        d.hand_over();
        d.abandon();
        d.finish();
        d.hand_over();
        d.abandon();
        d.finish();
        d.hand_over();
        d.written(1); // orphan
        d.written(2); // taken for the second orphan: this attempt's write is missed
        assert_eq!(d.phase(), Phase::Handed);
        assert!(!d.acknowledged(2), "never delivered on a guess");
        d.timed_out();
        d.finish();
        d.hand_over();
        d.written(3);
        assert!(
            d.acknowledged(3),
            "after the time-out writes are attempts' again"
        );
    }

    #[test]
    fn the_memory_of_abandoned_ids_is_bounded() {
        let mut d = Delivery::default();
        for pkid in 1..=(REMEMBERED as u16 + 10) {
            d.hand_over();
            d.written(pkid);
            d.abandon();
            d.finish();
        }
        assert_eq!(d.abandoned.len(), REMEMBERED);
        d.hand_over();
        d.written(1); // forgotten long ago: an attempt's again
        assert!(d.acknowledged(1));
    }
}
