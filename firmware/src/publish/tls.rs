//! TLS to the broker: the rustls client configuration from the PEM files named in
//! `[mqtt.tls]` (the authorities to trust, and the device's own certificate and key when the
//! broker wants client certificates). Part of *publish*; the ring crypto provider is chosen
//! here, explicitly, so no process-wide default is needed.

use rustls::ClientConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// TLS to the broker (`[mqtt.tls]`). The broker's certificate must name `mqtt.host`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    /// PEM certificates of the authorities that may sign the broker's certificate.
    pub ca_file: PathBuf,
    /// The device's own certificate chain and private key (PEM), when the broker asks for them.
    pub client: Option<(PathBuf, PathBuf)>,
}

/// Why the TLS settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file is missing, unreadable or holds nothing usable.
    #[error("mqtt.tls {path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong, and what was expected.
        message: String,
    },
    /// rustls refused the combination.
    #[error("mqtt.tls: {0}")]
    Config(String),
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let fail = |message: String| TlsError::File {
        path: path.to_owned(),
        message,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| fail(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(e.to_string()))?;
    if certs.is_empty() {
        return Err(fail("no PEM certificate in it".into()));
    }
    Ok(certs)
}

/// The client configuration for `tls`.
pub fn client_config(tls: &Tls) -> Result<Arc<ClientConfig>, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in certs(&tls.ca_file)? {
        roots.add(cert).map_err(|e| TlsError::File {
            path: tls.ca_file.clone(),
            message: format!("not a usable CA certificate: {e}"),
        })?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_root_certificates(roots);
    let config = match &tls.client {
        Some((cert, key)) => {
            let chain = certs(cert)?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::File {
                path: key.clone(),
                message: format!("no PEM private key: {e}"),
            })?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| TlsError::Config(format!("client certificate and key: {e}")))?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}
