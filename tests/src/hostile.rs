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
/// the test when it grew by more than the bound.
pub struct RssBound {
    before_kib: u64,
    bound_kib: u64,
}

impl RssBound {
    /// The attack may make the process grow by at most `bound_mib` MiB.
    pub fn new(bound_mib: u64) -> RssBound {
        RssBound {
            before_kib: rss_kib(),
            bound_kib: bound_mib * 1024,
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
                "{address} {:?} validity={:?} next={:?} subscribed={}",
                mailbox.name, mailbox.uid_validity, mailbox.uid_next, mailbox.subscribed
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
    }
    out
}
