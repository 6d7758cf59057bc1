//! A store and a directory on one backend, with accounts made through the
//! directory as the server makes them: the fixture of the store tests.

use crate::{Backend, TestDb};
use pillarbox_directory::Directory;
use pillarbox_store::{
    AccountId, Flags, Mailbox, NewMessage, SpecialUse, Store, StoreOptions, Target,
};

/// A message from a remote sender with a body of `body_len` bytes; the
/// subject makes its bytes (and so its blob) unique.
pub fn message(subject: &str, body_len: usize) -> NewMessage {
    let raw = format!(
        "From: Sender <sender@remote.test>\r\nTo: alice@example.test\r\nSubject: {subject}\r\nMessage-ID: <{subject}@remote.test>\r\n\r\n{}\r\n",
        "x".repeat(body_len)
    );
    NewMessage {
        raw: bytes::Bytes::from(raw),
        trace_headers: b"Return-Path: <sender@remote.test>\r\n".to_vec(),
        internal_date: None,
    }
}

/// Delivery to a mailbox of an account, no flags.
pub fn to(account: AccountId, mailbox: &Mailbox) -> Target {
    Target {
        account,
        mailbox: mailbox.id,
        flags: Flags::new(),
    }
}

pub struct StoreFixture {
    pub db: TestDb,
    pub store: Store,
    pub directory: Directory,
    /// What the store was opened with.
    pub options: StoreOptions,
}

impl StoreFixture {
    /// A fresh database with the domain `example.test`, the store opened
    /// as the server opens it.
    pub async fn new(backend: Backend) -> StoreFixture {
        StoreFixture::with_options(backend, |options| options).await
    }

    /// As [`StoreFixture::new`], with the store options changed first.
    pub async fn with_options(
        backend: Backend,
        tweak: impl FnOnce(StoreOptions) -> StoreOptions,
    ) -> StoreFixture {
        let db = TestDb::new(backend).await;
        let options = tweak(db.store_options());
        StoreFixture::open(db, options).await
    }

    /// Message bytes over `INLINE_MAX` in files under [`StoreFixture::blob_dir`],
    /// on either backend.
    pub async fn with_file_blobs(backend: Backend) -> StoreFixture {
        let db = TestDb::new(backend).await;
        let options = db.store_options().blob_dir(db.dir.path().join("blobs"));
        StoreFixture::open(db, options).await
    }

    async fn open(db: TestDb, options: StoreOptions) -> StoreFixture {
        let store = Store::open(options.clone()).await.expect("store opens");
        let directory = Directory::new(store.clone());
        directory
            .add_domain("example.test")
            .await
            .expect("domain added");
        StoreFixture {
            db,
            store,
            directory,
            options,
        }
    }

    /// Where file blobs go (with [`StoreFixture::with_file_blobs`]).
    pub fn blob_dir(&self) -> std::path::PathBuf {
        self.db.dir.path().join("blobs")
    }

    /// Another store handle on the same database (on PostgreSQL, another
    /// node), opened with the fixture's options changed by `tweak`.
    pub async fn other_handle(&self, tweak: impl FnOnce(StoreOptions) -> StoreOptions) -> Store {
        Store::open(tweak(self.options.clone()))
            .await
            .expect("store opens")
    }

    /// A new account `name@example.test` and its INBOX.
    pub async fn account(&self, name: &str) -> (AccountId, Mailbox) {
        let account = self
            .directory
            .add_account(&format!("{name}@example.test"), "pw")
            .await
            .expect("account added");
        let inbox = self
            .store
            .require_mailbox(account.id, "INBOX")
            .await
            .expect("every account has an INBOX");
        (account.id, inbox)
    }

    /// The account's Archive folder (made with the account).
    pub async fn archive(&self, account: AccountId) -> Mailbox {
        self.store
            .special_mailbox(account, SpecialUse::Archive)
            .await
            .expect("store answers")
            .expect("every account has an Archive")
    }

    pub async fn done(self) {
        self.store.close().await;
        self.db.cleanup().await;
    }
}
