//! The blob lifecycle, on SQLite and on PostgreSQL, with message bytes in
//! files (both backends) and in rows: expunging a message's last copy
//! deletes its row and tombstones its blob at once; the sweep removes the
//! blob after the grace period unless a delivery took it up again; files
//! with no row go once old enough; no delivered message ever points at
//! nothing.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use pillarbox_store::*;
use pillarbox_tests::backends;
use pillarbox_tests::store_fixture::{StoreFixture as Fixture, message, to};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

fn file_of(dir: &Path, hash: &str) -> PathBuf {
    dir.join(&hash[0..2]).join(&hash[2..4]).join(hash)
}

fn served(m: &NewMessage) -> Vec<u8> {
    let mut expected = m.trace_headers.clone();
    expected.extend_from_slice(&m.raw);
    expected
}

fn age(path: &Path, by: Duration) {
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(SystemTime::now() - by).unwrap();
}

/// The race: a blob whose last message was just expunged is swept (grace
/// zero) while the same bytes are delivered again. Whichever goes first,
/// the delivered message is readable afterwards — also after more sweeps.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_blob_swept_while_the_same_bytes_are_delivered_stays_readable() {
    for backend in backends() {
        let f = Fixture::with_file_blobs(backend).await;
        let (alice, alice_inbox) = f.account("alice").await;
        let (bob, bob_inbox) = f.account("bob").await;
        let sweeper = f.other_handle(|o| o).await;
        for round in 0..40 {
            // Files (over INLINE_MAX) and rows, in turn.
            let size = if round % 2 == 0 {
                blob::INLINE_MAX + 1_000
            } else {
                1_000
            };
            let m = message(&format!("race-{round}"), size);
            let first = f
                .store
                .deliver(&m, &[to(alice, &alice_inbox)])
                .await
                .unwrap();
            let (sweep, delivery) = {
                let sweeper = sweeper.clone();
                let store = f.store.clone();
                let m = m.clone();
                let target = to(bob, &bob_inbox);
                let uid = first[0].uid;
                tokio::join!(
                    tokio::spawn(async move {
                        sweeper.expunge(alice_inbox.id, &[uid]).await?;
                        sweeper.sweep_blobs(Duration::ZERO).await
                    }),
                    tokio::spawn(async move { store.deliver(&m, &[target]).await }),
                )
            };
            sweep.unwrap().unwrap();
            let delivered = delivery
                .unwrap()
                .unwrap_or_else(|e| panic!("{backend:?}: round {round}: {e}"));
            let read = f.store.message_bytes(delivered[0].message).await;
            let read = read.unwrap_or_else(|e| panic!("{backend:?}: round {round}: {e}"));
            assert_eq!(&read[..], &served(&m)[..], "{backend:?}: round {round}");
            sweeper.sweep_blobs(Duration::ZERO).await.unwrap();
            let again = f.store.message_bytes(delivered[0].message).await.unwrap();
            assert_eq!(&again[..], &served(&m)[..], "{backend:?}: round {round}");
        }
        sweeper.close().await;
        f.done().await;
    }
}

/// EXPUNGE (and POP3's QUIT, which expunges) touches what it removes and
/// nothing else: it used to end with a sweep of the whole store, which
/// also removed rows it had nothing to do with.
#[tokio::test]
async fn expunge_leaves_unrelated_unreferenced_rows_alone() {
    for backend in backends() {
        let f = Fixture::new(backend).await;
        let (alice, inbox) = f.account("alice").await;
        // A message row no mailbox holds and its blob, as another path
        // (an older version's crash) left them.
        let stray_hash = blob::hash(b"stray");
        let stray_id: i64 = with_pool!(f.store.db_write(), pool => {
            sqlx::query("INSERT INTO blobs (hash, size, data) VALUES ($1, 5, $2)")
                .bind(&stray_hash)
                .bind(&b"stray"[..])
                .execute(pool)
                .await
                .unwrap();
            let (id,): (i64,) = sqlx::query_as(
                "INSERT INTO messages (blob_hash, trace_headers, size, internal_date, meta, header_text, body_text) \
                 VALUES ($1, $2, 5, 0, '{}', '', '') RETURNING id",
            )
            .bind(&stray_hash)
            .bind(&b""[..])
            .fetch_one(pool)
            .await
            .unwrap();
            id
        });
        let delivered = f
            .store
            .deliver(&message("mine", 100), &[to(alice, &inbox)])
            .await
            .unwrap();
        assert_eq!(
            f.store
                .expunge(inbox.id, &[delivered[0].uid])
                .await
                .unwrap(),
            vec![delivered[0].uid]
        );
        let stray_left: (i64, i64) = with_pool!(f.store.db(), pool => {
            sqlx::query_as(
                "SELECT (SELECT COUNT(*) FROM messages WHERE id = $1), \
                        (SELECT COUNT(*) FROM blobs WHERE hash = $2)",
            )
            .bind(stray_id)
            .bind(&stray_hash)
            .fetch_one(pool)
            .await
            .unwrap()
        });
        assert_eq!(stray_left, (1, 1), "{backend:?}: EXPUNGE swept the store");
        // What it removed, it removed at once.
        assert!(matches!(
            f.store.message_bytes(delivered[0].message).await,
            Err(StoreError::MessageExpunged(_))
        ));
        assert_eq!(f.store.blob_tombstone_count().await.unwrap(), 1);
        f.done().await;
    }
}

