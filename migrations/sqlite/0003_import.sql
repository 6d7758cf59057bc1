-- Where each IMAP import left off, per source folder (resumable, incremental).
CREATE TABLE import_state (
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    source TEXT NOT NULL,
    folder TEXT NOT NULL,
    uid_validity INTEGER NOT NULL,
    last_uid INTEGER NOT NULL,
    PRIMARY KEY (account_id, source, folder)
);
