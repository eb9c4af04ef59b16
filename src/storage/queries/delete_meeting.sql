WITH gone AS (
    DELETE FROM meetings WHERE id = $1 RETURNING id, country_codes
)
INSERT INTO meeting_events (kind, meeting_ids, meeting_codes, event_count)
SELECT $2::int2, ARRAY[gone.id], ARRAY[array_to_string(gone.country_codes, ',')], 1 FROM gone;
