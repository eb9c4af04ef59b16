-- Stored meetings that may describe the same meeting as a report: the same
-- parties ($5, the party keys in key order, as stored), found through the
-- pair index of the first two ($1, $2) on the dates ($3 to $4) a meeting
-- overlapping the report's days, one day either way, may begin on, and
-- ending on or after $7 (the day before the report's first). The caller
-- checks the names. Oldest first, at most $6.
SELECT m.id, m.record
FROM meeting_country_pairs p
JOIN meetings m ON m.id = p.meeting_id
WHERE p.country_low = $1 AND p.country_high = $2
  AND p.date BETWEEN $3 AND $4
  AND coalesce(p.end_date, p.date) >= $7
  AND m.country_codes = $5::text[]
ORDER BY p.date, p.meeting_id
LIMIT $6;
