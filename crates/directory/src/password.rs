//! argon2id password hashes, computed off the async runtime.

use argon2::{Argon2, PasswordHasher, PasswordVerifier};

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
        Argon2::default()
            .verify_password(password.as_bytes(), hash.as_str())
            .is_ok()
    })
    .await
    .unwrap_or(false);
    ok && known
}
