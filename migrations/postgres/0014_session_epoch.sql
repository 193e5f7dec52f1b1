-- Sessions end with a password change (security). `session_epoch`: bumped by every password
-- change; a session cookie carries the epoch it was issued in and is honoured only while the
-- user's epoch is still that one. Kept in step on both backends.
ALTER TABLE users ADD COLUMN session_epoch BIGINT NOT NULL DEFAULT 0;
