//! TLS of the API's TCP listeners (`--tls`, `--tlsverify`), as dockerd serves it.
//!
//! The server's certificate chain and key come from `--tlscert` and `--tlskey`. With
//! `--tlsverify` a client must present a certificate that chains to `--tlscacert` (and
//! only to it: the system's roots are not trusted, as dockerd's `ExclusiveRootPools`),
//! else the handshake fails; with `--tls` alone any client is served over TLS. TLS 1.2
//! and 1.3, rustls with ring (the provider the registry client already uses). The files
//! are read once, before the actors start, so a bad one stops berthd at once with its
//! path in the message.

use std::io;
use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::TlsFiles;

/// Why the TLS settings cannot be used (one line each, with the file).
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("could not load X509 key pair (cert: {cert:?}, key: {key:?}): {reason}")]
    KeyPair {
        cert: String,
        key: String,
        reason: String,
    },
    #[error("could not read CA certificate {path:?}: {reason}")]
    Ca { path: String, reason: String },
    #[error("TLS configuration: {0}")]
    Config(String),
}

fn shown(p: &Path) -> String {
    p.display().to_string()
}

/// The certificates of a PEM file; none is an error.
fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_reason(e, path))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_reason(e, path))?;
    if certs.is_empty() {
        return Err("no certificate found in the file".to_owned());
    }
    Ok(certs)
}

fn pem_reason(e: rustls_pki_types::pem::Error, path: &Path) -> String {
    match e {
        rustls_pki_types::pem::Error::Io(io) if io.kind() == io::ErrorKind::NotFound => {
            format!("open {}: no such file or directory", path.display())
        }
        other => other.to_string(),
    }
}

/// The rustls server configuration of `files`.
pub fn server_config(files: &TlsFiles) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let pair = |reason: String| TlsError::KeyPair {
        cert: shown(&files.cert),
        key: shown(&files.key),
        reason,
    };
    let chain = certificates(&files.cert).map_err(pair)?;
    let key =
        PrivateKeyDer::from_pem_file(&files.key).map_err(|e| pair(pem_reason(e, &files.key)))?;
    // ring has no post-quantum key exchange (hence the deprecation); see the registry
    // client's install_crypto_provider for why not aws-lc-rs.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(rustls::DEFAULT_VERSIONS)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = if files.verify {
        let ca_err = |reason: String| TlsError::Ca {
            path: shown(&files.ca),
            reason,
        };
        let mut roots = RootCertStore::empty();
        for cert in certificates(&files.ca).map_err(ca_err)? {
            roots.add(cert).map_err(|e| ca_err(e.to_string()))?;
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| TlsError::Config(e.to_string()))?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let config = builder
        .with_single_cert(chain, key)
        .map_err(|e| pair(e.to_string()))?;
    Ok(Arc::new(config))
}
