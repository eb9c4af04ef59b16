-- Deletes the numbered events before the first one written at or after
-- $1 (all of them if none is), found by walking the sequence index from
-- the oldest, so only the deleted rows are read; an event numbered after
-- a newer one waits for the next expiry. Also deletes records below the
-- oldest event: a CREATED event's record copied by a rewrite while a
-- concurrent expiry deleted that event.
WITH bound AS (
    SELECT coalesce(
        (SELECT sequence FROM meeting_events
         WHERE sequence IS NOT NULL AND event_time >= $1
         ORDER BY sequence LIMIT 1),
        (SELECT max(sequence) + 1 FROM meeting_events)
    ) AS sequence
), gone AS (
    DELETE FROM meeting_events WHERE sequence < (SELECT sequence FROM bound)
    RETURNING event_id
), records AS (
    DELETE FROM meeting_event_records WHERE event_id IN (SELECT event_id FROM gone)
), orphans AS (
    DELETE FROM meeting_event_records
    WHERE event_id < (SELECT min(event_id) FROM meeting_events)
)
SELECT count(*) FROM gone;