/// Files with no row go once older than the grace period; younger ones
/// (a delivery about to commit) and files with a row stay; temporary files
/// of an interrupted write go too.
#[tokio::test]
async fn orphan_files_older_than_the_grace_are_removed_and_younger_ones_kept() {
    for backend in backends() {
        let f = Fixture::with_file_blobs(backend).await;
        let dir = f.blob_dir();
        let (alice, inbox) = f.account("alice").await;
        let m = message("kept", blob::INLINE_MAX + 10);
        let delivered = f.store.deliver(&m, &[to(alice, &inbox)]).await.unwrap();
        let kept = file_of(&dir, &blob::hash(&m.raw));
        age(&kept, Duration::from_secs(7200));
        let mut orphans = Vec::new();
        for name in ["old orphan", "young orphan"] {
            let hash = blob::hash(name.as_bytes());
            let path = file_of(&dir, &hash);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, name).unwrap();
            orphans.push(path);
        }
        age(&orphans[0], Duration::from_secs(7200));
        let temporary = kept.with_file_name(".tmp-1-2");
        std::fs::write(&temporary, "half a write").unwrap();
        age(&temporary, Duration::from_secs(7200));

        let removed = f
            .store
            .sweep_orphan_files(Duration::from_secs(3600))
            .await
            .unwrap();
        assert_eq!(removed, 2, "{backend:?}: the old orphan and the temporary");
        assert!(!orphans[0].exists(), "{backend:?}: old orphan removed");
        assert!(orphans[1].exists(), "{backend:?}: young orphan kept");
        assert!(!temporary.exists(), "{backend:?}");
        assert!(kept.exists(), "{backend:?}: a file with a row stays");
        let read = f.store.message_bytes(delivered[0].message).await.unwrap();
        assert_eq!(&read[..], &served(&m)[..]);
        f.done().await;
    }
}

/// Quota and blob counts through a message's life: copies in several
/// mailboxes and accounts keep it; the last copy gone, its blob waits for
/// the grace period; a new delivery of the same bytes takes it up again;
/// mailbox and account deletes release what they held.
#[tokio::test]
async fn quota_and_blob_counts_follow_deliveries_expunges_and_sweeps() {
    for backend in backends() {
        let f = Fixture::with_file_blobs(backend).await;
        let dir = f.blob_dir();
        let (alice, alice_inbox) = f.account("alice").await;
        let (bob, bob_inbox) = f.account("bob").await;
        let archive = f.archive(alice).await;
        let shared = message("shared", 1_000);
        let large = message("large", blob::INLINE_MAX + 10);
        let large_file = file_of(&dir, &blob::hash(&large.raw));
        let both = f
            .store
            .deliver(&shared, &[to(alice, &alice_inbox), to(bob, &bob_inbox)])
            .await
            .unwrap();
        let alone = f
            .store
            .deliver(&large, &[to(alice, &alice_inbox)])
            .await
            .unwrap();
        let size = |m: &NewMessage| (m.raw.len() + m.trace_headers.len()) as u64;
        let exact = |account: AccountId| {
            let store = f.store.clone();
            async move {
                let used = store.quota_used(account).await.unwrap();
                assert_eq!(used, store.quota_recount(account).await.unwrap());
                used
            }
        };
        let counts = || {
            let store = f.store.clone();
            async move {
                (
                    store.blob_count().await.unwrap(),
                    store.blob_tombstone_count().await.unwrap(),
                )
            }
        };
        assert_eq!(counts().await, (2, 0), "{backend:?}");
        assert_eq!(exact(alice).await, size(&shared) + size(&large));

        f.store
            .expunge(alice_inbox.id, &[both[0].uid])
            .await
            .unwrap();
        assert_eq!(counts().await, (2, 0), "{backend:?}: bob still has it");
        assert_eq!(exact(alice).await, size(&large));
        f.store
            .move_messages(alice_inbox.id, &[alone[0].uid], archive.id)
            .await
            .unwrap();
        assert_eq!(counts().await, (2, 0), "{backend:?}: moved, not gone");
        assert_eq!(exact(alice).await, size(&large));

        f.store.expunge(bob_inbox.id, &[both[1].uid]).await.unwrap();
        assert_eq!(counts().await, (2, 1), "{backend:?}: tombstoned");
        assert_eq!(exact(bob).await, 0);
        assert!(matches!(
            f.store.message_bytes(both[1].message).await,
            Err(StoreError::MessageExpunged(id)) if id == both[1].message
        ));
        let waiting = f
            .store
            .sweep_blobs(Duration::from_secs(3600))
            .await
            .unwrap();
        assert_eq!(waiting.blobs_removed, 0, "{backend:?}: within the grace");
        let swept = f.store.sweep_blobs(Duration::ZERO).await.unwrap();
        assert_eq!(swept.blobs_removed, 1, "{backend:?}");
        assert_eq!(counts().await, (1, 0), "{backend:?}");

        f.store.delete_mailbox(alice, &archive.name).await.unwrap();
        assert_eq!(counts().await, (1, 1), "{backend:?}: the large one waits");
        assert_eq!(exact(alice).await, 0);
        // Delivered again within the grace: the tombstone goes, the blob stays.
        let again = f
            .store
            .deliver(&large, &[to(bob, &bob_inbox)])
            .await
            .unwrap();
        assert_eq!(counts().await, (1, 0), "{backend:?}");
        let kept = f.store.sweep_blobs(Duration::ZERO).await.unwrap();
        assert_eq!(kept.blobs_removed, 0, "{backend:?}");
        assert!(large_file.exists(), "{backend:?}");
        let read = f.store.message_bytes(again[0].message).await.unwrap();
        assert_eq!(&read[..], &served(&large)[..]);
        assert_eq!(exact(bob).await, size(&large));

        f.directory
            .remove_account("bob@example.test")
            .await
            .unwrap();
        assert!(matches!(
            f.store.quota_used(bob).await,
            Err(StoreError::AccountNotFound(_))
        ));
        assert_eq!(
            counts().await,
            (1, 1),
            "{backend:?}: the account's mail went"
        );
        f.store.sweep_blobs(Duration::ZERO).await.unwrap();
        assert_eq!(counts().await, (0, 0), "{backend:?}");
        assert!(!large_file.exists(), "{backend:?}: its file went with it");
        f.done().await;
    }
}

