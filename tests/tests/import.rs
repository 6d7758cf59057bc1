//! Import from mbox and Maildir, export to both, and back again, on SQLite
//! and PostgreSQL: folders, flags, keywords and bytes survive; a second run
//! copies nothing twice; a dry run changes nothing.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use pillarbox::import::{Importer, export, maildir, mbox};
use pillarbox_directory::Directory;
use pillarbox_store::{SystemFlag, UidRange};
use pillarbox_tests::{TestDb, backends};

const MBOX: &str = "From ann@remote.test Sat Jan  1 00:00:00 2022\r\n\
Status: RO\r\n\
X-Status: AF\r\n\
From: ann@remote.test\r\n\
Subject: first\r\n\
\r\n\
>From the start of a line, quoted in mboxrd.\r\n\
>>From twice quoted.\r\n\
\r\n\
From bob@remote.test Sun Jan  2 10:30:00 2022\r\n\
From: bob@remote.test\r\n\
Subject: second\r\n\
\r\n\
Unread.\r\n\
\r\n";

async fn contents(
    store: &pillarbox_store::Store,
    account: pillarbox_store::AccountId,
    folder: &str,
) -> Vec<(String, pillarbox_store::Flags, i64)> {
    let mailbox = store.require_mailbox(account, folder).await.unwrap();
    let mut out = Vec::new();
    for m in store.messages(mailbox.id, UidRange::all()).await.unwrap() {
        let bytes = store.message_bytes(m.message).await.unwrap();
        out.push((
            String::from_utf8_lossy(&bytes).into_owned(),
            m.flags,
            m.internal_date,
        ));
    }
    out
}

#[tokio::test]
async fn mbox_and_maildir_round_trip() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let store = db.store().await;
        let directory = Directory::new(store.clone());
        directory.add_domain("example.test").await.unwrap();
        let alice = directory
            .add_account("alice@example.test", "pw")
            .await
            .unwrap();
        let bob = directory
            .add_account("bob@example.test", "pw")
            .await
            .unwrap();

        // Dry run: nothing changes.
        let mut dry = Importer::new(&store, alice.id, true);
        mbox::import(&mut dry, MBOX.as_bytes(), "Old Mail")
            .await
            .unwrap();
        let summary = dry.finish().await.unwrap();
        assert_eq!(summary.copied, 2);
        assert!(store.mailbox(alice.id, "Old Mail").await.unwrap().is_none());

        let mut importer = Importer::new(&store, alice.id, false);
        mbox::import(&mut importer, MBOX.as_bytes(), "Old Mail")
            .await
            .unwrap();
        let summary = importer.finish().await.unwrap();
        assert_eq!((summary.copied, summary.skipped), (2, 0));
        let old = contents(&store, alice.id, "Old Mail").await;
        assert_eq!(old.len(), 2);
        assert_eq!(
            old[0].0,
            "From: ann@remote.test\r\nSubject: first\r\n\r\nFrom the start of a line, quoted in mboxrd.\r\n>From twice quoted.\r\n"
        );
        assert!(
            old[0].1.contains(SystemFlag::Seen)
                && old[0].1.contains(SystemFlag::Answered)
                && old[0].1.contains(SystemFlag::Flagged)
        );
        assert!(old[1].1.is_empty());
        assert_eq!(old[0].2, 1640995200, "internal date from the From line");

        // Again: nothing is copied twice.
        let mut again = Importer::new(&store, alice.id, false);
        mbox::import(&mut again, MBOX.as_bytes(), "Old Mail")
            .await
            .unwrap();
        let summary = again.finish().await.unwrap();
        assert_eq!((summary.copied, summary.skipped), (0, 2));

        // A keyword and a second folder, then export as Maildir and import into bob.
        let mailbox = store.require_mailbox(alice.id, "Old Mail").await.unwrap();
        let first = store.messages(mailbox.id, UidRange::all()).await.unwrap()[0].uid;
        store
            .store_flags(
                mailbox.id,
                &[first],
                pillarbox_store::FlagOp::Add,
                &pillarbox_store::Flags::new().with_keyword("Work"),
                None,
            )
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let n = export::export(&store, alice.id, "maildir", &dir.path().join("md"))
            .await
            .unwrap();
        assert_eq!(n, 2);
        assert!(dir.path().join("md/.Old Mail/cur").is_dir());
        let mut importer = Importer::new(&store, bob.id, false);
        maildir::import(&mut importer, &dir.path().join("md"))
            .await
            .unwrap();
        importer.finish().await.unwrap();
        let copied = contents(&store, bob.id, "Old Mail").await;
        assert_eq!(copied.len(), 2);
        assert_eq!(copied[0].0, old[0].0, "bytes survive Maildir");
        assert!(copied[0].1.has_keyword("Work") && copied[0].1.contains(SystemFlag::Flagged));

        // And mbox export → import into a fresh folder gives the same again.
        n_mbox_round_trip(&store, bob.id, dir.path(), &old).await;
        store.close().await;
        db.cleanup().await;
    }
}

