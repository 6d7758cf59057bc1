//! The store under concurrent writers, on SQLite and on PostgreSQL: several
//! store handles (on PostgreSQL, several nodes) changing the same rows at
//! once lose nothing, fail nothing, and keep the quota exact.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use pillarbox_store::*;
use pillarbox_tests::backends;
use pillarbox_tests::store_fixture::{StoreFixture as Fixture, message, to};

/// Store handles on one database: the fixture's and two more.
async fn handles(f: &Fixture) -> Vec<Store> {
    vec![
        f.store.clone(),
        f.other_handle(|o| o).await,
        f.other_handle(|o| o).await,
    ]
}

async fn close(handles: Vec<Store>) {
    for store in handles.into_iter().skip(1) {
        store.close().await;
    }
}

/// STORE computes the new flags from the old ones: with the old ones read
/// unlocked, two STOREs at once on PostgreSQL each wrote their own keyword
/// over the other's.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_flag_additions_on_one_message_are_all_kept() {
    for backend in backends() {
        let f = Fixture::new(backend).await;
        let (alice, inbox) = f.account("alice").await;
        let uid = f
            .store
            .deliver(&message("flags", 10), &[to(alice, &inbox)])
            .await
            .unwrap()[0]
            .uid;
        let handles = handles(&f).await;
        let mut tasks = Vec::new();
        for n in 0..30 {
            let store = handles[n % handles.len()].clone();
            tasks.push(tokio::spawn(async move {
                let keyword = Flags::new().with_keyword(&format!("k{n}"));
                store
                    .store_flags(inbox.id, &[uid], FlagOp::Add, &keyword, None)
                    .await
            }));
        }
        let mut modseqs = Vec::new();
        for task in tasks {
            let updates = task.await.unwrap().unwrap();
            assert_eq!(updates.len(), 1, "{backend:?}: each adds a new keyword");
            modseqs.push(updates[0].modseq);
        }
        let entry = f.store.message(inbox.id, uid).await.unwrap().unwrap();
        let missing: Vec<String> = (0..30)
            .map(|n| format!("k{n}"))
            .filter(|k| !entry.flags.has_keyword(k))
            .collect();
        assert!(missing.is_empty(), "{backend:?}: lost {missing:?}");
        modseqs.sort();
        modseqs.dedup();
        assert_eq!(modseqs.len(), 30, "{backend:?}: one MODSEQ per change");
        close(handles).await;
        f.done().await;
    }
}

/// Two sessions expunging the same messages at once (IMAP EXPUNGE and a
/// POP3 QUIT): both succeed, each UID is reported expunged once, and the
/// quota is un-charged once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_expunges_of_the_same_uids_all_succeed_and_uncharge_once() {
    for backend in backends() {
        let f = Fixture::new(backend).await;
        let (alice, inbox) = f.account("alice").await;
        let archive = f.archive(alice).await;
        let mut uids = Vec::new();
        for n in 0..20 {
            uids.push(
                f.store
                    .deliver(&message(&format!("e{n}"), 300), &[to(alice, &inbox)])
                    .await
                    .unwrap()[0]
                    .uid,
            );
        }
        // Half of them also in Archive: their message rows must stay.
        f.store
            .copy_messages(inbox.id, &uids[..10], archive.id)
            .await
            .unwrap();
        let start = f
            .store
            .mailbox_by_id(inbox.id)
            .await
            .unwrap()
            .highest_modseq;
        let handles = handles(&f).await;
        for round in 0..3 {
            let targets: Vec<Uid> = uids[round * 6..(round * 6 + 8).min(20)].to_vec();
            let mut tasks = Vec::new();
            for n in 0..8 {
                let store = handles[n % handles.len()].clone();
                let targets = targets.clone();
                tasks.push(tokio::spawn(async move {
                    store.expunge(inbox.id, &targets).await
                }));
            }
            let mut reported = Vec::new();
            for task in tasks {
                match task.await.unwrap() {
                    Ok(expunged) => reported.extend(expunged),
                    Err(error) => panic!("{backend:?}: a concurrent EXPUNGE failed: {error}"),
                }
            }
            reported.sort();
            let fresh: Vec<Uid> = targets
                .iter()
                .copied()
                .filter(|uid| round == 0 || *uid >= uids[round * 6 + 2])
                .collect();
            assert_eq!(reported, fresh, "{backend:?}: each UID reported once");
        }
        let gone = f.store.expunged_since(inbox.id, start).await.unwrap();
        let mut gone_uids: Vec<Uid> = gone.iter().map(|(uid, _)| *uid).collect();
        gone_uids.dedup();
        assert_eq!(gone_uids, uids[..20].to_vec(), "{backend:?}");
        assert!(
            f.store
                .messages(inbox.id, UidRange::all())
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            f.store.quota_used(alice).await.unwrap(),
            f.store.quota_recount(alice).await.unwrap(),
            "{backend:?}: un-charged exactly once"
        );
        for entry in f.store.messages(archive.id, UidRange::all()).await.unwrap() {
            f.store.message_bytes(entry.message).await.unwrap();
        }
        close(handles).await;
        f.done().await;
    }
}

