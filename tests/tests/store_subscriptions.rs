//! Subscriptions are a list of names, independent of which mailboxes exist
//! (RFC 3501 §6.3.6–6.3.7, RFC 9051 §6.3.7), on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use pillarbox_store::StoreError;
use pillarbox_tests::backends;
use pillarbox_tests::store_fixture::StoreFixture as Fixture;

#[tokio::test]
async fn subscriptions_are_names_kept_apart_from_mailboxes() {
    for backend in backends() {
        let f = Fixture::new(backend).await;
        let (alice, _) = f.account("alice").await;
        let store = &f.store;
        // A new account's standard folders start subscribed.
        let standard = store.subscriptions(alice).await.unwrap();
        assert!(standard.contains(&"INBOX".to_string()), "{standard:?}");
        assert!(standard.contains(&"Sent".to_string()), "{standard:?}");

        // CREATE subscribes nothing, not even the parents it makes.
        store
            .create_mailbox(alice, "Work/Projects", None)
            .await
            .unwrap();
        assert_eq!(store.subscriptions(alice).await.unwrap(), standard);

        // A name with no mailbox can be subscribed; twice is still once.
        store
            .set_subscribed(alice, "News/Later", true)
            .await
            .unwrap();
        store
            .set_subscribed(alice, "News/Later", true)
            .await
            .unwrap();
        store
            .set_subscribed(alice, "Work/Projects", true)
            .await
            .unwrap();
        let subscribed = store.subscriptions(alice).await.unwrap();
        assert_eq!(
            subscribed.iter().filter(|n| *n == "News/Later").count(),
            1,
            "{subscribed:?}"
        );

        // RENAME takes the subscriptions of the mailbox and its children.
        store.set_subscribed(alice, "Work", true).await.unwrap();
        store.rename_mailbox(alice, "Work", "Job").await.unwrap();
        let subscribed = store.subscriptions(alice).await.unwrap();
        assert!(subscribed.contains(&"Job".to_string()), "{subscribed:?}");
        assert!(
            subscribed.contains(&"Job/Projects".to_string()),
            "{subscribed:?}"
        );
        assert!(
            !subscribed.iter().any(|n| n.starts_with("Work")),
            "{subscribed:?}"
        );

        // DELETE leaves the name subscribed (RFC 3501 §6.3.4).
        store.delete_mailbox(alice, "Job/Projects").await.unwrap();
        assert!(
            store
                .subscriptions(alice)
                .await
                .unwrap()
                .contains(&"Job/Projects".to_string())
        );

        // UNSUBSCRIBE of a name not subscribed, or with no mailbox, succeeds.
        store
            .set_subscribed(alice, "Job/Projects", false)
            .await
            .unwrap();
        store
            .set_subscribed(alice, "Job/Projects", false)
            .await
            .unwrap();
        store
            .set_subscribed(alice, "Never/There", false)
            .await
            .unwrap();
        assert!(
            !store
                .subscriptions(alice)
                .await
                .unwrap()
                .contains(&"Job/Projects".to_string())
        );

        // Names that cannot be mailbox names cannot be subscribed.
        assert!(matches!(
            store.set_subscribed(alice, "a//b", true).await,
            Err(StoreError::InvalidMailboxName { .. })
        ));
        // Another account's list is its own.
        let (bob, _) = f.account("bob").await;
        assert!(
            !store
                .subscriptions(bob)
                .await
                .unwrap()
                .contains(&"News/Later".to_string())
        );
    }
}

#[tokio::test]
async fn subscriptions_are_capped_like_mailboxes() {
    for backend in backends() {
        let f = Fixture::with_options(backend, |mut o| {
            o.max_mailboxes = 20;
            o
        })
        .await;
        let (alice, _) = f.account("alice").await;
        let store = &f.store;
        let mut n = store.subscriptions(alice).await.unwrap().len();
        while n < 20 {
            store
                .set_subscribed(alice, &format!("Name{n}"), true)
                .await
                .unwrap();
            n += 1;
        }
        assert!(matches!(
            store.set_subscribed(alice, "One/Too/Many", true).await,
            Err(StoreError::MailboxLimit { limit: 20, .. })
        ));
        // Subscribing a name already there is not one more.
        store.set_subscribed(alice, "Name19", true).await.unwrap();
        assert_eq!(store.subscriptions(alice).await.unwrap().len(), 20);
    }
}
