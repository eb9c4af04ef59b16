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
-- and every number given so far when no numbered event is kept (a feed
-- idle for longer than the retention). Either way a client at a position
-- whose events are gone is told so rather than skipping them silently.
INSERT INTO meeting_event_expiry (expired_through)
SELECT coalesce(
    (SELECT sequence - event_count FROM meeting_events
     WHERE sequence IS NOT NULL ORDER BY sequence LIMIT 1),
    (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM meeting_event_sequence));
