//! What every hostile-client test checks after an attack: the server's memory
//! stayed bounded, nothing stored changed, and a normal client is still served.

use crate::TestServer;

/// Resident memory of this process (the server runs in it), in KiB, from
/// `/proc/self/status`.
pub fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

/// Remembers the memory in use before an attack; [`RssBound::check`] fails
/// the test when it grew by more than the bound. Resident memory is the
/// whole test process's, so the tests of one file that measure it take turns:
/// a bound is held from [`RssBound::new`] until it is dropped, and another
/// test's `new` waits meanwhile (each test runs on its own thread and
/// runtime, so waiting blocks only that test).
pub struct RssBound {
    before_kib: u64,
    bound_kib: u64,
    /// `None` when this thread already held the turn (a bound inside a bound).
    turn: Option<std::sync::MutexGuard<'static, ()>>,
}

static MEASURING: std::sync::Mutex<()> = std::sync::Mutex::new(());

thread_local! {
    static HOLDS_TURN: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

impl RssBound {
    /// The attack may make the process grow by at most `bound_mib` MiB.
    pub fn new(bound_mib: u64) -> RssBound {
        // A test that failed while measuring leaves the lock poisoned; the
        // next one may still measure.
        let turn = (!HOLDS_TURN.get()).then(|| {
            let turn = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
            HOLDS_TURN.set(true);
            turn
        });
        RssBound {
            before_kib: rss_kib(),
            bound_kib: bound_mib * 1024,
            turn,
        }
    }

    /// Fails when resident memory grew by more than the bound.
    pub fn check(&self, attack: &str) {
        let now = rss_kib();
        let grown = now.saturating_sub(self.before_kib);
        assert!(
            grown <= self.bound_kib,
            "{attack}: resident memory grew by {grown} KiB ({} → {now} KiB), over the bound of {} KiB",
            self.before_kib,
            self.bound_kib
        );
    }
}

/// Holds the measuring turn for a whole test, server start included: the
/// tests of a binary that measure resident memory then run one at a time,
/// and no other test's allocations land in a measurement. `RssBound`s made
/// while it is held measure without waiting.
pub fn alone() -> Alone {
    Alone(RssBound::new(0))
}

/// See [`alone`].
pub struct Alone(#[allow(dead_code)] RssBound);

impl Drop for RssBound {
    fn drop(&mut self) {
        if self.turn.take().is_some() {
            HOLDS_TURN.set(false);
        }
    }
}

/// Everything stored for the given accounts, as text: every mailbox with its
/// UIDVALIDITY and UIDNEXT, and every message's UID, flags, size and a hash
/// of its bytes. Two equal snapshots mean nothing stored changed.
pub async fn store_snapshot(server: &TestServer, addresses: &[&str]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for address in addresses {
        let account = server
            .directory()
            .account_by_address(address)
            .await
            .expect("directory answers")
            .unwrap_or_else(|| panic!("no account {address}"));
        let mut mailboxes = server
            .store()
            .list_mailboxes(account.id)
            .await
            .expect("store answers");
        mailboxes.sort_by(|a, b| a.name.cmp(&b.name));
        for mailbox in mailboxes {
            let _ = writeln!(
                out,
                "{address} {:?} validity={:?} next={:?}",
                mailbox.name, mailbox.uid_validity, mailbox.uid_next
            );
            for entry in server
                .store()
                .messages(mailbox.id, pillarbox_store::UidRange::all())
                .await
                .expect("store answers")
            {
                let bytes = server
                    .store()
                    .message_bytes(entry.message)
                    .await
                    .expect("message readable");
                let _ = writeln!(
                    out,
                    "  uid={:?} flags={:?} size={} hash={}",
                    entry.uid,
                    entry.flags,
                    entry.size,
                    blake3::hash(&bytes).to_hex()
                );
            }
        }
        let subscribed = server
            .store()
            .subscriptions(account.id)
            .await
            .expect("store answers");
        let _ = writeln!(out, "{address} subscribed {subscribed:?}");
    }
    out
}
