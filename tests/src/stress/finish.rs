//! The checks made once the clients have stopped: flags converge (every
//! session, after NOOP, sees the same messages with the same flags as a
//! fresh session), every acknowledged message is present as often as it was
//! delivered and copied unless the checker deleted it, a refusal that said a
//! message was gone is true, and the quota used is the sum of the sizes.

use super::Plan;
use super::conn::source_ip;
use super::imap::{ImapClient, lock, quote};
use super::message;
use super::model::{FlagView, MailboxKey, SessionModel};
use super::report::{Finding, Rule};
use super::wire::Untagged;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Reads a store's figures for the quota check (the server started by the
/// checker); `None` with `--target`.
pub trait QuotaSource: Send + Sync {
    /// Octets the account uses, as the server counts them for its quota.
    fn quota_used<'a>(
        &'a self,
        account: &'a str,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<u64, String>> + Send + 'a>>;
}

/// A message present at the end.
#[derive(Debug, Clone)]
pub struct Present {
    pub key: MailboxKey,
    pub uid: u32,
    pub message_id: Option<String>,
    pub size: Option<u64>,
}

/// A new session of `account` on the first node, for the final checks.
async fn fresh(plan: &Plan, account: &str, purpose: &str) -> Option<ImapClient> {
    let id = lock(&plan.shared).world.tick();
    let model = SessionModel::new(id, format!("{purpose}@{account}"), account);
    ImapClient::login(
        &plan.shared,
        source_ip(3000),
        plan.nodes[0].imap,
        model,
        &plan.password,
        false,
    )
    .await
}

/// NOOP, then `FETCH 1:* (UID FLAGS)`: the session's view of its mailbox.
async fn view(client: &mut ImapClient) -> Option<(MailboxKey, FlagView)> {
    client.command("NOOP", "", None, None, &[]).await.ok()?;
    let sel = client.model.selected.as_ref()?;
    let key = sel.key.clone();
    if !sel.uids.is_empty() {
        client
            .command("FETCH", "1:* (UID FLAGS)", None, None, &[])
            .await
            .ok()?;
    }
    let sel = client.model.selected.as_ref()?;
    let view = sel
        .uids
        .iter()
        .map(|uid| {
            let uid = uid.unwrap_or(0);
            (uid, sel.flags.get(&uid).cloned().unwrap_or_default())
        })
        .collect();
    Some((key, view))
}

/// The first difference between two views, in words.
fn difference(view: &FlagView, reference: &FlagView) -> Option<String> {
    for (uid, flags) in view {
        match reference.get(uid) {
            None => return Some(format!("UID {uid} is still there for this session only")),
            Some(other) if other != flags => {
                return Some(format!(
                    "UID {uid}: this session {flags:?}, a fresh session {other:?}"
                ));
            }
            Some(_) => {}
        }
    }
    reference
        .keys()
        .find(|uid| !view.contains_key(uid))
        .map(|uid| format!("UID {uid} is missing for this session"))
}

/// Flags converge: each open session against a fresh one per mailbox.
pub async fn converge(plan: &Plan, clients: &mut [ImapClient]) {
    let mut views: Vec<(usize, MailboxKey, FlagView)> = Vec::new();
    for (i, client) in clients.iter_mut().enumerate() {
        if let Some((key, view)) = view(client).await {
            views.push((i, key, view));
        }
    }
    let mut references: BTreeMap<MailboxKey, FlagView> = BTreeMap::new();
    for key in views.iter().map(|(_, k, _)| k.clone()) {
        if references.contains_key(&key) {
            continue;
        }
        let Some(mut client) = fresh(plan, &key.account, "converge").await else {
            continue;
        };
        let examined = client
            .command(
                "EXAMINE",
                &quote(&key.mailbox),
                None,
                Some(key.clone()),
                &[],
            )
            .await;
        if examined.is_ok_and(|a| a.ok())
            && let Some((_, reference)) = view(&mut client).await
        {
            references.insert(key, reference);
        }
        let _ = client.command("LOGOUT", "", None, None, &[]).await;
    }
    let sessions = views.len();
    for (i, key, view) in views {
        let Some(reference) = references.get(&key) else {
            continue;
        };
        if let Some(detail) = difference(&view, reference) {
            let client = &mut clients[i];
            let finding = Finding::new(Rule::FlagsDiverged, format!("{key}: {detail}"));
            client.record_findings(vec![finding]);
        }
    }
    lock(&plan.shared).report.notes.push(format!(
        "convergence: {sessions} open sessions compared with a fresh session of their mailbox"
    ));
}

