-- One page of a pair, read from the pair index alone. The record is NULL
-- for meetings of many countries, whose pair rows keep no copy of it (the
-- caller reads those from meetings). $7, when set, keeps only meetings
-- that end on or after it (the start cursor is then at most 90 days
-- earlier: see migration 0016).
SELECT p.date, p.meeting_id AS id, p.record
FROM meeting_country_pairs p
WHERE p.country_low = $1 AND p.country_high = $2
  AND (p.date, p.meeting_id) > ($3, $4) AND p.date <= $5
  AND ($7::date IS NULL OR coalesce(p.end_date, p.date) >= $7)
ORDER BY p.date, p.meeting_id
LIMIT $6;
