//! The message store, on SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use bytes::Bytes;
use pillarbox_store::*;
use pillarbox_tests::store_fixture::{StoreFixture as Fixture, message, to};
use pillarbox_tests::{Backend, TestDb, backends};
use std::time::Duration;

/// A mailbox listing (SELECT, FETCH RFC822.SIZE INTERNALDATE) reads the
/// size and the internal date from the mailbox row: they must be the
/// message's, for delivered, copied and moved messages alike.
#[tokio::test]
async fn listings_show_each_message_size_and_date_after_copy_and_move() {
    for backend in backends() {
        let f = Fixture::new(backend).await;
        let (alice, inbox) = f.account("alice").await;
        let archive = f.archive(alice).await;
        let mut sent = Vec::new();
        for (i, date) in [(0usize, 1_000_000_000i64), (1, 1_700_000_000)] {
            let mut m = message(&format!("dated{i}"), 100 + 1000 * i);
            m.internal_date = Some(date);
            let size = (m.raw.len() + m.trace_headers.len()) as u64;
            f.store.deliver(&m, &[to(alice, &inbox)]).await.unwrap();
            sent.push((size, date));
        }
        let listed = |store: Store, mailbox: MailboxId| async move {
            store
                .messages(mailbox, UidRange::all())
                .await
                .unwrap()
                .iter()
                .map(|e| (e.size, e.internal_date))
                .collect::<Vec<_>>()
        };
        assert_eq!(listed(f.store.clone(), inbox.id).await, sent, "{backend:?}");
        f.store
            .copy_messages(inbox.id, &[Uid(2)], archive.id)
            .await
            .unwrap();
        f.store
            .move_messages(inbox.id, &[Uid(1)], archive.id)
            .await
            .unwrap();
        assert_eq!(
            listed(f.store.clone(), archive.id).await,
            vec![sent[1], sent[0]],
            "{backend:?}: copied, then moved"
        );
        assert_eq!(listed(f.store.clone(), inbox.id).await, vec![sent[1]]);
        f.done().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_deliveries_get_unique_ascending_uids() {
    for backend in backends() {
        let f = Fixture::new(backend).await;
        let (alice, inbox) = f.account("alice").await;
        let mut tasks = Vec::new();
        for task in 0..8 {
            let store = f.store.clone();
            let target = to(alice, &inbox);
            tasks.push(tokio::spawn(async move {
                let mut uids = Vec::new();
                for n in 0..200 {
                    let delivered = store
                        .deliver(
                            &message(&format!("t{task}-{n}"), 100),
                            std::slice::from_ref(&target),
                        )
                        .await
                        .expect("delivery succeeds under concurrency");
                    uids.push(delivered[0].uid);
                }
                uids
            }));
        }
        let mut all = Vec::new();
        for task in tasks {
            let uids = task.await.unwrap();
            // Each writer sees its own deliveries in ascending UID order.
            assert!(uids.windows(2).all(|w| w[0] < w[1]), "{backend:?}");
            all.extend(uids);
        }
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 1600, "{backend:?}: every UID is unique");
        let listed: Vec<Uid> = f
            .store
            .messages(inbox.id, UidRange::all())
            .await
            .unwrap()
            .iter()
            .map(|m| m.uid)
            .collect();
        assert_eq!(listed, all, "{backend:?}");
        let mailbox = f.store.mailbox_by_id(inbox.id).await.unwrap();
        assert_eq!(
            mailbox.uid_next.0,
            all.last().unwrap().0 + 1,
            "{backend:?}: UIDNEXT = max + 1"
        );
        f.done().await;
    }
}

#[tokio::test]
async fn every_change_raises_highestmodseq_and_expunges_are_remembered() {
    for backend in backends() {
        let f = Fixture::new(backend).await;
        let (alice, inbox) = f.account("alice").await;
        let archive = f.archive(alice).await;
        let modseq = |store: Store, id: MailboxId| async move {
            store.mailbox_by_id(id).await.unwrap().highest_modseq
        };

        let start = modseq(f.store.clone(), inbox.id).await;
        let delivered = f
            .store
            .deliver(&message("one", 10), &[to(alice, &inbox)])
            .await
            .unwrap();
        f.store
            .deliver(&message("two", 10), &[to(alice, &inbox)])
            .await
            .unwrap();
        f.store
            .deliver(&message("three", 10), &[to(alice, &inbox)])
            .await
            .unwrap();
        let after_deliver = modseq(f.store.clone(), inbox.id).await;
        assert!(after_deliver > start, "{backend:?}");

        let seen = Flags::new().with(SystemFlag::Seen).with_keyword("$Work");
        let updates = f
            .store
            .store_flags(inbox.id, &[Uid(1), Uid(2)], FlagOp::Add, &seen, None)
            .await
            .unwrap();
        assert_eq!(updates.len(), 2);
        let after_flags = modseq(f.store.clone(), inbox.id).await;
        assert!(after_flags > after_deliver, "{backend:?}");
        assert!(
            updates
                .iter()
                .all(|u| u.modseq == after_flags && u.flags.contains(SystemFlag::Seen))
        );
        // Setting flags a message already has changes nothing and takes no MODSEQ.
        assert!(
            f.store
                .store_flags(inbox.id, &[Uid(1)], FlagOp::Add, &seen, None)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(modseq(f.store.clone(), inbox.id).await, after_flags);
        // CONDSTORE: UNCHANGEDSINCE older than the message's MODSEQ leaves it alone.
        let cond = f
            .store
            .store_flags(
                inbox.id,
                &[Uid(1)],
                FlagOp::Remove,
                &seen,
                Some(after_deliver),
            )
            .await
            .unwrap();
        assert!(cond.is_empty(), "{backend:?}");

        let copied = f
            .store
            .copy_messages(inbox.id, &[Uid(3)], archive.id)
            .await
            .unwrap();
        assert_eq!(copied.mapping, vec![(Uid(3), Uid(1))]);
        assert_eq!(copied.uid_validity, archive.uid_validity);
        let archive_after = f.store.mailbox_by_id(archive.id).await.unwrap();
        assert!(archive_after.highest_modseq > archive.highest_modseq);

        let expunged = f.store.expunge(inbox.id, &[Uid(1), Uid(99)]).await.unwrap();
        assert_eq!(expunged, vec![Uid(1)], "absent UIDs are ignored");
        let after_expunge = modseq(f.store.clone(), inbox.id).await;
        assert!(after_expunge > after_flags);

        let moved = f
            .store
            .move_messages(inbox.id, &[Uid(2)], archive.id)
            .await
            .unwrap();
        assert_eq!(moved.mapping, vec![(Uid(2), Uid(2))]);
        let after_move = modseq(f.store.clone(), inbox.id).await;
        assert!(after_move > after_expunge);

        let gone = f.store.expunged_since(inbox.id, after_flags).await.unwrap();
        assert_eq!(
            gone,
            vec![(Uid(1), after_expunge), (Uid(2), after_move)],
            "{backend:?}"
        );
        let changes = f
            .store
            .changes_since(inbox.id, after_deliver)
            .await
            .unwrap();
        assert_eq!(changes.expunged, vec![Uid(1), Uid(2)]);
        assert_eq!(changes.highest_modseq, after_move);
        assert!(
            changes.changed.is_empty(),
            "UID 3 did not change after the deliveries"
        );
        // The moved message kept its flags and bytes.
        let in_archive = f.store.message(archive.id, Uid(2)).await.unwrap().unwrap();
        assert!(in_archive.flags.has_keyword("$work"));
        assert_eq!(
            in_archive.message,
            delivered[0].message.max(in_archive.message)
        );
        f.done().await;
    }
}

#[tokio::test]
async fn fifty_recipients_store_the_bytes_once_and_quota_is_exact() {
    for backend in backends() {
        let f = Fixture::new(backend).await;
        let mut targets = Vec::new();
        let mut accounts = Vec::new();
        for n in 0..50 {
            let (id, inbox) = f.account(&format!("user{n}")).await;
            targets.push(to(id, &inbox));
            accounts.push(id);
        }
        let m = message("to-fifty", 5000);
        let delivered = f.store.deliver(&m, &targets).await.unwrap();
        assert_eq!(delivered.len(), 50);
        assert_eq!(
            f.store.blob_count().await.unwrap(),
            1,
            "{backend:?}: bytes stored once"
        );
        let size = (m.trace_headers.len() + m.raw.len()) as u64;
        for id in &accounts {
            assert_eq!(f.store.quota_used(*id).await.unwrap(), size);
            assert_eq!(f.store.quota_recount(*id).await.unwrap(), size);
        }
        // Byte-exact read back: trace headers then the bytes as received.
        let bytes = f.store.message_bytes(delivered[7].message).await.unwrap();
        let mut expected = m.trace_headers.clone();
        expected.extend_from_slice(&m.raw);
        assert_eq!(bytes.as_ref(), expected.as_slice());
        let entry = f
            .store
            .message(targets[7].mailbox, delivered[7].uid)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(entry.size, size);
        f.done().await;
    }
}

/// Concurrent deliveries share commits; each still succeeds or fails on its
/// own. Messages to alice (small quota) and bob together are refused whole
/// once alice is full, and refusing one changes nothing for the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deliveries_sharing_a_commit_succeed_or_fail_one_by_one() {
    for backend in backends() {
        let f = Fixture::new(backend).await;
        // bob first: his account is charged before alice's, so a refusal
        // has a charge to take back.
        let (bob, bob_inbox) = f.account("bob").await;
        let (alice, alice_inbox) = f.account("alice").await;
        f.directory
            .update_account(
                "alice@example.test",
                &pillarbox_directory::AccountUpdate {
                    quota: Some(Some(8_000)),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for n in 0..60 {
            let store = f.store.clone();
            let targets = if n % 2 == 0 {
                vec![to(alice, &alice_inbox), to(bob, &bob_inbox)]
            } else {
                vec![to(bob, &bob_inbox)]
            };
            tasks.push(tokio::spawn(async move {
                let result = store
                    .deliver(&message(&format!("m{n}"), 900), &targets)
                    .await;
                (n, result)
            }));
        }
        let (mut to_both, mut refused, mut to_bob) = (0, 0, 0);
        for task in tasks {
            match task.await.unwrap() {
                (n, Ok(delivered)) => {
                    assert_eq!(delivered.len(), if n % 2 == 0 { 2 } else { 1 });
                    if n % 2 == 0 {
                        to_both += 1;
                    } else {
                        to_bob += 1;
                    }
                }
                (n, Err(StoreError::OverQuota { account, .. })) => {
                    assert!(n % 2 == 0 && account == alice, "{backend:?}: {n}");
                    refused += 1;
                }
                (n, Err(other)) => panic!("{backend:?}: delivery {n}: {other}"),
            }
        }
        assert_eq!(
            to_bob, 30,
            "{backend:?}: every message for bob alone arrived"
        );
        assert!(
            to_both >= 1 && refused >= 1,
            "{backend:?}: {to_both} {refused}"
        );
        let count = |mailbox: MailboxId| {
            let store = f.store.clone();
            async move {
                store
                    .messages(mailbox, UidRange::all())
                    .await
                    .unwrap()
                    .len()
            }
        };
        assert_eq!(count(alice_inbox.id).await, to_both, "{backend:?}");
        assert_eq!(count(bob_inbox.id).await, to_both + to_bob, "{backend:?}");
        // Usage is exact: nothing was charged for a refused delivery.
        for account in [alice, bob] {
            assert_eq!(
                f.store.quota_used(account).await.unwrap(),
                f.store.quota_recount(account).await.unwrap(),
                "{backend:?}"
            );
        }
        assert!(f.store.quota_used(alice).await.unwrap() <= 8_000);
        f.done().await;
    }
}

/// With file blobs (SQLite), small messages are kept in the database and
/// large ones in files; both read back byte-exact, and a crash-free sweep
/// leaves both alone.
#[tokio::test]
async fn small_messages_stay_in_the_database_and_large_ones_go_to_files() {
    let f = Fixture::new(Backend::Sqlite).await;
    let (alice, inbox) = f.account("alice").await;
    let files = |dir: &std::path::Path| -> usize {
        let mut n = 0;
        for level1 in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            for level2 in std::fs::read_dir(level1.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                n += std::fs::read_dir(level2.path())
                    .into_iter()
                    .flatten()
                    .flatten()
                    .count();
            }
        }
        n
    };
    let blob_dir = f.db.store_options().blob_dir.unwrap();
    let small = message("small", 1_000);
    let large = message("large", blob::INLINE_MAX + 1);
    let mut ids = Vec::new();
    for m in [&small, &large] {
        ids.push(f.store.deliver(m, &[to(alice, &inbox)]).await.unwrap()[0].message);
    }
    assert_eq!(files(&blob_dir), 1, "only the large message has a file");
    f.store.sweep_blobs(Duration::ZERO).await.unwrap();
    f.store.sweep_orphan_files(Duration::ZERO).await.unwrap();
    assert_eq!(files(&blob_dir), 1, "a sweep leaves a used file alone");
    for (id, m) in ids.iter().zip([&small, &large]) {
        let served = f.store.message_bytes(*id).await.unwrap();
        let mut expected = m.trace_headers.clone();
        expected.extend_from_slice(&m.raw);
        assert_eq!(&served[..], &expected[..], "byte-exact");
    }
    f.done().await;
}

#[tokio::test]
async fn over_quota_delivery_stores_nothing() {
    for backend in backends() {
        let f = Fixture::new(backend).await;
        let (alice, inbox) = f.account("alice").await;
        f.directory
            .update_account(
                "alice@example.test",
                &pillarbox_directory::AccountUpdate {
                    quota: Some(Some(1000)),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        f.store
            .deliver(&message("small", 100), &[to(alice, &inbox)])
            .await
            .unwrap();
        let used = f.store.quota_used(alice).await.unwrap();
        let error = f
            .store
            .deliver(&message("big", 2000), &[to(alice, &inbox)])
            .await
            .unwrap_err();
        assert!(
            matches!(error, StoreError::OverQuota { .. }),
            "{backend:?}: {error}"
        );
        assert_eq!(f.store.quota_used(alice).await.unwrap(), used);
        assert_eq!(
            f.store
                .messages(inbox.id, UidRange::all())
                .await
                .unwrap()
                .len(),
            1
        );
        f.done().await;
    }
}

#[tokio::test]
async fn a_failure_in_the_middle_of_a_delivery_leaves_nothing_behind() {
    for backend in backends() {
        let f = Fixture::new(backend).await;
        let (alice, inbox) = f.account("alice").await;
        let (bob, bob_inbox) = f.account("bob").await;
        let before = f.store.mailbox_by_id(inbox.id).await.unwrap();
        let targets = [
            to(alice, &inbox),
            Target {
                account: bob,
                mailbox: MailboxId(999_999),
                flags: Flags::new(),
            },
            to(bob, &bob_inbox),
        ];
        let error = f
            .store
            .deliver(&message("broken", 100), &targets)
            .await
            .unwrap_err();
        assert!(
            matches!(error, StoreError::MailboxIdNotFound(_)),
            "{backend:?}: {error}"
        );
        let after = f.store.mailbox_by_id(inbox.id).await.unwrap();
        assert_eq!(
            after.uid_next, before.uid_next,
            "{backend:?}: no UID was used"
        );
        assert_eq!(after.highest_modseq, before.highest_modseq);
        assert!(
            f.store
                .messages(inbox.id, UidRange::all())
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(f.store.quota_used(alice).await.unwrap(), 0);
        assert_eq!(f.store.quota_used(bob).await.unwrap(), 0);
        assert_eq!(
            f.store.blob_count().await.unwrap(),
            0,
            "{backend:?}: no blob row"
        );
        f.done().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_on_another_store_handle_sees_a_delivery() {
    for backend in backends() {
        let f = Fixture::new(backend).await;
        let (alice, inbox) = f.account("alice").await;
        // A second handle: its own pools (on PostgreSQL its own LISTEN connection).
        let other = f.db.store().await;
        let mut events = other.subscribe();
        let delivered = f
            .store
            .deliver(&message("pushed", 10), &[to(alice, &inbox)])
            .await
            .unwrap();
        let event = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let event = events.recv().await.expect("feed open");
                if event.kind == ChangeKind::Appended {
                    return event;
                }
            }
        })
        .await
        .expect("the other handle hears of the delivery");
        assert_eq!(event.account, alice);
        assert_eq!(event.mailbox, inbox.id);
        assert_eq!(event.modseq, delivered[0].modseq, "{backend:?}");
        other.close().await;
        f.done().await;
    }
}

#[tokio::test]
async fn mailboxes_create_rename_delete_and_subscribe() {
    for backend in backends() {
        let f = Fixture::new(backend).await;
        let (alice, inbox) = f.account("alice").await;
        let names: Vec<String> = f
            .store
            .list_mailboxes(alice)
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.name)
            .collect();
        assert_eq!(
            names,
            ["Archive", "Drafts", "INBOX", "Junk", "Sent", "Trash"]
        );
        for (special, name) in [
            (SpecialUse::Sent, "Sent"),
            (SpecialUse::Trash, "Trash"),
            (SpecialUse::Drafts, "Drafts"),
        ] {
            assert_eq!(
                f.store
                    .special_mailbox(alice, special)
                    .await
                    .unwrap()
                    .unwrap()
                    .name,
                name
            );
        }

        let deep = f
            .store
            .create_mailbox(alice, "Work/2024/Q1", None)
            .await
            .unwrap();
        assert_eq!(deep.name, "Work/2024/Q1");
        assert!(
            f.store.mailbox(alice, "Work/2024").await.unwrap().is_some(),
            "parents are created"
        );
        let error = f
            .store
            .create_mailbox(alice, "Work", None)
            .await
            .unwrap_err();
        assert!(matches!(error, StoreError::MailboxExists(_)));
        assert!(f.store.create_mailbox(alice, "a//b", None).await.is_err());
        assert_eq!(
            f.store.mailbox(alice, "inbox").await.unwrap().unwrap().id,
            inbox.id
        );

        f.store
            .deliver(&message("in-q1", 10), &[to(alice, &deep)])
            .await
            .unwrap();
        let renamed = f
            .store
            .rename_mailbox(alice, "Work", "Projects")
            .await
            .unwrap();
        assert_eq!(renamed.name, "Projects");
        let q1 = f
            .store
            .require_mailbox(alice, "Projects/2024/Q1")
            .await
            .unwrap();
        assert_eq!(q1.id, deep.id, "children follow");
        assert_eq!(q1.uid_validity, deep.uid_validity, "UIDs stay valid");
        assert!(
            f.store
                .mailbox(alice, "Work/2024/Q1")
                .await
                .unwrap()
                .is_none()
        );

        // RENAME INBOX moves its messages and leaves it empty (RFC 9051 §6.3.6).
        f.store
            .deliver(&message("old-inbox", 10), &[to(alice, &inbox)])
            .await
            .unwrap();
        let old = f
            .store
            .rename_mailbox(alice, "INBOX", "Old Inbox")
            .await
            .unwrap();
        assert_eq!(
            f.store
                .messages(old.id, UidRange::all())
                .await
                .unwrap()
                .len(),
            1
        );
        assert!(
            f.store
                .messages(inbox.id, UidRange::all())
                .await
                .unwrap()
                .is_empty()
        );

        let used = f.store.quota_used(alice).await.unwrap();
        assert!(used > 0);
        f.store.delete_mailbox(alice, "Old Inbox").await.unwrap();
        assert!(
            f.store.quota_used(alice).await.unwrap() < used,
            "deleting frees quota"
        );
        assert_eq!(
            f.store.quota_used(alice).await.unwrap(),
            f.store.quota_recount(alice).await.unwrap()
        );
        assert!(matches!(
            f.store.delete_mailbox(alice, "INBOX").await.unwrap_err(),
            StoreError::CannotDeleteInbox
        ));
        // A mailbox made again after deletion gets a new UIDVALIDITY.
        let again = f
            .store
            .create_mailbox(alice, "Old Inbox", None)
            .await
            .unwrap();
        assert!(again.uid_validity > old.uid_validity, "{backend:?}");
        f.done().await;
    }
}

#[tokio::test]
async fn delivery_parses_envelope_and_structure_once() {
    for backend in backends() {
        let f = Fixture::new(backend).await;
        let (alice, inbox) = f.account("alice").await;
        let raw = "From: \"Zoë\" <zoe@remote.test>\r\nTo: alice@example.test\r\nSubject: Report\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nquarterly numbers\r\n--b\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--b--\r\n";
        let m = NewMessage {
            raw: Bytes::from(raw),
            trace_headers: Vec::new(),
            internal_date: Some(1_700_000_000),
        };
        let delivered = f.store.deliver(&m, &[to(alice, &inbox)]).await.unwrap();
        let meta = f.store.message_meta(delivered[0].message).await.unwrap();
        assert_eq!(meta.envelope.subject.as_deref(), Some("Report"));
        assert_eq!(meta.envelope.from[0].mailbox.as_deref(), Some("zoe"));
        assert_eq!(meta.body.media_type, "multipart");
        assert_eq!(meta.body.parts.len(), 2);
        assert_eq!(meta.body.parts[1].media_subtype, "pdf");
        assert_eq!(meta.body.parts[1].encoding, "BASE64");
        let (headers, body) = f
            .store
            .message_search_text(delivered[0].message)
            .await
            .unwrap();
        assert!(headers.contains("Subject: Report"));
        assert!(body.contains("quarterly numbers"));
        let entry = f
            .store
            .message(inbox.id, delivered[0].uid)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(entry.internal_date, 1_700_000_000);
        f.done().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_locks_hold_across_store_handles_and_release_on_drop() {
    for backend in backends() {
        let f = Fixture::new(backend).await;
        let (alice, _) = f.account("alice").await;
        let (bob, _) = f.account("bob").await;
        // On PostgreSQL the second handle stands for a second node.
        let other = match backend {
            Backend::Postgres => f.db.store().await,
            Backend::Sqlite => f.store.clone(),
        };
        let held = f
            .store
            .try_lock_account("pop3", alice)
            .await
            .unwrap()
            .expect("free at first");
        assert!(
            other
                .try_lock_account("pop3", alice)
                .await
                .unwrap()
                .is_none(),
            "{backend:?}: held elsewhere"
        );
        assert!(
            other.try_lock_account("pop3", bob).await.unwrap().is_some(),
            "other accounts are free"
        );
        assert!(
            other
                .try_lock_account("imap-idle", alice)
                .await
                .unwrap()
                .is_some(),
            "other purposes are free"
        );
        drop(held);
        let mut again = None;
        for _ in 0..50 {
            again = other.try_lock_account("pop3", alice).await.unwrap();
            if again.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(again.is_some(), "{backend:?}: released when dropped");
        drop(again);
        if backend == Backend::Postgres {
            other.close().await;
        }
        f.done().await;
    }
}

/// Two nodes (two store handles on one database) claiming the outbound queue
/// at once never get the same recipient, and between them get every one.
#[tokio::test]
async fn queue_claims_never_overlap_between_nodes() {
    use pillarbox_store::queue::{OutboundMessage, OutboundRecipient, Outcome, QueueHolder};
    const LEASE: Duration = Duration::from_secs(600);
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let node_a = db.store().await;
        let node_b = db.store().await;
        for m in 0..10 {
            let outbound = OutboundMessage {
                sender: "alice@example.test".into(),
                data: Bytes::from(format!("Subject: {m}\r\n\r\nx\r\n")),
                envid: None,
                ret_full: true,
                recipients: (0..10)
                    .map(|r| OutboundRecipient {
                        address: format!("r{r}@d{m}.test"),
                        ..Default::default()
                    })
                    .collect(),
            };
            // Queued with no local copy, in the same call path SMTP uses.
            let (delivered, queued) = node_a
                .deliver_and_queue(&message("q", 10), &[], Some(&outbound))
                .await
                .unwrap();
            assert!(delivered.is_empty() && queued.is_some());
        }
        let claim = |store: Store, holder: QueueHolder| async move {
            let mut ids = Vec::new();
            for _ in 0..20 {
                for m in store.queue_claim(&holder, 7, LEASE).await.unwrap() {
                    ids.extend(m.recipients.iter().map(|r| r.id));
                }
            }
            ids
        };
        let (holder_a, holder_b) = (QueueHolder::new(), QueueHolder::new());
        let (a, b) = tokio::join!(
            claim(node_a.clone(), holder_a.clone()),
            claim(node_b.clone(), holder_b.clone())
        );
        let mut all: Vec<i64> = a.iter().chain(&b).copied().collect();
        all.sort_unstable();
        let before = all.len();
        all.dedup();
        assert_eq!(
            before,
            all.len(),
            "{backend:?}: a recipient was claimed twice"
        );
        assert_eq!(all.len(), 100, "{backend:?}: every recipient claimed once");
        // Claimed recipients are not due again until recorded; recorded ones are final.
        assert!(
            node_a
                .queue_claim(&holder_a, 100, LEASE)
                .await
                .unwrap()
                .is_empty()
        );
        let delivered = |ids: &[i64]| -> Vec<(i64, Outcome)> {
            ids.iter()
                .map(|id| {
                    (
                        *id,
                        Outcome::Delivered {
                            reply: "250 ok".into(),
                        },
                    )
                })
                .collect()
        };
        assert!(
            node_a
                .queue_record(&holder_a, &delivered(&a))
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            node_b
                .queue_record(&holder_b, &delivered(&b))
                .await
                .unwrap()
                .is_empty()
        );
        let list = node_a.queue_list().await.unwrap();
        assert!(
            list.iter()
                .all(|m| m.recipients.iter().all(|r| r.state.is_final()))
        );
        node_a.close().await;
        node_b.close().await;
        db.cleanup().await;
    }
}
