//! The gate every request passes before it may touch the device: signature, age, replay.

use crate::command_key::CommandKey;
use crate::publish::request::{Admission, Command, Refusal};
use std::collections::VecDeque;

/// A request that passed.
pub type Verified = Command;

/// Checks requests: signature, freshness, replay. One per device.
#[derive(Debug)]
pub struct Gate {
    key: CommandKey,
    max_age_seconds: f64,
    /// Requests issued before this (unix seconds) are refused.
    not_before: f64,
    seen: VecDeque<(String, f64)>,
}

#[derive(serde::Deserialize)]
struct Envelope {
    request: String,
    hmac: Option<String>,
}

impl Gate {
    /// A gate for `key`, accepting requests issued within `max_age_seconds` of now.
    pub fn new(key: CommandKey, max_age_seconds: f64) -> Self {
        Self {
            key,
            max_age_seconds,
            not_before: f64::NEG_INFINITY,
            seen: VecDeque::new(),
        }
    }

    /// Refuses requests issued before `unix_seconds`: the device's start, since the list of
    /// transactions seen lives in memory and a restart forgets it.
    pub fn not_before(mut self, unix_seconds: f64) -> Self {
        self.not_before = unix_seconds;
        self
    }

    /// Checks a request that arrived on `topic` (`.../request/<action>`) at unix time `now`.
    pub fn check(&mut self, topic: &str, payload: &[u8], now: f64) -> Result<Verified, Refusal> {
        let refuse = |transaction: Option<String>, reason: &str| Refusal {
            transaction,
            reason: reason.to_owned(),
        };
        let action = topic.rsplit('/').next().unwrap_or_default().to_owned();
        let envelope: Envelope = serde_json::from_slice(payload).map_err(|e| {
            refuse(
                None,
                &format!("not a request envelope {{\"request\": \"...\", \"hmac\": \"...\"}}: {e}"),
            )
        })?;
        let request: serde_json::Value = serde_json::from_str(&envelope.request)
            .map_err(|e| refuse(None, &format!("request is not JSON: {e}")))?;
        let transaction = request
            .get("transaction")
            .and_then(|t| t.as_str())
            .map(str::to_owned);
        let Some(hmac) = envelope.hmac else {
            return Err(refuse(transaction, "unsigned request: an hmac is required"));
        };
        if !self.key.verify(topic, &envelope.request, &hmac) {
            return Err(refuse(transaction, "bad signature"));
        }
        let Some(transaction) = transaction else {
            return Err(refuse(None, "request lacks a string `transaction`"));
        };
        let Some(issued) = request.get("issued_at").and_then(|t| t.as_f64()) else {
            return Err(refuse(
                Some(transaction),
                "request lacks `issued_at` (unix seconds)",
            ));
        };
        if (now - issued).abs() > self.max_age_seconds {
            return Err(refuse(
                Some(transaction),
                &format!(
                    "stale or future request: issued {:.0} s from the device's clock (limit {} s)",
                    now - issued,
                    self.max_age_seconds
                ),
            ));
        }
        if issued < self.not_before {
            return Err(refuse(
                Some(transaction),
                "issued before the device started: sign the request again with a new issued_at",
            ));
        }
        self.seen
            .retain(|(_, at)| now - at <= 2.0 * self.max_age_seconds);
        if self.seen.iter().any(|(t, _)| *t == transaction) {
            return Err(refuse(Some(transaction), "replayed transaction"));
        }
        self.seen.push_back((transaction.clone(), now));
        Ok(Command {
            transaction,
            action,
            request,
        })
    }
}

impl Admission for Gate {
    fn check(&mut self, topic: &str, payload: &[u8], now: f64) -> Result<Command, Refusal> {
        Gate::check(self, topic, payload, now)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn envelope(key: &CommandKey, topic: &str, request: &str) -> Vec<u8> {
        serde_json::json!({ "request": request, "hmac": key.sign(topic, request) })
            .to_string()
            .into_bytes()
    }

    #[test]
    fn signed_fresh_requests_pass_once_and_everything_else_is_refused() {
        let key = CommandKey::from_bytes(b"0123456789abcdef-door");
        let mut gate = Gate::new(key.clone(), 60.0);
        let topic = "facegate/door/request/list";
        let req = r#"{"transaction":"t1","issued_at":1000}"#;
        let ok = gate
            .check(topic, &envelope(&key, topic, req), 1010.0)
            .unwrap();
        assert_eq!(
            (ok.transaction.as_str(), ok.action.as_str()),
            ("t1", "list")
        );
        let again = gate
            .check(topic, &envelope(&key, topic, req), 1011.0)
            .unwrap_err();
        assert_eq!(again.reason, "replayed transaction");

        let unsigned = serde_json::json!({ "request": r#"{"transaction":"t2","issued_at":1000}"# });
        let r = gate
            .check(topic, unsigned.to_string().as_bytes(), 1000.0)
            .unwrap_err();
        assert_eq!(r.transaction.as_deref(), Some("t2"));
        assert!(r.reason.contains("unsigned"));

        let other = CommandKey::from_bytes(b"not-the-door-key-at-all");
        let req3 = r#"{"transaction":"t3","issued_at":1000}"#;
        let r = gate
            .check(topic, &envelope(&other, topic, req3), 1000.0)
            .unwrap_err();
        assert_eq!(r.reason, "bad signature");
        // Signed for another action: the topic is part of what is signed.
        let r = gate
            .check(
                "facegate/door/request/erase",
                &envelope(&key, topic, req3),
                1000.0,
            )
            .unwrap_err();
        assert_eq!(r.reason, "bad signature");

        let old = r#"{"transaction":"t4","issued_at":100}"#;
        let r = gate
            .check(topic, &envelope(&key, topic, old), 1000.0)
            .unwrap_err();
        assert!(r.reason.contains("stale"), "{}", r.reason);
        assert!(gate.check(topic, b"garbage", 1000.0).is_err());
    }

    #[test]
    fn a_restart_forgets_no_replay_requests_from_before_it_are_refused() {
        let key = CommandKey::from_bytes(b"0123456789abcdef-door");
        let topic = "facegate/door/request/list";
        let req = r#"{"transaction":"t1","issued_at":1000}"#;
        let mut before = Gate::new(key.clone(), 60.0).not_before(990.0);
        assert!(
            before
                .check(topic, &envelope(&key, topic, req), 1001.0)
                .is_ok()
        );
        // The device restarts at 1005: the same request, still within its 60 s, is refused.
        let mut after = Gate::new(key.clone(), 60.0).not_before(1005.0);
        let r = after
            .check(topic, &envelope(&key, topic, req), 1006.0)
            .unwrap_err();
        assert!(
            r.reason.contains("before the device started"),
            "{}",
            r.reason
        );
        let fresh = r#"{"transaction":"t1","issued_at":1006}"#;
        assert!(
            after
                .check(topic, &envelope(&key, topic, fresh), 1006.0)
                .is_ok()
        );
    }
}
