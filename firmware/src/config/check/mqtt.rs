//! `[mqtt]`: the broker, its credentials and TLS, the on-disk queue.

use super::{Report, ranged};
use crate::config::Mqtt;
use crate::config::raw::RawConfig;
use std::path::Path;
use toml::Spanned;

pub(super) fn check_mqtt(r: &mut Report, raw: &RawConfig, device_id: &str, base: &Path) -> Mqtt {
    let m = &raw.mqtt;
    if m.host.get_ref().trim().is_empty() {
        r.at(&m.host, "mqtt.host", "must not be empty");
    }
    if *m.port.get_ref() == 0 {
        r.at(&m.port, "mqtt.port", "expected a port in 1..=65535");
    }
    let prefix = m.prefix.get_ref();
    let bad_prefix = prefix.is_empty()
        || prefix.contains(['+', '#', '\0'])
        || prefix.split('/').any(str::is_empty);
    if bad_prefix {
        r.at(
            &m.prefix,
            "mqtt.prefix",
            format!("{prefix:?} is not a topic prefix: no wildcards (+ #), no empty levels, no leading or trailing /"),
        );
    }
    let client_id = match &m.client_id {
        Some(c) if c.get_ref().is_empty() || c.get_ref().len() > 128 => {
            r.at(c, "mqtt.client_id", "expected 1 to 128 characters");
            c.get_ref().clone()
        }
        Some(c) => c.get_ref().clone(),
        None => format!("facegate-{device_id}"),
    };
    let password = match (&m.password, &m.password_file) {
        (Some(p), Some(_)) => {
            r.at(
                p,
                "mqtt.password",
                "give `password` or `password_file`, not both",
            );
            None
        }
        (Some(p), None) => Some(p.get_ref().clone()),
        (None, Some(f)) => {
            let path = base.join(f.get_ref());
            match std::fs::read_to_string(&path) {
                Ok(text) => Some(text.trim_end_matches(['\n', '\r']).to_owned()),
                Err(e) => {
                    r.at(f, "mqtt.password_file", format!("{}: {e}", path.display()));
                    None
                }
            }
        }
        (None, None) => None,
    };
    let credentials = match (&m.username, password) {
        (Some(u), p) => Some((u.get_ref().clone(), p.unwrap_or_default())),
        (None, Some(_)) => {
            let at = m.password.as_ref().or(m.password_file.as_ref());
            if let Some(at) = at {
                r.at(at, "mqtt.username", "a password needs a `username`");
            }
            None
        }
        (None, None) => None,
    };
    let keep_alive_seconds = ranged(
        r,
        &m.keep_alive_seconds,
        5..=3600,
        crate::config::Mqtt::DEFAULT_KEEP_ALIVE_SECONDS,
        "mqtt.keep_alive_seconds",
        "expected 5..=3600",
    );
    let queue_limit = ranged(
        r,
        &m.queue_limit,
        1..=10_000_000,
        crate::config::Mqtt::DEFAULT_QUEUE_LIMIT,
        "mqtt.queue_limit",
        "expected 1..=10000000 events",
    );
    let drain_seconds = ranged(
        r,
        &m.drain_seconds,
        0.0..=600.0,
        crate::config::Mqtt::DEFAULT_DRAIN_SECONDS,
        "mqtt.drain_seconds",
        "expected 0..=600 seconds",
    );
    let tls = m.tls.as_ref().map(|t| {
        let file = |r: &mut Report, f: &Spanned<String>, name: &str| {
            let path = base.join(f.get_ref());
            if let Err(e) = std::fs::metadata(&path) {
                r.at(
                    f,
                    format!("mqtt.tls.{name}"),
                    format!("{}: {e}", path.display()),
                );
            }
            path
        };
        let ca_file = file(r, &t.ca_file, "ca_file");
        let client = match (&t.cert_file, &t.key_file) {
            (Some(c), Some(k)) => Some((file(r, c, "cert_file"), file(r, k, "key_file"))),
            (Some(one), None) | (None, Some(one)) => {
                r.at(
                    one,
                    "mqtt.tls",
                    "a client certificate needs both `cert_file` and `key_file`",
                );
                None
            }
            (None, None) => None,
        };
        crate::config::Tls { ca_file, client }
    });
    Mqtt {
        host: m.host.get_ref().clone(),
        port: *m.port.get_ref(),
        prefix: prefix.clone(),
        client_id,
        credentials,
        keep_alive_seconds,
        queue_limit,
        drain_seconds,
        tls,
    }
}