/// The server runs the sweeps: at start (then every few minutes) blobs
/// tombstoned longer ago than `[store] blob_grace_secs` go, and so do blob
/// files with no row (SQLite: the server keeps large messages in files;
/// PostgreSQL: in rows).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_sweeps_blobs_and_orphan_files_when_it_starts() {
    for backend in backends() {
        let mut ts = pillarbox_tests::TestServer::start_with(backend, |c| {
            c.store.blob_grace_secs = 0;
        })
        .await;
        let account = ts.add_account("alice@example.test", "pw").await;
        let inbox = ts
            .store()
            .require_mailbox(account.id, "INBOX")
            .await
            .unwrap();
        let delivered = ts
            .store()
            .deliver(&message("swept", 100), &[to(account.id, &inbox)])
            .await
            .unwrap();
        ts.store()
            .expunge(inbox.id, &[delivered[0].uid])
            .await
            .unwrap();
        assert_eq!(ts.store().blob_count().await.unwrap(), 1);
        let files = backend == pillarbox_tests::Backend::Sqlite;
        let orphan = file_of(
            &ts.running().config.data_dir.join("blobs"),
            &blob::hash(b"orphan"),
        );
        if files {
            std::fs::create_dir_all(orphan.parent().unwrap()).unwrap();
            std::fs::write(&orphan, "orphan").unwrap();
        }
        ts.restart().await;
        let mut left = u64::MAX;
        for _ in 0..100 {
            left = ts.store().blob_count().await.unwrap();
            if left == 0 && !orphan.exists() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(left, 0, "{backend:?}: the tombstoned blob was swept");
        if files {
            assert!(!orphan.exists(), "{backend:?}: the orphan file was removed");
        }
        ts.stop().await;
    }
}

/// Broken nested MIME with NUL bytes in its header fields (found by the
/// imap_fetch_encode fuzz target) is stored, read back byte for byte and
/// its structure served, on both backends.
#[tokio::test]
async fn a_message_of_broken_nested_mime_with_nul_bytes_is_stored() {
    let raw: &[u8] = include_bytes!("../../crates/store/testdata/nested-rfc822-blowup.eml");
    for backend in backends() {
        let f = Fixture::new(backend).await;
        let (alice, inbox) = f.account("alice").await;
        let m = NewMessage {
            raw: bytes::Bytes::from_static(raw),
            trace_headers: Vec::new(),
            internal_date: Some(1_700_000_000),
        };
        let delivered = f.store.deliver(&m, &[to(alice, &inbox)]).await;
        let delivered = match delivered {
            Ok(delivered) => delivered,
            Err(e) => panic!("{backend:?}: {e} / {e:?}"),
        };
        let bytes = f.store.message_bytes(delivered[0].message).await.unwrap();
        assert_eq!(&bytes[..], raw);
        let meta = f.store.message_meta(delivered[0].message).await.unwrap();
        assert_eq!(meta.body.media_type, "multipart");
        f.done().await;
    }
}
