-- IMAP METADATA (RFC 5464): annotations on a mailbox, or on the server as
-- an account sees it (mailbox_id 0). Rows of a mailbox go with it when it
-- is deleted (in the same transaction as its messages) and stay with it
-- across RENAME; an account's rows go with the account.
CREATE TABLE metadata (
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    mailbox_id BIGINT NOT NULL,
    entry TEXT NOT NULL,
    value BYTEA NOT NULL,
    PRIMARY KEY (account_id, mailbox_id, entry)
);
