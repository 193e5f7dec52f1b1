-- Rate-limit windows are counters, hit on every API request: written to the WAL and waited
-- for at each commit, every request for one token queued behind the previous one's flush.
-- Unlogged, a commit does not wait; after a crash the windows start empty, which only
-- hands out a fresh hour of requests.
ALTER TABLE rate_windows SET UNLOGGED;
