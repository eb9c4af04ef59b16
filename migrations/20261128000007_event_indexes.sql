-- Fewer index entries per change-feed event. Each event was inserted into
-- four indexes and, when numbered (an update that changes an indexed
-- column, so every index gets a new entry), into three again.
-- - sequence is unique only once set: unnumbered events no longer add a
--   NULL entry. Readers ask for `sequence > n` and min(sequence), which
--   imply NOT NULL, so the partial index serves them.
-- - event_time served only expiry, which now walks the sequence index from
--   the oldest event to the first one still within the retention
--   (storage.rs: EXPIRE_EVENTS), reading just the rows it deletes.
CREATE UNIQUE INDEX meeting_events_sequence_idx ON meeting_events (sequence)
    WHERE sequence IS NOT NULL;
ALTER TABLE meeting_events DROP CONSTRAINT meeting_events_sequence_key;
DROP INDEX meeting_events_time_idx;