async fn n_mbox_round_trip(
    store: &pillarbox_store::Store,
    account: pillarbox_store::AccountId,
    dir: &std::path::Path,
    expected: &[(String, pillarbox_store::Flags, i64)],
) {
    let out = dir.join("mbox");
    export::export(store, account, "mbox", &out).await.unwrap();
    let file = std::fs::File::open(out.join("Old Mail.mbox")).unwrap();
    let mut importer = Importer::new(store, account, false);
    mbox::import(&mut importer, std::io::BufReader::new(file), "Again")
        .await
        .unwrap();
    importer.finish().await.unwrap();
    let again = contents(store, account, "Again").await;
    assert_eq!(again.len(), expected.len());
    for (a, e) in again.iter().zip(expected) {
        assert_eq!(a.0, e.0);
        assert_eq!(
            a.1.contains(SystemFlag::Seen),
            e.1.contains(SystemFlag::Seen)
        );
        assert_eq!(
            a.1.contains(SystemFlag::Answered),
            e.1.contains(SystemFlag::Answered)
        );
        assert_eq!(a.2, e.2, "internal date survives mbox");
    }
}

#[tokio::test]
async fn imap_import_copies_folders_and_resumes_incrementally() {
    use pillarbox::import::imap::{Source, import};
    use pillarbox_store::{Flags, NewMessage, Target};
    for backend in backends() {
        let ts = pillarbox_tests::TestServer::start(backend).await;
        let src = ts.add_account("src@example.test", "source pw").await;
        let dst = ts.add_account("dst@example.test", "pw").await;
        let store = ts.store().clone();
        let put = |folder: &'static str, subject: String, flags: Flags| {
            let store = store.clone();
            async move {
                let mailbox = match store.mailbox(src.id, folder).await.unwrap() {
                    Some(m) => m,
                    None => store.create_mailbox(src.id, folder, None).await.unwrap(),
                };
                let raw = format!(
                    "From: a@remote.test\r\nSubject: {subject}\r\n\r\nbody of {subject}\r\n"
                );
                store
                    .deliver(
                        &NewMessage {
                            raw: raw.into(),
                            trace_headers: Vec::new(),
                            internal_date: Some(1_600_000_000),
                        },
                        &[Target {
                            account: src.id,
                            mailbox: mailbox.id,
                            flags,
                        }],
                    )
                    .await
                    .unwrap();
            }
        };
        for i in 0..5 {
            put(
                "INBOX",
                format!("inbox {i}"),
                Flags::new().with(SystemFlag::Seen),
            )
            .await;
        }
        put(
            "Sent",
            "sent one".into(),
            Flags::new().with_keyword("$Forwarded"),
        )
        .await;
        put(
            "Projects/2024",
            "project".into(),
            Flags::new().with(SystemFlag::Flagged),
        )
        .await;

        let source = Source::parse(&format!(
            "imaps://src%40example.test@127.0.0.1:{}",
            ts.addr("imaps").port()
        ))
        .unwrap();
        let tls = pillarbox_net::tls::client_config_trusting(&ts.cert_path()).unwrap();
        let summary = import(&store, dst.id, &source, "source pw", tls.clone(), false)
            .await
            .unwrap();
        assert_eq!(summary.copied, 7, "{summary:?}");
        let inbox = contents(&store, dst.id, "INBOX").await;
        assert_eq!(inbox.len(), 5);
        assert!(
            inbox
                .iter()
                .all(|m| m.1.contains(SystemFlag::Seen) && m.2 == 1_600_000_000)
        );
        assert!(inbox[0].0.ends_with("body of inbox 0\r\n"));
        let sent = contents(&store, dst.id, "Sent").await;
        assert!(
            sent.len() == 1 && sent[0].1.has_keyword("$Forwarded"),
            "{sent:?}"
        );
        let projects = contents(&store, dst.id, "Projects/2024").await;
        assert!(projects.len() == 1 && projects[0].1.contains(SystemFlag::Flagged));

        // A second run copies nothing; a new message is the only one copied next.
        let summary = import(&store, dst.id, &source, "source pw", tls.clone(), false)
            .await
            .unwrap();
        assert_eq!((summary.copied, summary.skipped), (0, 0), "{summary:?}");
        put("INBOX", "inbox new".into(), Flags::new()).await;
        let summary = import(&store, dst.id, &source, "source pw", tls.clone(), false)
            .await
            .unwrap();
        assert_eq!(summary.copied, 1, "{summary:?}");
        assert_eq!(contents(&store, dst.id, "INBOX").await.len(), 6);

        // A flag changed on the source is carried over by the next run.
        let src_inbox = store.require_mailbox(src.id, "INBOX").await.unwrap();
        let first = store.messages(src_inbox.id, UidRange::all()).await.unwrap()[0].uid;
        store
            .store_flags(
                src_inbox.id,
                &[first],
                pillarbox_store::FlagOp::Add,
                &Flags::new().with(SystemFlag::Flagged),
                None,
            )
            .await
            .unwrap();
        let summary = import(&store, dst.id, &source, "source pw", tls.clone(), false)
            .await
            .unwrap();
        assert_eq!(
            (summary.copied, summary.flags_updated),
            (0, 1),
            "{summary:?}"
        );
        let inbox = contents(&store, dst.id, "INBOX").await;
        assert!(
            inbox[0].1.contains(SystemFlag::Flagged) && inbox[0].1.contains(SystemFlag::Seen),
            "{:?}",
            inbox[0]
        );

        // Wrong password: a clear error, nothing copied.
        let error = import(&store, dst.id, &source, "wrong", tls, false)
            .await
            .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("login as src@example.test failed"),
            "{error}"
        );
        ts.stop().await;
    }
}
