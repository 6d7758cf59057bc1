//! DKIM signing of outbound mail (RFC 6376, RFC 8463 Ed25519) with the keys
//! `pillarbox dkim generate` stores, and the key generation itself.

use base64::Engine;
use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::DkimSigner;
use pillarbox_store::Store;

/// Header fields signed when present (RFC 6376 §5.4.1's recommendations).
const SIGNED_HEADERS: [&str; 11] = [
    "From",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "Reply-To",
    "In-Reply-To",
    "References",
    "MIME-Version",
    "Content-Type",
];

/// A new key: what to store and the DNS record to publish.
pub struct GeneratedKey {
    pub algorithm: &'static str,
    /// PKCS#8 DER.
    pub private_key: Vec<u8>,
    /// Base64 of the public key as the `p=` tag wants it.
    pub public_key: String,
}

impl GeneratedKey {
    /// The TXT record value, e.g. `v=DKIM1; k=ed25519; p=…`.
    pub fn txt_record(&self) -> String {
        txt_record(self.algorithm, &self.public_key)
    }
}

pub fn txt_record(algorithm: &str, public_key: &str) -> String {
    let k = if algorithm == "ed25519" {
        "ed25519"
    } else {
        "rsa"
    };
    format!("v=DKIM1; k={k}; p={public_key}")
}

/// Makes an Ed25519 (`ed25519`) or RSA-2048 (`rsa`) key.
pub fn generate(algorithm: &str) -> Result<GeneratedKey, String> {
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    match algorithm {
        "ed25519" => {
            let private_key = Ed25519Key::generate_pkcs8().map_err(|e| e.to_string())?;
            let key = Ed25519Key::from_pkcs8_der(&private_key).map_err(|e| e.to_string())?;
            Ok(GeneratedKey {
                algorithm: "ed25519",
                public_key: b64(&key.public_key()),
                private_key,
            })
        }
        "rsa" => {
            use rcgen::PublicKeyData;
            let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256)
                .map_err(|e| format!("cannot generate an RSA key: {e}"))?;
            Ok(GeneratedKey {
                algorithm: "rsa",
                public_key: b64(&pair.subject_public_key_info()),
                private_key: pair.serialize_der(),
            })
        }
        other => Err(format!(
            "unknown DKIM algorithm {other:?}: use ed25519 or rsa"
        )),
    }
}

/// The `DKIM-Signature:` header for a message from `domain`, when the store
/// has a key for it.
pub async fn sign(store: &Store, domain: &str, message: &[u8]) -> Option<String> {
    let (selector, algorithm, private_key, _) = match store.dkim_key(domain).await {
        Ok(Some(key)) => key,
        Ok(None) => return None,
        Err(error) => {
            tracing::warn!(%error, %domain, "cannot read the DKIM key: sending unsigned");
            return None;
        }
    };
    let signature = match algorithm.as_str() {
        "ed25519" => Ed25519Key::from_pkcs8_der(&private_key)
            .map_err(|e| e.to_string())
            .and_then(|key| {
                DkimSigner::from_key(key)
                    .domain(domain)
                    .selector(&selector)
                    .headers(SIGNED_HEADERS)
                    .sign(message)
                    .map_err(|e| e.to_string())
            }),
        _ => RsaKey::<Sha256>::from_key_der(rustls_pki_types::PrivateKeyDer::Pkcs8(
            rustls_pki_types::PrivatePkcs8KeyDer::from(private_key.as_slice()),
        ))
        .map_err(|e| e.to_string())
        .and_then(|key| {
            DkimSigner::from_key(key)
                .domain(domain)
                .selector(&selector)
                .headers(SIGNED_HEADERS)
                .sign(message)
                .map_err(|e| e.to_string())
        }),
    };
    match signature {
        Ok(signature) => Some(signature.to_header()),
        Err(error) => {
            tracing::warn!(%error, %domain, "DKIM signing failed: sending unsigned");
            None
        }
    }
}
