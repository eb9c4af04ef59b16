-- A meeting of many countries has many pair rows (n choose 2: 1,770 for 60
-- countries). Pair rows of meetings of more than 4 countries keep no copy
-- of the record (a pair scan reads it from meetings), so that one request
-- cannot write thousands of copies of its record.
ALTER TABLE meeting_country_pairs ALTER COLUMN record DROP NOT NULL;

UPDATE meeting_country_pairs p
SET record = NULL
FROM meetings m
WHERE m.id = p.meeting_id AND cardinality(m.country_codes) > 4 AND p.record IS NOT NULL;
