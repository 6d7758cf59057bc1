//! TLS configuration: the operator's PEM files, or a self-signed certificate
//! made on first start and kept in the data directory.

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the TLS certificate {path}: {reason}")]
    Certificate { path: PathBuf, reason: String },
    #[error("cannot read the TLS private key {path}: {reason}")]
    Key { path: PathBuf, reason: String },
    #[error("the TLS certificate and key do not fit together: {0}")]
    Mismatch(String),
    #[error("cannot write the self-signed certificate to {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot make a self-signed certificate for {hostname}: {reason}")]
    Generate { hostname: String, reason: String },
}

/// Installs the one crypto provider (aws-lc-rs) for the process; harmless if done.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// Loads PEM certificate chain and key from files.
pub fn load_acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    install_crypto_provider();
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| TlsError::Certificate {
            path: cert.into(),
            reason: e.to_string(),
        })?
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Certificate {
            path: cert.into(),
            reason: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::Certificate {
            path: cert.into(),
            reason: "no CERTIFICATE block found".into(),
        });
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key {
        path: key.into(),
        reason: e.to_string(),
    })?;
    // TLS 1.2 and 1.3 only (rustls has nothing older).
    let config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| TlsError::Mismatch(e.to_string()))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Paths of the self-signed pair kept under `dir` (`cert.pem`, `key.pem`).
pub fn self_signed_paths(dir: &Path) -> (PathBuf, PathBuf) {
    (dir.join("cert.pem"), dir.join("key.pem"))
}

/// Loads the self-signed pair under `dir`, making it for `hostname` first if
/// it does not exist yet.
pub fn self_signed_acceptor(dir: &Path, hostname: &str) -> Result<TlsAcceptor, TlsError> {
    let (cert, key) = self_signed_paths(dir);
    if !cert.exists() || !key.exists() {
        let mut names = vec![hostname.to_string()];
        for extra in ["localhost", "127.0.0.1", "::1"] {
            if !names.iter().any(|n| n == extra) {
                names.push(extra.to_string());
            }
        }
        let generated =
            rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::Generate {
                hostname: hostname.to_string(),
                reason: e.to_string(),
            })?;
        std::fs::create_dir_all(dir).map_err(|source| TlsError::Write {
            path: dir.into(),
            source,
        })?;
        write_private(&key, generated.signing_key.serialize_pem().as_bytes())?;
        std::fs::write(&cert, generated.cert.pem()).map_err(|source| TlsError::Write {
            path: cert.clone(),
            source,
        })?;
        tracing::info!(path = %cert.display(), %hostname, "made a self-signed TLS certificate");
    }
    load_acceptor(&cert, &key)
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(path).map_err(|source| TlsError::Write {
        path: path.into(),
        source,
    })?;
    file.write_all(bytes).map_err(|source| TlsError::Write {
        path: path.into(),
        source,
    })
}

/// A client configuration that trusts exactly the given PEM certificate(s):
/// for tests, tools and the lab talking to this server's own listeners.
pub fn client_config_trusting(cert_pem: &Path) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    install_crypto_provider();
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(cert_pem).map_err(|e| TlsError::Certificate {
        path: cert_pem.into(),
        reason: e.to_string(),
    })? {
        let cert = cert.map_err(|e| TlsError::Certificate {
            path: cert_pem.into(),
            reason: e.to_string(),
        })?;
        roots.add(cert).map_err(|e| TlsError::Certificate {
            path: cert_pem.into(),
            reason: e.to_string(),
        })?;
    }
    Ok(Arc::new(
        rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    ))
}

/// A client configuration trusting the web PKI roots (smarthosts with a
/// public certificate).
pub fn client_config_webpki() -> Arc<rustls::ClientConfig> {
    install_crypto_provider();
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    Arc::new(
        rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// A client configuration for opportunistic STARTTLS between mail servers
/// (RFC 3207 §4.1, Postfix's `may` level): encrypt, but accept any
/// certificate, since refusing would only make the mail go in clear.
pub fn client_config_opportunistic() -> Arc<rustls::ClientConfig> {
    install_crypto_provider();
    Arc::new(
        rustls::ClientConfig::builder()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(
                rustls::crypto::CryptoProvider::get_default()
                    .cloned()
                    .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider())),
            )))
            .with_no_client_auth(),
    )
}

#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls_pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
