-- Before a locked meeting is rewritten or deleted: keeps the record of its
-- CREATED event if that still reads the meeting's own (version 1, event
-- not expired), and deletes its pair rows.
WITH created_record AS (
    INSERT INTO meeting_event_records (event_id, meeting_id, record)
    SELECT m.created_event_id, m.id, m.record
    FROM meetings m JOIN meeting_events e ON e.event_id = m.created_event_id
    WHERE m.id = $1 AND m.version = 1
    ON CONFLICT (event_id, meeting_id) DO NOTHING
)
-- Its pair rows, by primary key (every pair of its countries on its date;
-- see domain::NewMeeting::country_pairs): each condition is on a key column
-- and a value known before the scan, so this is a few index probes.
DELETE FROM meeting_country_pairs
WHERE country_low = ANY((SELECT country_codes FROM meetings WHERE id = $1)::text[])
  AND country_high = ANY((SELECT country_codes FROM meetings WHERE id = $1)::text[])
  AND date = (SELECT date FROM meetings WHERE id = $1)
  AND meeting_id = $1;
