-- The header fields of each message for SEARCH HEADER/FROM/SUBJECT/…: one
-- "name:value" line per field (name lowercase, value unfolded), and a second
-- line with the decoded value when it has RFC 2047 encoded words. Made at
-- delivery; messages stored before this table existed have no row. A table
-- of its own: a search scans these few hundred bytes per message, not the
-- message rows with their body text.
CREATE TABLE message_fields (
    message_id INTEGER PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
    fields TEXT NOT NULL
);
