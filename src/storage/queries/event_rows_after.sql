-- The next $2 numbered event rows after the number $1, by their counts
-- only (a large row's meeting lists are stored out of line).
SELECT event_id, sequence, event_count FROM meeting_events
WHERE sequence > $1 ORDER BY sequence LIMIT $2;
