-- Where each IMAP import left off, per source folder (resumable, incremental).
CREATE TABLE import_state (
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    source TEXT NOT NULL,
    folder TEXT NOT NULL,
    uid_validity BIGINT NOT NULL,
    last_uid BIGINT NOT NULL,
    PRIMARY KEY (account_id, source, folder)
);

-- Which local message each imported source message became, so flag changes
-- on the source are carried over by the next run.
CREATE TABLE import_map (
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    source TEXT NOT NULL,
    folder TEXT NOT NULL,
    remote_uid BIGINT NOT NULL,
    mailbox_id BIGINT NOT NULL,
    local_uid BIGINT NOT NULL,
    PRIMARY KEY (account_id, source, folder, remote_uid)
);
