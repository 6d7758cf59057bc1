//! The account service, on SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use pillarbox_directory::*;
use pillarbox_store::SpecialUse;
use pillarbox_tests::{TestDb, backends};

async fn directory(db: &TestDb) -> Directory {
    let directory = Directory::new(db.store().await);
    directory.add_domain("example.test").await.unwrap();
    directory
}

#[tokio::test]
async fn logins_check_password_user_and_protocol_switch() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let d = directory(&db).await;
        let alice = d
            .add_account("Alice@Example.test", "right password")
            .await
            .unwrap();
        assert_eq!(alice.address, "alice@example.test");

        let ok = d
            .authenticate("ALICE@example.test", "right password", Protocol::Imap)
            .await
            .unwrap();
        assert_eq!(ok.id, alice.id, "{backend:?}: logins are case-insensitive");
        assert!(matches!(
            d.authenticate("alice@example.test", "wrong", Protocol::Imap)
                .await,
            Err(AuthError::InvalidCredentials)
        ));
        assert!(matches!(
            d.authenticate("nobody@example.test", "right password", Protocol::Imap)
                .await,
            Err(AuthError::InvalidCredentials)
        ));
        assert!(matches!(
            d.authenticate("not an address", "x", Protocol::Pop3).await,
            Err(AuthError::InvalidCredentials)
        ));

        d.update_account(
            "alice@example.test",
            &AccountUpdate {
                pop3: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert!(matches!(
            d.authenticate("alice@example.test", "right password", Protocol::Pop3)
                .await,
            Err(AuthError::ProtocolDisabled(Protocol::Pop3))
        ));
        // A wrong password still says only "invalid", even with POP3 off.
        assert!(matches!(
            d.authenticate("alice@example.test", "wrong", Protocol::Pop3)
                .await,
            Err(AuthError::InvalidCredentials)
        ));
        assert!(
            d.authenticate("alice@example.test", "right password", Protocol::Submission)
                .await
                .is_ok()
        );

        d.set_password("alice@example.test", "new password")
            .await
            .unwrap();
        assert!(
            d.authenticate("alice@example.test", "right password", Protocol::Imap)
                .await
                .is_err()
        );
        assert!(
            d.authenticate("alice@example.test", "new password", Protocol::Imap)
                .await
                .is_ok()
        );
        d.store().close().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn recipients_resolve_through_accounts_aliases_and_catch_all() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let d = directory(&db).await;
        let alice = d.add_account("alice@example.test", "pw").await.unwrap();
        let bob = d.add_account("bob@example.test", "pw").await.unwrap();
        d.add_alias("team@example.test", "alice@example.test")
            .await
            .unwrap();
        d.add_alias("team@example.test", "bob@example.test")
            .await
            .unwrap();

        let ids = |r: Recipient| match r {
            Recipient::Local(accounts) => accounts.into_iter().map(|a| a.id).collect::<Vec<_>>(),
            other => panic!("{backend:?}: expected local, got {other:?}"),
        };
        assert_eq!(
            ids(d.resolve_recipient("Alice@example.test").await.unwrap()),
            vec![alice.id]
        );
        assert_eq!(
            ids(d
                .resolve_recipient("alice+lists@example.test")
                .await
                .unwrap()),
            vec![alice.id]
        );
        assert_eq!(
            ids(d.resolve_recipient("team@example.test").await.unwrap()),
            vec![alice.id, bob.id]
        );
        assert_eq!(
            d.resolve_recipient("carol@example.test").await.unwrap(),
            Recipient::UnknownLocal
        );
        assert_eq!(
            d.resolve_recipient("carol@elsewhere.test").await.unwrap(),
            Recipient::NotLocal
        );

        d.set_catch_all("example.test", Some("bob@example.test"))
            .await
            .unwrap();
        assert_eq!(
            ids(d.resolve_recipient("carol@example.test").await.unwrap()),
            vec![bob.id]
        );
        d.set_catch_all("example.test", None).await.unwrap();
        assert_eq!(
            d.resolve_recipient("carol@example.test").await.unwrap(),
            Recipient::UnknownLocal
        );

        let mut addresses = d.addresses_of(alice.id).await.unwrap();
        addresses.sort();
        assert_eq!(addresses, ["alice@example.test", "team@example.test"]);
        d.remove_alias("team@example.test", Some("bob@example.test"))
            .await
            .unwrap();
        assert_eq!(
            ids(d.resolve_recipient("team@example.test").await.unwrap()),
            vec![alice.id]
        );
        d.store().close().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn bad_admin_input_is_refused_and_changes_nothing() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let d = directory(&db).await;
        d.add_account("alice@example.test", "pw").await.unwrap();
        assert!(matches!(
            d.add_account("alice@example.test", "pw").await,
            Err(DirectoryError::AccountExists(_))
        ));
        assert!(matches!(
            d.add_account("ALICE@example.test", "pw").await,
            Err(DirectoryError::AccountExists(_))
        ));
        assert!(matches!(
            d.add_account("x@unknown.test", "pw").await,
            Err(DirectoryError::UnknownDomain(_))
        ));
        assert!(matches!(
            d.add_account("no-at-sign", "pw").await,
            Err(DirectoryError::InvalidAddress(_))
        ));
        assert!(matches!(
            d.add_account("bob@example.test", "").await,
            Err(DirectoryError::EmptyPassword)
        ));
        assert!(matches!(
            d.add_domain("example.test").await,
            Err(DirectoryError::DomainExists(_))
        ));
        assert!(matches!(
            d.add_domain("bad domain").await,
            Err(DirectoryError::InvalidDomain(_))
        ));
        d.add_alias("info@example.test", "alice@example.test")
            .await
            .unwrap();
        assert!(matches!(
            d.add_alias("info@example.test", "alice@example.test").await,
            Err(DirectoryError::AliasExists(..))
        ));
        assert!(matches!(
            d.add_alias("alice@example.test", "alice@example.test")
                .await,
            Err(DirectoryError::AliasShadowsAccount(_))
        ));
        assert!(matches!(
            d.remove_domain("example.test").await,
            Err(DirectoryError::DomainNotEmpty(_))
        ));
        let accounts = d.list_accounts().await.unwrap();
        assert_eq!(accounts.len(), 1, "{backend:?}: nothing half-written");
        assert_eq!(d.list_aliases().await.unwrap().len(), 1);
        d.store().close().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn new_accounts_get_the_special_use_mailboxes_and_removal_takes_everything() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let d = directory(&db).await;
        let alice = d.add_account("alice@example.test", "pw").await.unwrap();
        let store = d.store();
        for (special, name) in [
            (SpecialUse::Drafts, "Drafts"),
            (SpecialUse::Sent, "Sent"),
            (SpecialUse::Trash, "Trash"),
            (SpecialUse::Junk, "Junk"),
            (SpecialUse::Archive, "Archive"),
        ] {
            let mailbox = store.special_mailbox(alice.id, special).await.unwrap();
            assert_eq!(
                mailbox.map(|m| m.name).as_deref(),
                Some(name),
                "{backend:?}"
            );
        }
        assert!(store.mailbox(alice.id, "INBOX").await.unwrap().is_some());
        let policy = alice.pop3_policy;
        assert_eq!(policy.after_download, AfterDownload::Keep);
        assert!(policy.honour_deletes);
        assert_eq!(policy.list, Pop3List::All);

        let updated = d
            .update_account(
                "alice@example.test",
                &AccountUpdate {
                    after_download: Some(AfterDownload::MarkSeen),
                    honour_deletes: Some(false),
                    pop3_list: Some(Pop3List::Recent),
                    quota: Some(Some(2 << 30)),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(updated.pop3_policy.after_download, AfterDownload::MarkSeen);
        assert!(!updated.pop3_policy.honour_deletes);
        assert_eq!(updated.pop3_policy.list, Pop3List::Recent);
        assert_eq!(updated.quota_bytes, Some(2 << 30));
        assert_eq!(store.quota_limit(alice.id).await.unwrap(), Some(2 << 30));

        d.remove_account("alice@example.test").await.unwrap();
        assert!(
            d.account_by_address("alice@example.test")
                .await
                .unwrap()
                .is_none()
        );
        assert!(store.list_mailboxes(alice.id).await.unwrap().is_empty());
        d.remove_domain("example.test").await.unwrap();
        assert!(d.list_domains().await.unwrap().is_empty());
        d.store().close().await;
        db.cleanup().await;
    }
}