/// Every message of an account at the end, read by a fresh session.
async fn inventory(plan: &Plan, account: &str) -> Option<(Vec<Present>, Option<u64>)> {
    let mut client = fresh(plan, account, "inventory").await?;
    let capability = client
        .command("CAPABILITY", "", None, None, &[])
        .await
        .ok()?;
    let quota = capability.untagged.iter().any(|u| {
        matches!(u, Untagged::Other(text) if text.split_whitespace().any(|w| w.eq_ignore_ascii_case("QUOTA")))
    });
    let list = client
        .command("LIST", "\"\" \"*\"", None, None, &[])
        .await
        .ok()?;
    let names: Vec<String> = list
        .untagged
        .iter()
        .filter_map(|u| match u {
            Untagged::List { attributes, name }
                if !attributes.iter().any(|a| {
                    a.eq_ignore_ascii_case("\\Noselect") || a.eq_ignore_ascii_case("\\NonExistent")
                }) =>
            {
                Some(name.clone())
            }
            _ => None,
        })
        .collect();
    let mut present = Vec::new();
    for name in names {
        let key = MailboxKey::new(account, &name);
        let answer = client
            .command("EXAMINE", &quote(&name), None, Some(key.clone()), &[])
            .await
            .ok()?;
        if !answer.ok() {
            continue;
        }
        let count = client.model.selected.as_ref().map_or(0, |s| s.uids.len());
        if count > 0 {
            client
                .command(
                    "FETCH",
                    "1:* (UID FLAGS RFC822.SIZE ENVELOPE)",
                    None,
                    None,
                    &[],
                )
                .await
                .ok()?;
        }
        let shared = lock(&plan.shared);
        if let Some(sel) = client.model.selected.as_ref() {
            for uid in sel.uids.iter().flatten() {
                let record = shared
                    .world
                    .mailboxes
                    .get(&key)
                    .and_then(|m| m.uids.get(uid));
                present.push(Present {
                    key: key.clone(),
                    uid: *uid,
                    message_id: record.and_then(|r| r.message_id.clone()),
                    size: record.and_then(|r| r.size),
                });
            }
        }
    }
    let mut quota_used = None;
    if quota {
        let answer = client
            .command("GETQUOTAROOT", "INBOX", None, None, &[])
            .await
            .ok()?;
        quota_used = answer.untagged.iter().find_map(|u| match u {
            Untagged::Other(text) => storage_kib(text),
            _ => None,
        });
    }
    let _ = client.command("LOGOUT", "", None, None, &[]).await;
    Some((present, quota_used))
}

/// `QUOTA root (STORAGE used limit …)` (RFC 9208 §5.1): used, in KiB.
fn storage_kib(text: &str) -> Option<u64> {
    let rest = text.strip_prefix("QUOTA ")?;
    let open = rest.find('(')?;
    let mut words = rest[open + 1..].trim_end_matches(')').split_whitespace();
    while let Some(word) = words.next() {
        let used = words.next()?;
        let _limit = words.next()?;
        if word.eq_ignore_ascii_case("STORAGE") {
            return used.parse().ok();
        }
    }
    None
}

