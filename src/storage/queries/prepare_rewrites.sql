-- Before locked meetings ($1) are rewritten (update_meetings.sql), deleted
-- (delete_meeting.sql) or absorbed by a merge: keeps the record of each
-- one's CREATED event if that still reads the meeting's own (version 1,
-- event not expired), and deletes their pair rows.
WITH created_records AS (
    INSERT INTO meeting_event_records (event_id, meeting_id, record)
    SELECT m.created_event_id, m.id, m.record
    FROM meetings m JOIN meeting_events e ON e.event_id = m.created_event_id
    WHERE m.id = ANY($1) AND m.version = 1
      AND NOT EXISTS (SELECT FROM meeting_event_records r
                      WHERE r.event_id = m.created_event_id AND r.meeting_id = m.id)
)
DELETE FROM meeting_country_pairs p
USING meetings m
WHERE m.id = ANY($1) AND p.meeting_id = m.id
  AND p.country_low = ANY(m.country_codes) AND p.country_high = ANY(m.country_codes)
  AND p.date = m.date;
