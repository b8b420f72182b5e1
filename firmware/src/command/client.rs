//! `facegate request`: the other end of the command topics, for a technician's shell or a
//! script. Signs a request with the device's command key, publishes it, waits for the response
//! carrying its transaction id (printing enrollment verdicts as they come) and hands it back.
//! It reads the same config file as the device, so it reaches the same broker with the same
//! TLS settings and credentials.

use crate::command_key::{CommandKey, CommandKeyError};
use crate::config::Config;
use crate::publish::mqtt::{MAX_ENROLL_REQUEST, MAX_REQUEST};
use crate::publish::topics::Topics;
use rumqttc::{Client, Event, MqttOptions, Packet, QoS, RecvTimeoutError};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The config turns commands off.
    #[error(
        "[commands] enabled = false in the config: the device takes no requests (set enabled = \
         true and key_file, then restart it)"
    )]
    Disabled,
    /// The command key cannot be read.
    #[error(transparent)]
    Key(#[from] CommandKeyError),
    /// TLS settings of the config.
    #[error(transparent)]
    Tls(#[from] crate::publish::tls::TlsError),
    /// A photo to send cannot be read.
    #[error("photo {path}: {source}")]
    Photo {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Larger than the device accepts on that topic.
    #[error("the request is {bytes} bytes; the device accepts at most {limit} on {topic}")]
    TooLarge {
        /// Its size.
        bytes: usize,
        /// The limit.
        limit: usize,
        /// The topic.
        topic: String,
    },
    /// The broker could not be reached, or the connection failed.
    #[error("broker {broker}: {reason}")]
    Broker {
        /// `host:port`.
        broker: String,
        /// What failed.
        reason: String,
    },
    /// No response in time: the device is off, not subscribed, or refused more requests than
    /// it answers (`[commands] refusals_per_second`).
    #[error(
        "no response on {topic} within {seconds} s: is the device running, with this config's \
         [commands] key?"
    )]
    Timeout {
        /// The response topic.
        topic: String,
        /// The time waited.
        seconds: u64,
    },
}

/// The envelope the device's gate checks: the request's exact text and its HMAC over topic and
/// text (see the module `command`).
pub fn envelope(key: &CommandKey, topic: &str, request: &Value) -> Vec<u8> {
    let text = request.to_string();
    let hmac = key.sign(topic, &text);
    json!({ "request": text, "hmac": hmac })
        .to_string()
        .into_bytes()
}

/// A transaction id unique to this process and moment.
fn transaction() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("request-{}-{nanos:x}", std::process::id())
}

/// Sends `action` with `fields` to the device `cfg` describes and waits up to `timeout` for
/// its response, which is returned whether the device accepted (`"ok": true`) or not.
/// Enrollment verdicts for this request go to `progress` as they arrive.
pub fn request(
    cfg: &Config,
    action: &str,
    fields: Map<String, Value>,
    timeout: Duration,
    progress: &mut dyn FnMut(&Value),
) -> Result<Value, ClientError> {
    let commands = cfg.commands.as_ref().ok_or(ClientError::Disabled)?;
    let key = CommandKey::load(&commands.key_file)?;
    let topics = Topics::new(&cfg.mqtt.prefix, &cfg.device.id);
    let topic = format!("{}{action}", topics.requests_prefix());
    let response_topic = topics.response(action);
    let progress_topic = topics.enroll_progress();
    let transaction = transaction();
    let mut request = fields;
    request.insert("transaction".into(), transaction.clone().into());
    request.insert(
        "issued_at".into(),
        crate::publish::access::unix_now().into(),
    );
    let payload = envelope(&key, &topic, &Value::Object(request));
    let limit = if action == "enroll" {
        MAX_ENROLL_REQUEST
    } else {
        MAX_REQUEST
    };
    if payload.len() > limit {
        return Err(ClientError::TooLarge {
            bytes: payload.len(),
            limit,
            topic,
        });
    }

    let broker = format!("{}:{}", cfg.mqtt.host, cfg.mqtt.port);
    let fail = |reason: String| ClientError::Broker {
        broker: broker.clone(),
        reason,
    };
    let client_id = format!("{}-request-{}", cfg.mqtt.client_id, std::process::id());
    let mut opts = MqttOptions::new(client_id, &cfg.mqtt.host, cfg.mqtt.port);
    opts.set_keep_alive(Duration::from_secs(cfg.mqtt.keep_alive_seconds));
    opts.set_clean_session(true);
    opts.set_max_packet_size(MAX_ENROLL_REQUEST, MAX_ENROLL_REQUEST + 1024);
    if let Some((user, pass)) = &cfg.mqtt.credentials {
        opts.set_credentials(user, pass);
    }
    if let Some(tls) = &cfg.mqtt.tls {
        let config = crate::publish::tls::client_config(tls)?;
        opts.set_transport(rumqttc::Transport::tls_with_config(
            rumqttc::TlsConfiguration::Rustls(Arc::clone(&config)),
        ));
    }
    let (client, mut connection) = Client::new(opts, 8);
    for t in [&response_topic, &progress_topic] {
        client
            .subscribe(t.as_str(), QoS::AtLeastOnce)
            .map_err(|e| fail(e.to_string()))?;
    }
    let deadline = Instant::now() + timeout;
    let mut subscribed = 0;
    let answer = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let event = match connection.recv_timeout(left) {
            Err(RecvTimeoutError::Timeout) => {
                return Err(ClientError::Timeout {
                    topic: response_topic,
                    seconds: timeout.as_secs(),
                });
            }
            Err(RecvTimeoutError::Disconnected) => return Err(fail("connection closed".into())),
            Ok(Err(e)) => return Err(fail(e.to_string())),
            Ok(Ok(event)) => event,
        };
        match event {
            Event::Incoming(Packet::SubAck(_)) => {
                subscribed += 1;
                // Published only once both subscriptions hold, so no answer can be missed.
                if subscribed == 2 {
                    client
                        .publish(topic.as_str(), QoS::AtLeastOnce, false, payload.clone())
                        .map_err(|e| fail(e.to_string()))?;
                }
            }
            Event::Incoming(Packet::Publish(p)) => {
                let Ok(body) = serde_json::from_slice::<Value>(&p.payload) else {
                    continue;
                };
                if body.get("transaction").and_then(Value::as_str) != Some(&transaction) {
                    continue;
                }
                if p.topic == response_topic {
                    break body;
                }
                progress(&body);
            }
            _ => {}
        }
    };
    // Best effort: the answer is in hand whatever the broker makes of the goodbye.
    let _ = client.disconnect();
    let _ = connection.recv_timeout(Duration::from_millis(200));
    Ok(answer)
}

