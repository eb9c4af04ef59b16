-- Every event row of a committed transaction that has no number yet (the
-- pending partition), in the order they were written, with how many
-- events (meetings) each holds. Rows of transactions still in flight are
-- invisible here and get later numbers in a later step.
SELECT event_id, event_count::int8 FROM meeting_events
WHERE numbered_at = 'infinity' ORDER BY event_id;
