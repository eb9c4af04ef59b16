SELECT p.date, p.meeting_id AS id, coalesce(p.record, m.record) AS record
FROM meeting_country_pairs p
-- Pair rows of meetings with many countries keep no record of their own.
LEFT JOIN meetings m ON p.record IS NULL AND m.id = p.meeting_id
WHERE p.country_low = $1 AND p.country_high = $2
  AND (p.date, p.meeting_id) > ($3, $4) AND p.date <= $5
ORDER BY p.date, p.meeting_id
LIMIT $6;
