-- The pair stream reads each meeting's record from the pair row itself: the
-- stream is then one index range scan over meeting_country_pairs with no
-- per-row lookup in meetings (whose rows are wide: search document, arrays).
-- The record is written with the pair rows, in the same statement as the
-- meeting, and rewritten with them on every update.
ALTER TABLE meeting_country_pairs ADD COLUMN record bytea;
UPDATE meeting_country_pairs p SET record = m.record FROM meetings m WHERE m.id = p.meeting_id;
ALTER TABLE meeting_country_pairs ALTER COLUMN record SET NOT NULL;
