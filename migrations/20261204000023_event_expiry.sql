-- What retention has dropped, recorded where it is dropped.
--
-- Sequence numbers can be missing: the sequencer reserves its numbers from
-- a PostgreSQL sequence, which a failed numbering step does not give back.
-- The oldest kept event therefore does not tell whether the numbers before
-- it expired or were never used, and a watcher from the start of the feed
-- could be told its events expired when none had. `expired_through` is the
-- newest number of any dropped event: raised in the transaction that drops
-- an events partition (storage/partitions.rs), so a watcher that reads it
-- after its page sees every drop that could have emptied that page.
CREATE TABLE meeting_event_expiry (
    -- One row.
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    expired_through bigint NOT NULL CHECK (expired_through >= 0)
);

-- Retention deleted rows before migration 0021 and dropped partitions
-- since: the numbers before the oldest kept event are taken as expired,
-- as they were before this table.
INSERT INTO meeting_event_expiry (expired_through)
SELECT coalesce(min(sequence - event_count), 0) FROM meeting_events
WHERE sequence IS NOT NULL;
