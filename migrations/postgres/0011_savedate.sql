-- SAVEDATE (RFC 8514): when a message was saved into this mailbox (delivered,
-- appended, copied or moved there), in Unix seconds. Messages already
-- stored get their internal date, the best that is known of them.
ALTER TABLE mailbox_messages ADD COLUMN saved_at BIGINT;
UPDATE mailbox_messages SET saved_at = internal_date;