/// The ledger, the quota and the refusals that said a message was gone.
pub async fn accounts(plan: &Plan, quota: Option<&Arc<dyn QuotaSource>>) {
    let mut present_all: Vec<Present> = Vec::new();
    for account in &plan.accounts {
        let Some((present, imap_quota)) = inventory(plan, account).await else {
            lock(&plan.shared).report.notes.push(format!(
                "{account}: the final inventory could not be read (see the failures)"
            ));
            continue;
        };
        let sum: u64 = present.iter().filter_map(|p| p.size).sum();
        let without_size = present.iter().filter(|p| p.size.is_none()).count();
        let used = match (imap_quota, quota) {
            (Some(kib), _) => Some(("GETQUOTAROOT STORAGE (KiB)", kib, sum.div_ceil(1024))),
            (None, Some(source)) => match source.quota_used(account).await {
                Ok(octets) => Some(("the store's quota used", octets, sum)),
                Err(error) => {
                    lock(&plan.shared)
                        .report
                        .notes
                        .push(format!("{account}: quota not checked: {error}"));
                    None
                }
            },
            (None, None) => {
                lock(&plan.shared).report.notes.push(format!(
                    "{account}: quota not checked: no QUOTA capability and no store access"
                ));
                None
            }
        };
        if let Some((how, used, expected)) = used {
            let rounding = if how.contains("KiB") { 1 } else { 0 };
            if without_size == 0 && used.abs_diff(expected) > rounding {
                let finding = Finding::new(
                    Rule::QuotaMismatch,
                    format!(
                        "{account}: {how} is {used}, the {} messages present sum to {expected}",
                        present.len()
                    ),
                );
                lock(&plan.shared)
                    .report
                    .violate(finding, "final check", Vec::new());
            }
        }
        present_all.extend(present);
    }
    ledger(plan, &present_all);
    claims(plan, &present_all);
}

fn ledger(plan: &Plan, present: &[Present]) {
    let mut counts: HashMap<&str, u32> = HashMap::new();
    for p in present {
        if let Some(id) = &p.message_id
            && message::is_ours(id, &plan.run)
        {
            *counts.entry(id.as_str()).or_default() += 1;
        }
    }
    let mut shared = lock(&plan.shared);
    let mut findings = Vec::new();
    let mut acknowledged = 0;
    for (id, entry) in &shared.world.ledger {
        let n = counts.get(id.as_str()).copied().unwrap_or(0);
        let expected = 1 + entry.copies;
        if entry.acknowledged {
            acknowledged += 1;
        }
        if !entry.copies_unknown && n > expected {
            findings.push(Finding::new(
                Rule::MessageDuplicated,
                format!(
                    "{id} ({} to {}) is present {n} times: 1 delivery + {} copies",
                    entry.via, entry.account, entry.copies
                ),
            ));
        }
        if entry.acknowledged
            && !entry.delete_intent
            && (n == 0 || (!entry.copies_unknown && n < expected))
        {
            findings.push(Finding::new(
                Rule::MessageMissing,
                format!(
                    "{id} ({} to {}, acknowledged, never deleted) is present {n} times, expected {expected}",
                    entry.via, entry.account
                ),
            ));
        }
    }
    let unknown = counts
        .keys()
        .filter(|id| !shared.world.ledger.contains_key(**id))
        .count();
    for finding in findings {
        shared.report.violate(finding, "final check", Vec::new());
    }
    let sent = shared.world.ledger.len();
    shared.report.notes.push(format!(
        "ledger: {sent} messages sent, {acknowledged} acknowledged, {} present at the end ({unknown} of this run's Message-IDs never sent)",
        present.len()
    ));
}

