-- Exclusive per-account locks (POP3's maildrop lock) with a lease: the
-- holder renews expires_at while it holds the lock and deletes the row when
-- done; a lease a crashed node left behind can be taken over once expired.
CREATE TABLE account_locks (
    purpose TEXT NOT NULL,
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    -- "<node>/<lock>": the node renews all its leases in one statement.
    holder TEXT NOT NULL,
    -- Unix milliseconds.
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (purpose, account_id)
);
