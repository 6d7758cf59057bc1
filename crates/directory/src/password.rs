//! argon2id password hashes, computed off the async runtime.

use argon2::password_hash::phc::{Output, PasswordHash};
use argon2::{Algorithm, Argon2, Block, Params, PasswordHasher, Version};
use std::cell::RefCell;

/// argon2id takes 19 MiB of working memory per hash. Hashes run on a few
/// dedicated threads (one per core, 2 to 16): a burst of logins queues here,
/// and the memory the allocator keeps afterwards is bounded by the number of
/// these threads instead of growing with every blocking thread tokio makes.
type Job = Box<dyn FnOnce() + Send>;

fn workers() -> &'static std::sync::Mutex<std::sync::mpsc::Sender<Job>> {
    static SENDER: std::sync::OnceLock<std::sync::Mutex<std::sync::mpsc::Sender<Job>>> =
        std::sync::OnceLock::new();
    SENDER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        for i in 0..cores.clamp(2, 16) {
            let rx = rx.clone();
            let _ = std::thread::Builder::new()
                .name(format!("pillarbox-argon2-{i}"))
                .spawn(move || {
                    loop {
                        let job = match rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                });
        }
        std::sync::Mutex::new(tx)
    })
}

thread_local! {
    /// This password thread's argon2 working memory (19 MiB with the default
    /// parameters), kept from one verification to the next: the allocator
    /// would otherwise keep a freed copy per thread and make a new one for
    /// the next login.
    static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Verifies `password` against a PHC string (`$argon2id$v=19$m=…`) in this
/// thread's reused working memory; the comparison is constant-time.
fn verify_reusing_memory(password: &[u8], stored: &str) -> bool {
    let Ok(hash) = PasswordHash::new(stored) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(hash.algorithm.as_str()) else {
        return false;
    };
    let version = match hash.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(version)) => version,
        Some(Err(_)) => return false,
    };
    let (Ok(params), Some(salt), Some(expected)) = (
        Params::try_from(&hash),
        hash.salt.as_ref(),
        hash.hash.as_ref(),
    ) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    let blocks = params.block_count();
    let hashed = MEMORY.with_borrow_mut(|memory| {
        memory.resize(blocks, Block::default());
        Argon2::new(algorithm, version, params)
            .hash_password_into_with_memory(password, salt.as_ref(), &mut out, &mut memory[..])
            .is_ok()
    });
    hashed && Output::new(&out).is_ok_and(|computed| &computed == expected)
}

/// Runs `f` on a password thread and waits for it without blocking the runtime.
async fn on_password_thread<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = tx.send(f());
    });
    workers().lock().ok()?.send(job).ok()?;
    rx.await.ok()
}

/// Hashes a password (argon2id, default parameters, random salt) in a blocking task.
pub(crate) async fn hash(password: &str) -> Result<String, String> {
    let password = password.to_string();
    on_password_thread(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| e.to_string())
    })
    .await
    .ok_or_else(|| "the password threads are gone".to_string())?
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
    let ok = on_password_thread(move || {
        let hash = stored.unwrap_or_else(|| dummy_hash().to_string());
        verify_reusing_memory(password.as_bytes(), &hash)
    })
    .await
    .unwrap_or(false);
    ok && known
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verification_with_reused_memory_agrees_with_the_hash() {
        let stored = Argon2::default()
            .hash_password(b"correct horse")
            .map(|h| h.to_string())
            .unwrap_or_default();
        assert!(stored.starts_with("$argon2id$"), "{stored}");
        // Twice: the second run reuses the first's memory.
        for _ in 0..2 {
            assert!(verify_reusing_memory(b"correct horse", &stored));
            assert!(!verify_reusing_memory(b"correct horsf", &stored));
        }
        // Other parameters (less memory) in the same thread's buffer.
        let small = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(1024, 2, 1, None).unwrap_or_default(),
        )
        .hash_password(b"pw")
        .map(|h| h.to_string())
        .unwrap_or_default();
        assert!(verify_reusing_memory(b"pw", &small));
        assert!(!verify_reusing_memory(b"pw2", &small));
        assert!(!verify_reusing_memory(b"pw", "not a hash"));
        assert!(!verify_reusing_memory(
            b"pw",
            "$argon2id$v=19$m=1024,t=2,p=1$c2FsdHNhbHQ"
        ));
    }
}
