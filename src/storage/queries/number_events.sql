-- Numbers the pending event rows $1 (in that order) with the next $3
-- numbers of the sequence, reserved in one step (only the lock holder
-- numbers): each row gets the number of its last event, which is $2 (the
-- running count of events up to and including the row) into the reserved
-- range. Numbering moves each row out of the pending partition into the
-- partition of its numbering time (migration 0021): the step's start, or
-- the previous step's time if the clock went back, so that numbers and
-- numbering times rise together.
WITH reserved AS (
    SELECT setval('meeting_event_sequence', nextval('meeting_event_sequence') + $3 - 1) AS last
), stamp AS (
    SELECT greatest(now(), (SELECT numbered_at FROM meeting_events
                            WHERE sequence IS NOT NULL
                            ORDER BY sequence DESC LIMIT 1)) AS at
), numbered AS (
    SELECT p.event_id, reserved.last - $3 + p.through AS sequence
    FROM UNNEST($1::int8[], $2::int8[]) AS p (event_id, through), reserved
)
UPDATE meeting_events e
SET sequence = numbered.sequence, numbered_at = stamp.at
FROM numbered, stamp
WHERE e.numbered_at = 'infinity' AND e.event_id = numbered.event_id;
