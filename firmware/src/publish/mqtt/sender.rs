//! The sender thread, the link's only publisher: one message at a time, in the order
//! [`crate::publish::queues`] gives (door decisions first), each QoS 1 message acknowledged by
//! its own packet id (see [`super::delivery`]) before the next leaves. An event leaves the
//! on-disk outbox only once acknowledged; an attempt abandoned by a reconnect or a time-out is
//! sent again, so events arrive at least once and in order.

use super::{Shared, lock_outbox};
use crate::publish::outbox::Outbox;
use crate::publish::queues::Next;
use rumqttc::{Client, QoS};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long the sender waits for one acknowledgement before sending again.
const ACK_TIMEOUT: Duration = Duration::from_secs(10);

/// Publishes `payload` and waits for its acknowledgement (QoS 1) for [`ACK_TIMEOUT`], the
/// attempt's abandonment or the link's stop; `None` when the client is gone, else whether the
/// broker has it.
pub(super) fn send_one(
    client: &Client,
    shared: &Shared,
    topic: &str,
    qos: QoS,
    retain: bool,
    payload: Vec<u8>,
) -> Option<bool> {
    if qos == QoS::AtMostOnce {
        client.publish(topic, qos, retain, payload).ok()?;
        return Some(true);
    }
    // The attempt exists before the client can report its packet id.
    shared.lock().delivery.hand_over();
    if client.publish(topic, qos, retain, payload).is_err() {
        shared.lock().delivery.finish();
        return None;
    }
    let deadline = Instant::now() + ACK_TIMEOUT;
    let mut s = shared.wait_until(Some(deadline), |s| s.delivery.settled().is_some() || s.stop);
    let acked = match s.delivery.settled() {
        Some(acked) => acked,
        // The link stops: the message stays queued (an event on disk for the next start).
        None if s.stop => {
            s.delivery.abandon();
            false
        }
        None => {
            s.delivery.timed_out();
            false
        }
    };
    tracing::debug!("sent {topic}: acknowledged {acked}");
    s.delivery.finish();
    Some(acked)
}

pub(super) fn run(client: &Client, shared: &Shared, outbox: &Mutex<Outbox>) {
    loop {
        let event = match lock_outbox(outbox).peek() {
            Ok(n) => n,
            Err(e) => {
                tracing::error!("{e}");
                None
            }
        };
        let next = {
            let mut s = shared.wait_until(None, |s| s.stop || s.connected);
            if s.stop {
                return;
            }
            let next = s.queues.next(event.is_some(), Instant::now());
            s.sending = !matches!(next, Next::Idle);
            next
        };
        match next {
            Next::Send(m) => {
                let Some(acked) =
                    send_one(client, shared, &m.topic, m.qos, m.retain, m.payload.clone())
                else {
                    return;
                };
                let mut s = shared.lock();
                if !acked && !s.stop {
                    // Not acknowledged: at the head of its queue again after the reconnect.
                    s.queues.retry(m);
                }
                s.sending = false;
            }
            Next::Event => {
                let Some(m) = event else {
                    shared.lock().sending = false;
                    continue;
                };
                let Some(acked) =
                    send_one(client, shared, &m.topic, QoS::AtLeastOnce, false, m.payload)
                else {
                    return;
                };
                if acked && let Err(e) = lock_outbox(outbox).remove(m.id) {
                    tracing::error!("{e}");
                }
                shared.lock().sending = false;
            }
            Next::Idle => {
                // Nothing to send: wait for news.
                let s = shared.lock();
                if s.queues.is_empty() && !s.stop {
                    drop(
                        shared
                            .changed
                            .wait_timeout(s, Duration::from_millis(200))
                            .unwrap_or_else(PoisonError::into_inner),
                    );
                }
            }
        }
    }
}
