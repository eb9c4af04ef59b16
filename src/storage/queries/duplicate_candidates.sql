-- Stored meetings that may describe the same meeting as a report: the same
-- parties ($5, the party keys in key order, as stored), found through the
-- pair index of the first two ($1, $2): those that begin from the day
-- before the report's first day ($7) to the day after its last ($4), and
-- those of several days that began from $3 (90 days before $7) and last
-- into that range. The caller checks the names. Oldest first, at most $6.
SELECT m.id, m.record
FROM (
    SELECT p.meeting_id, p.date
    FROM meeting_country_pairs p
    WHERE p.country_low = $1 AND p.country_high = $2
      AND p.date BETWEEN $7 AND $4
    UNION ALL
    SELECT p.meeting_id, p.date
    FROM meeting_country_pairs p
    WHERE p.country_low = $1 AND p.country_high = $2
      AND p.end_date IS NOT NULL
      AND p.date >= $3 AND p.date < $7
      AND p.end_date >= $7
) p
JOIN meetings m ON m.id = p.meeting_id
WHERE m.country_codes = $5::text[]
ORDER BY p.date, p.meeting_id
LIMIT $6;
