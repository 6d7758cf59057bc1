-- Subscriptions are a list of names, independent of which mailboxes exist
-- (RFC 3501 §6.3.6-6.3.7, RFC 9051 §6.3.7): CREATE does not subscribe,
-- DELETE does not unsubscribe, and a name may stay subscribed with no
-- mailbox (LIST shows it \NonExistent \Subscribed).
CREATE TABLE subscriptions (
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    PRIMARY KEY (account_id, name)
);
INSERT INTO subscriptions (account_id, name)
    SELECT account_id, name FROM mailboxes WHERE subscribed;
ALTER TABLE mailboxes DROP COLUMN subscribed;
