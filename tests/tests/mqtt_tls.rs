//! The device reaching a Mosquitto broker over TLS with client certificates: events are
//! acknowledged (they leave the on-disk queue only then); a broker whose certificate is signed
//! by an authority the device does not trust, and a device without a client certificate, get
//! nothing through, and the events stay queued. Certificates are made by the test (rcgen).

#![allow(clippy::unwrap_used)] // Test code: a panic is how a failure is reported.

use facegate::device::Device;
use facegate_e2e::{Broker, unique};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use std::path::{Path, PathBuf};

/// A certificate authority, and PEM files of certificates it signs.
struct Authority {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl Authority {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let pem = params.self_signed(&key).unwrap().pem();
        Self {
            issuer: Issuer::new(params, key),
            pem,
        }
    }

    /// Writes `<name>.pem` and `<name>.key` into `dir`, for `names` (DNS names or addresses).
    fn sign(&self, dir: &Path, name: &str, names: &[&str]) -> (PathBuf, PathBuf) {
        let mut params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let (c, k) = (
            dir.join(format!("{name}.pem")),
            dir.join(format!("{name}.key")),
        );
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c, k)
    }
}

fn device(broker: &Broker, tls: &str) -> Device {
    let id = unique("tls-door");
    let dir = facegate_e2e::device_dir(broker, &id, &["originals/obama2.jpg"], tls);
    let mut d = Device::open(&dir.join("facegate.toml")).unwrap();
    d.enroll().unwrap();
    d
}

#[test]
fn events_reach_a_tls_broker_only_with_the_right_authority_and_a_client_certificate() {
    let dir = std::env::temp_dir().join(unique("facegate-e2e-tls"));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = Authority::new("facegate test CA");
    std::fs::write(dir.join("ca.pem"), &ca.pem).unwrap();
    let (server_cert, server_key) = ca.sign(&dir, "broker", &["127.0.0.1", "localhost"]);
    ca.sign(&dir, "door", &["door"]);
    let broker = Broker::private_tls(&format!(
        "cafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate true",
        dir.join("ca.pem").display(),
        server_cert.display(),
        server_key.display()
    ));

    // The right authority and a client certificate: every event acknowledged.
    let good = format!(
        "ca_file = \"{}\"\ncert_file = \"{}\"\nkey_file = \"{}\"",
        dir.join("ca.pem").display(),
        dir.join("door.pem").display(),
        dir.join("door.key").display()
    );
    let good = format!("[mqtt.tls]\n{good}");
    let mut d = device(&broker, &good);
    let out = d.run(&mut []).unwrap();
    assert!(out.stats.events > 0);
    assert_eq!(out.undelivered, 0, "every event acknowledged over TLS");

    // No client certificate: the broker refuses the handshake; events stay queued.
    let anonymous = format!("[mqtt.tls]\nca_file = \"{}\"", dir.join("ca.pem").display());
    let mut d = device(&broker, &anonymous);
    let out = d.run(&mut []).unwrap();
    assert_eq!(
        out.undelivered as u64, out.stats.events,
        "nothing got through"
    );

    // A broker certificate from an authority the device does not trust.
    let stranger = Authority::new("someone else's CA");
    std::fs::write(dir.join("other-ca.pem"), &stranger.pem).unwrap();
    let untrusting = good.replace("ca.pem", "other-ca.pem");
    let mut d = device(&broker, &untrusting);
    let out = d.run(&mut []).unwrap();
    assert_eq!(
        out.undelivered as u64, out.stats.events,
        "nothing got through"
    );

    // A key file that is not a key: a clear error naming it, before anything runs.
    std::fs::write(dir.join("bad.key"), "not a key").unwrap();
    let bad = good.replace("door.key", "bad.key");
    let mut d = device(&broker, &bad);
    let err = d.run(&mut []).unwrap_err().to_string();
    assert!(err.contains("bad.key"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
