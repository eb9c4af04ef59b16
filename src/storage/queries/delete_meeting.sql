-- Deletes a locked meeting ($1) with its event: DELETED, or MERGED ($2)
-- naming the meeting it went into ($3). Ids merged into it stop resolving
-- (a merge repoints them before it deletes).
WITH gone AS (
    DELETE FROM meetings WHERE id = $1 RETURNING id, country_codes
), redirects AS (
    DELETE FROM meeting_redirects WHERE meeting_id = $1
)
INSERT INTO meeting_events (kind, meeting_ids, meeting_codes, event_count, merged_into)
SELECT $2::int2, ARRAY[gone.id], ARRAY[array_to_string(gone.country_codes, ',')], 1, $3::uuid
FROM gone;
