-- A pair's anniversaries computed from every meeting of the pair (the
-- reference for the kept figures), ordered by implied year, then by the
-- occasion's bytes.
SELECT m.anniversary_occasion AS occasion,
       (extract(year FROM m.date)::int - m.anniversary_years) AS since_year,
       count(*) AS meetings,
       (array_agg(m.id ORDER BY m.date, m.id))[1] AS meeting_id
FROM meeting_country_pairs p
JOIN meetings m ON m.id = p.meeting_id
WHERE p.country_low = $1 AND p.country_high = $2 AND m.anniversary_years IS NOT NULL
GROUP BY m.anniversary_occasion, since_year
ORDER BY since_year, m.anniversary_occasion COLLATE "C"
LIMIT 1000;
