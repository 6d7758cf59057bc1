-- The header fields of each message for SEARCH HEADER/FROM/SUBJECT/…: one
-- "name:value" line per field (name lowercase, value unfolded), and a second
-- line with the decoded value when it has RFC 2047 encoded words. Made at
-- delivery; NULL for messages stored before this column existed.
ALTER TABLE messages ADD COLUMN search_fields TEXT;
