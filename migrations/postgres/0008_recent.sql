-- \Recent (RFC 3501 §2.3.2): a message is recent in exactly one session, the
-- first SELECT to learn of it. recent_uid is the first UID no session has
-- claimed yet; a SELECT claims [recent_uid, uid_next) by moving it to uid_next.
-- Existing mailboxes start with nothing recent.
ALTER TABLE mailboxes ADD COLUMN recent_uid BIGINT NOT NULL DEFAULT 1;
UPDATE mailboxes SET recent_uid = uid_next;
