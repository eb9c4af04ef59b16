-- A pair's top topics computed from every meeting of the pair, as the
-- service computed them before it kept figures: the reference the kept
-- figures are tested against. Ties go by the key's bytes, as the service
-- orders them.
SELECT (array_agg(t.topic ORDER BY m.create_time, m.id))[1] AS topic,
       count(DISTINCT m.id) AS meetings
FROM meeting_country_pairs p
JOIN meetings m ON m.id = p.meeting_id
CROSS JOIN LATERAL unnest(m.topics, m.topics_lower) AS t (topic, lower)
WHERE p.country_low = $1 AND p.country_high = $2
GROUP BY t.lower
ORDER BY meetings DESC, t.lower COLLATE "C"
LIMIT $3;
