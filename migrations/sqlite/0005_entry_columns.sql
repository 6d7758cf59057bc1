-- What a mailbox listing needs of each message (SELECT, FETCH FLAGS, UID
-- SEARCH ALL, QRESYNC…) kept in the mailbox row itself: the size and the
-- internal date, copied from messages (both never change once a message is
-- stored). Listing 10,000 messages then reads the compact mailbox rows, not
-- 10,000 message rows with their header and body text.
ALTER TABLE mailbox_messages ADD COLUMN size INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mailbox_messages ADD COLUMN internal_date INTEGER NOT NULL DEFAULT 0;
UPDATE mailbox_messages SET
    size = (SELECT m.size FROM messages m WHERE m.id = mailbox_messages.message_id),
    internal_date = (SELECT m.internal_date FROM messages m WHERE m.id = mailbox_messages.message_id);
