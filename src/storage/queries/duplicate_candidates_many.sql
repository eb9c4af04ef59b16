-- duplicate_candidates.sql for many reports at once, each row of the
-- arrays one report ($1 low and $2 high party keys, $3 to $4 the dates a
-- candidate may begin on, $5 all its party keys joined by commas, $7 the
-- day before its first day): the report's 1-based position and what
-- matching reads of the meeting (`Candidate`: its record only where its
-- match keys are not computed yet). At most $6 a report. Nothing is
-- locked: the caller locks the meetings its reports match.
SELECT r.i AS report, c.*
FROM UNNEST($1::text[], $2::text[], $3::date[], $4::date[], $5::text[], $7::date[])
     WITH ORDINALITY AS r (low, high, date_from, date_to, keys, ends_from, i)
CROSS JOIN LATERAL (
    SELECT m.id, m.version, m.date, m.end_date, m.country_codes, m.match_keys,
           CASE WHEN m.match_keys IS NULL THEN m.record END AS record
    FROM (
        -- Meetings that begin within a day of the report's days.
        SELECT p.meeting_id, p.date
        FROM meeting_country_pairs p
        WHERE p.country_low = r.low AND p.country_high = r.high
          AND p.date BETWEEN r.ends_from AND r.date_to
        UNION ALL
        -- Meetings of several days that began earlier and last into them
        -- (meeting_country_pairs_spans_idx).
        SELECT p.meeting_id, p.date
        FROM meeting_country_pairs p
        WHERE p.country_low = r.low AND p.country_high = r.high
          AND p.end_date IS NOT NULL
          AND p.date >= r.date_from AND p.date < r.ends_from
          AND p.end_date >= r.ends_from
    ) p
    JOIN meetings m ON m.id = p.meeting_id
    WHERE m.country_codes = string_to_array(r.keys, ',')
    ORDER BY p.date, p.meeting_id
    LIMIT $6
) c
ORDER BY r.i;