/// The fields of an `enroll` request: the photos read and base64-encoded.
pub fn enroll_fields(
    person: &str,
    name: &str,
    photos: &[std::path::PathBuf],
    threshold: Option<f32>,
    schedule: &[String],
) -> Result<Map<String, Value>, ClientError> {
    use base64::Engine as _;
    let mut encoded = Vec::with_capacity(photos.len());
    for path in photos {
        let bytes = std::fs::read(path).map_err(|source| ClientError::Photo {
            path: path.display().to_string(),
            source,
        })?;
        encoded.push(Value::String(
            base64::engine::general_purpose::STANDARD.encode(bytes),
        ));
    }
    let mut fields = Map::new();
    fields.insert("person".into(), person.into());
    fields.insert("name".into(), name.into());
    fields.insert("photos".into(), Value::Array(encoded));
    if let Some(t) = threshold {
        fields.insert("threshold".into(), t.into());
    }
    if !schedule.is_empty() {
        fields.insert("schedule".into(), schedule.into());
    }
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Gate;

    #[test]
    fn an_envelope_passes_the_devices_gate_once_and_not_on_another_topic() {
        let key = CommandKey::from_bytes(b"0123456789abcdef-key");
        let topic = "facegate/door/request/list";
        let now = crate::publish::access::unix_now();
        let request = json!({ "transaction": "t1", "issued_at": now });
        let payload = envelope(&key, topic, &request);
        let mut gate = Gate::new(key.clone(), 60.0);
        let accepted = gate.check(topic, &payload, now).expect("accepted");
        assert_eq!(accepted.transaction, "t1");
        assert_eq!(accepted.action, "list");
        assert!(
            gate.check(topic, &payload, now).is_err(),
            "a replay is refused"
        );
        let mut other = Gate::new(key, 60.0);
        assert!(
            other
                .check("facegate/door/request/erase", &payload, now)
                .is_err(),
            "the signature covers the topic"
        );
    }

    #[test]
    fn enroll_fields_carry_each_photo_and_name_a_missing_one() {
        let dir = std::env::temp_dir().join(format!("facegate-client-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch");
        let photo = dir.join("a.jpg");
        std::fs::write(&photo, b"\xff\xd8jpeg").expect("photo");
        let fields = enroll_fields("ana", "Ana", std::slice::from_ref(&photo), Some(0.99), &[])
            .expect("read");
        assert_eq!(fields["photos"], json!(["/9hqcGVn"]));
        assert_eq!(fields["threshold"].as_f64().map(|t| t as f32), Some(0.99));
        assert!(fields.get("schedule").is_none());
        let missing = dir.join("missing.jpg");
        let err = enroll_fields("ana", "Ana", &[missing], None, &[]).expect_err("missing");
        assert!(err.to_string().contains("missing.jpg"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
