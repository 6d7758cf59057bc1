-- The blob lifecycle. The transaction that removes the last mailbox row of
-- a message deletes the message row and, when no other message uses its
-- blob, records the blob's hash here. A background sweep removes the blobs
-- tombstoned longer ago than a grace period, re-checking under a lock that
-- no message uses them (a delivery of the same bytes deletes the tombstone).
CREATE TABLE blob_tombstones (
    hash TEXT PRIMARY KEY,
    -- Unix seconds when the blob lost its last message.
    since INTEGER NOT NULL
);
CREATE INDEX blob_tombstones_by_since ON blob_tombstones(since);

-- What the whole-table sweep of earlier versions had not removed yet (it ran
-- after each commit, so a crash in between left some): messages no mailbox
-- holds go now, and blobs no message uses get a tombstone.
DELETE FROM messages WHERE NOT EXISTS
    (SELECT 1 FROM mailbox_messages mm WHERE mm.message_id = messages.id);
INSERT INTO blob_tombstones (hash, since)
    SELECT b.hash, 0 FROM blobs b WHERE NOT EXISTS
        (SELECT 1 FROM messages m WHERE m.blob_hash = b.hash);
