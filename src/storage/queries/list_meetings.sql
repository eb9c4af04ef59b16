-- Newest first; each filter applies only when its parameter is set. A
-- meeting matches from_date ($4) when its days overlap it: it ends on or
-- after $4, so it began at most $9 days (the longest span) before it,
-- which keeps the date range an index can use. $10 is a second party
-- (an organisation's key); $11 the words of a participant's name, as
-- name_tokens holds them: a meeting with any of them (the GIN index finds
-- those), which the caller then checks name by name.
SELECT m.date, m.id, m.record
FROM meetings m
WHERE ($1::date IS NULL OR (m.date, m.id) < ($1::date, $2::uuid))
  AND ($3::text IS NULL OR m.country_codes @> ARRAY[$3::text])
  AND ($10::text IS NULL OR m.country_codes @> ARRAY[$10::text])
  AND ($11::text[] IS NULL OR m.name_tokens && $11::text[])
  AND ($4::date IS NULL OR (m.date >= $4::date - $9::int4
                            AND coalesce(m.end_date, m.date) >= $4::date))
  AND ($5::date IS NULL OR m.date <= $5::date)
  AND ($6::text IS NULL OR m.topics_lower @> ARRAY[$6::text])
  AND ($7::text IS NULL OR m.search @@ websearch_to_tsquery('simple', $7::text))
ORDER BY m.date DESC, m.id DESC
LIMIT $8;
