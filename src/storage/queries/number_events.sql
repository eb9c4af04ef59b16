-- Numbers the event rows $1 (in that order) with the next $3 numbers of
-- the sequence, reserved in one step (only the lock holder numbers): each
-- row gets the number of its last event, which is $2 (the running count of
-- events up to and including the row) into the reserved range.
WITH reserved AS (
    SELECT setval('meeting_event_sequence', nextval('meeting_event_sequence') + $3 - 1) AS last
), numbered AS (
    SELECT p.event_id, reserved.last - $3 + p.through AS sequence
    FROM UNNEST($1::int8[], $2::int8[]) AS p (event_id, through), reserved
)
UPDATE meeting_events e
SET sequence = numbered.sequence
FROM numbered
WHERE e.event_id = numbered.event_id;