/// A delivery committing while its mailbox is deleted is either deleted
/// with it (and un-charged) or refused: the quota never drifts.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deliveries_racing_a_mailbox_delete_leave_the_quota_exact() {
    for backend in backends() {
        let f = Fixture::new(backend).await;
        let (alice, inbox) = f.account("alice").await;
        let handles = handles(&f).await;
        for round in 0..6 {
            let doomed = f.store.create_mailbox(alice, "Doomed", None).await.unwrap();
            let mut tasks = Vec::new();
            for n in 0..24 {
                let store = handles[n % handles.len()].clone();
                let targets = if n % 3 == 0 {
                    vec![to(alice, &inbox)]
                } else {
                    vec![to(alice, &doomed)]
                };
                tasks.push(tokio::spawn(async move {
                    store
                        .deliver(&message(&format!("r{round}-{n}"), 500), &targets)
                        .await
                }));
            }
            tokio::time::sleep(std::time::Duration::from_millis(5 * round as u64)).await;
            handles[1].delete_mailbox(alice, "Doomed").await.unwrap();
            for task in tasks {
                match task.await.unwrap() {
                    Ok(_) | Err(StoreError::MailboxIdNotFound(_)) => {}
                    Err(other) => panic!("{backend:?}: {other}"),
                }
            }
            assert_eq!(
                f.store.quota_used(alice).await.unwrap(),
                f.store.quota_recount(alice).await.unwrap(),
                "{backend:?}: round {round}"
            );
        }
        close(handles).await;
        f.done().await;
    }
}

/// RENAME moves the children along, whatever the characters of the name
/// (the prefix was compared by byte length against a character count).
#[tokio::test]
async fn rename_of_a_non_ascii_mailbox_moves_its_children() {
    for backend in backends() {
        let f = Fixture::new(backend).await;
        let (alice, _) = f.account("alice").await;
        for (from, child, to_name) in [
            ("Entwürfe", "Entwürfe/Alt", "Alte Entwürfe"),
            ("邮件", "邮件/归档/2024", "メール"),
            ("Ünïcödé", "Ünïcödé/x", "Plain"),
        ] {
            let made = f.store.create_mailbox(alice, child, None).await.unwrap();
            f.store
                .deliver(&message(child, 10), &[to(alice, &made)])
                .await
                .unwrap();
            f.store.rename_mailbox(alice, from, to_name).await.unwrap();
            let moved_name = format!("{to_name}{}", &child[from.len()..]);
            let moved = f
                .store
                .mailbox(alice, &moved_name)
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("{backend:?}: {child} did not follow to {moved_name}"));
            assert_eq!(moved.id, made.id, "{backend:?}");
            assert!(
                f.store.mailbox(alice, child).await.unwrap().is_none(),
                "{backend:?}: {child} left behind"
            );
            assert_eq!(
                f.store
                    .messages(moved.id, UidRange::all())
                    .await
                    .unwrap()
                    .len(),
                1
            );
        }
        f.done().await;
    }
}

/// Two imports of the same new messages in opposite orders, at once: on
/// PostgreSQL each inserted its first blob row and waited for the other's
/// (a deadlock, and one import failed). Blob rows are now taken in hash
/// order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batches_of_the_same_new_blobs_in_opposite_orders_do_not_deadlock() {
    for backend in backends() {
        let f = Fixture::new(backend).await;
        let (alice, alice_inbox) = f.account("alice").await;
        let (bob, bob_inbox) = f.account("bob").await;
        let handles = handles(&f).await;
        for round in 0..30 {
            let messages: Vec<NewMessage> = (0..4)
                .map(|n| message(&format!("same-{round}-{n}"), 2_000))
                .collect();
            let forward: Vec<(NewMessage, Vec<Target>)> = messages
                .iter()
                .map(|m| (m.clone(), vec![to(alice, &alice_inbox)]))
                .collect();
            let backward: Vec<(NewMessage, Vec<Target>)> = messages
                .iter()
                .rev()
                .map(|m| (m.clone(), vec![to(bob, &bob_inbox)]))
                .collect();
            let (a, b) = (handles[1].clone(), handles[2].clone());
            let (first, second) = tokio::join!(
                tokio::spawn(async move { a.deliver_batch(&forward).await }),
                tokio::spawn(async move { b.deliver_batch(&backward).await }),
            );
            if let Err(error) = first.unwrap() {
                panic!("{backend:?}: round {round}: {error}");
            }
            if let Err(error) = second.unwrap() {
                panic!("{backend:?}: round {round}: {error}");
            }
        }
        assert_eq!(f.store.blob_count().await.unwrap(), 30 * 4, "{backend:?}");
        close(handles).await;
        f.done().await;
    }
}