fn claims(plan: &Plan, present: &[Present]) {
    let mut shared = lock(&plan.shared);
    let claims = std::mem::take(&mut shared.world.gone_claims);
    for claim in claims {
        if present
            .iter()
            .any(|p| p.key == claim.key && p.uid == claim.uid)
        {
            let finding = Finding::new(
                Rule::ClaimedGoneButPresent,
                format!(
                    "{}: UID {}: {} ({})",
                    claim.key, claim.uid, claim.answer, claim.session
                ),
            );
            shared.report.violate(finding, "final check", Vec::new());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stress::model::{GoneClaim, Shared};
    use crate::stress::report::Rule;
    use std::sync::Mutex;

    #[test]
    fn the_ledger_finds_missing_and_duplicated_messages_and_false_claims() {
        let plan = Plan {
            nodes: Vec::new(),
            accounts: Vec::new(),
            password: String::new(),
            run: "r".into(),
            deadline: tokio::time::Instant::now(),
            shared: Arc::new(Mutex::new(Shared::default())),
        };
        let id = |n: u32| format!("<r.{n}@{}>", message::DOMAIN);
        let key = MailboxKey::new("a@example.test", "INBOX");
        let mut present = Vec::new();
        let mut put = |n: u32, times: u32| {
            for i in 0..times {
                present.push(Present {
                    key: key.clone(),
                    uid: n * 10 + i,
                    message_id: Some(id(n)),
                    size: Some(100),
                });
            }
        };
        // (acknowledged, copies, delete intent, present)
        let cases = [
            (true, 0, false, 1),  // 1: fine
            (true, 0, false, 0),  // 2: missing
            (true, 1, false, 3),  // 3: duplicated
            (true, 0, true, 0),   // 4: deleted as intended
            (false, 0, false, 0), // 5: never acknowledged
            (true, 1, false, 1),  // 6: a copy missing
        ];
        {
            let mut shared = plan.shared.lock().expect("not poisoned");
            for (n, (acknowledged, copies, delete, times)) in cases.into_iter().enumerate() {
                let n = n as u32 + 1;
                shared.world.attempt(&id(n), "a@example.test", "SMTP");
                if acknowledged {
                    shared.world.acknowledge(&id(n));
                }
                (0..copies).for_each(|_| shared.world.copied(&id(n)));
                if delete {
                    shared.world.intend_delete(&id(n));
                }
                put(n, times);
            }
            for uid in [10, 999] {
                shared.world.gone_claims.push(GoneClaim {
                    key: key.clone(),
                    uid,
                    session: "pop3".into(),
                    answer: "RETR refused".into(),
                });
            }
        }
        ledger(&plan, &present);
        claims(&plan, &present);
        let shared = plan.shared.lock().expect("not poisoned");
        let found: Vec<(Rule, u64)> = shared
            .report
            .violations
            .iter()
            .map(|(rule, (n, _))| (*rule, *n))
            .collect();
        assert_eq!(
            found,
            vec![
                (Rule::MessageMissing, 2),
                (Rule::MessageDuplicated, 1),
                (Rule::ClaimedGoneButPresent, 1)
            ],
            "{}",
            shared.report
        );
    }

    #[test]
    fn views_differ_by_uid_or_flags() {
        let flags = |f: &[&str]| f.iter().map(|s| s.to_string()).collect();
        let a: FlagView = [(1, flags(&["\\seen"])), (2, flags(&[]))].into();
        let mut b = a.clone();
        assert_eq!(difference(&a, &b), None);
        b.insert(2, flags(&["$label1"]));
        assert!(difference(&a, &b).is_some_and(|d| d.starts_with("UID 2:")));
        b.remove(&2);
        assert!(difference(&a, &b).is_some_and(|d| d.contains("this session only")));
        assert!(difference(&b, &a).is_some_and(|d| d.contains("missing")));
    }

    #[test]
    fn quota_storage_in_kib() {
        assert_eq!(storage_kib("QUOTA \"\" (STORAGE 10 512)"), Some(10));
        assert_eq!(
            storage_kib("QUOTA \"\" (MESSAGE 3 100 STORAGE 7 512)"),
            Some(7)
        );
        assert_eq!(storage_kib("QUOTAROOT INBOX \"\""), None);
    }
}
