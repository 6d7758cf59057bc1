-- Pillarbox schema (SQLite). Keep in step with migrations/postgres/0001_init.sql.

CREATE TABLE domains (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    catch_all_account INTEGER REFERENCES accounts(id) ON DELETE SET NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE accounts (
    id INTEGER PRIMARY KEY,
    domain_id INTEGER NOT NULL REFERENCES domains(id),
    address TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    imap_enabled BOOLEAN NOT NULL DEFAULT TRUE,
    pop3_enabled BOOLEAN NOT NULL DEFAULT TRUE,
    submission_enabled BOOLEAN NOT NULL DEFAULT TRUE,
    pop3_after_download TEXT NOT NULL DEFAULT 'keep',
    pop3_honour_deletes BOOLEAN NOT NULL DEFAULT TRUE,
    pop3_list TEXT NOT NULL DEFAULT 'all',
    quota_bytes INTEGER,
    used_bytes INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);

CREATE TABLE aliases (
    id INTEGER PRIMARY KEY,
    address TEXT NOT NULL,
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    UNIQUE (address, account_id)
);
CREATE INDEX aliases_by_account ON aliases(account_id);

CREATE TABLE mailboxes (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    special_use TEXT,
    subscribed BOOLEAN NOT NULL DEFAULT TRUE,
    uid_validity INTEGER NOT NULL,
    uid_next INTEGER NOT NULL DEFAULT 1,
    highest_modseq INTEGER NOT NULL DEFAULT 1,
    UNIQUE (account_id, name)
);

-- Message bytes, once per content. `data` is used by the database blob store;
-- with the file-system blob store it is NULL and the bytes live under blobs/.
CREATE TABLE blobs (
    hash TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    data BLOB
);

-- One stored message: a blob plus the trace headers of one delivery, and what
-- was parsed from it once at delivery.
CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    blob_hash TEXT NOT NULL REFERENCES blobs(hash),
    trace_headers BLOB NOT NULL,
    size INTEGER NOT NULL,
    internal_date INTEGER NOT NULL,
    meta TEXT NOT NULL,
    header_text TEXT NOT NULL,
    body_text TEXT NOT NULL
);
CREATE INDEX messages_by_blob ON messages(blob_hash);

CREATE TABLE mailbox_messages (
    mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    uid INTEGER NOT NULL,
    message_id INTEGER NOT NULL REFERENCES messages(id),
    modseq INTEGER NOT NULL,
    flags INTEGER NOT NULL DEFAULT 0,
    keywords TEXT NOT NULL DEFAULT '',
    downloaded BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (mailbox_id, uid)
);
CREATE INDEX mailbox_messages_by_modseq ON mailbox_messages(mailbox_id, modseq);
CREATE INDEX mailbox_messages_by_message ON mailbox_messages(message_id);

CREATE TABLE expunged (
    mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    uid INTEGER NOT NULL,
    modseq INTEGER NOT NULL,
    PRIMARY KEY (mailbox_id, uid)
);
CREATE INDEX expunged_by_modseq ON expunged(mailbox_id, modseq);

-- Counters that must only grow, even when the rows that used them are gone
-- (e.g. the last UIDVALIDITY handed out, so a mailbox deleted and made again
-- never reuses a (UIDVALIDITY, UID) pair).
CREATE TABLE counters (
    name TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
