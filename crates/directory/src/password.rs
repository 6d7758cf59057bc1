//! argon2id password hashes, computed off the async runtime.

use argon2::{Argon2, PasswordHasher, PasswordVerifier};

/// argon2id takes 19 MiB per hash: at most this many run at once (a burst
/// of logins queues here instead of taking gigabytes of memory).
fn permits() -> &'static tokio::sync::Semaphore {
    static PERMITS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    PERMITS.get_or_init(|| {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        tokio::sync::Semaphore::new(cores.clamp(2, 16))
    })
}

/// Hashes a password (argon2id, default parameters, random salt) in a blocking task.
pub(crate) async fn hash(password: &str) -> Result<String, String> {
    let password = password.to_string();
    let _permit = permits().acquire().await.map_err(|e| e.to_string())?;
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())?
}

/// A hash to verify against when the user is unknown, so an unknown user
/// costs the same time as a wrong password. Made once, on first use.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        Argon2::default()
            .hash_password(b"pillarbox timing equaliser")
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

/// Verifies a password against a stored hash in a blocking task. `None` as
/// the hash verifies against a dummy, so unknown users cost the same time.
pub(crate) async fn verify(password: &str, stored: Option<String>) -> bool {
    let password = password.to_string();
    let known = stored.is_some();
    let Ok(_permit) = permits().acquire().await else {
        return false;
    };
    let ok = tokio::task::spawn_blocking(move || {
        let hash = stored.unwrap_or_else(|| dummy_hash().to_string());
        Argon2::default()
            .verify_password(password.as_bytes(), hash.as_str())
            .is_ok()
    })
    .await
    .unwrap_or(false);
    ok && known
}
