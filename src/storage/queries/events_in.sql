-- The events of the rows $1 numbered in ($2, $3] (of the pair $4, if set:
-- meetings in the pair after the change, or before it for an update), in
-- order: each row's meetings, numbered from the row's first number.
SELECT u.sequence, e.kind, u.meeting_id, string_to_array(u.codes, ',') AS country_codes,
       coalesce(r.record, m.record) AS record, e.event_time, e.merged_into
FROM meeting_events e
CROSS JOIN LATERAL (
    SELECT e.sequence - e.event_count + i.position AS sequence, i.meeting_id, i.codes,
           i.previous
    FROM UNNEST(e.meeting_ids, e.meeting_codes, e.previous_codes)
         WITH ORDINALITY AS i (meeting_id, codes, previous, position)
) u
LEFT JOIN meeting_event_records r ON r.event_id = e.event_id AND r.meeting_id = u.meeting_id
-- A CREATED event without a stored record: the meeting is still at that
-- version (its first rewrite stores the record in the same transaction).
LEFT JOIN meetings m ON r.event_id IS NULL AND m.created_event_id = e.event_id
                    AND m.id = u.meeting_id
WHERE e.event_id = ANY($1) AND u.sequence > $2 AND u.sequence <= $3
  AND ($4::text[] IS NULL OR string_to_array(u.codes, ',') @> $4::text[]
       OR string_to_array(u.previous, ',') @> $4::text[])
ORDER BY u.sequence;
