-- One change-feed row per write statement instead of one per meeting. A
-- bulk import stores 500 meetings a statement; each of them wrote its own
-- event row (a heap tuple and two index entries) and had it rewritten when
-- the sequencer numbered it (a non-HOT update: two more index entries and a
-- dead tuple for vacuum), ~12% of the database's CPU a record. A row now
-- lists the meetings its statement changed, in order, and the sequencer
-- numbers it with a range of consecutive numbers, one per meeting; watchers
-- still receive one event, with its own number, per meeting.
-- - meeting_ids: the meetings, in the order of their events.
-- - meeting_codes: each meeting's country codes, comma-separated (arrays of
--   arrays must be rectangular), for the pair filter and deletions.
-- - event_count: how many meetings (events) the row holds. The arrays of a
--   large batch are stored out of line (TOAST); readers plan their pages
--   from the counts without reading them.
-- - sequence: the number of the row's last event (a row of n meetings has
--   numbers sequence - n + 1 to sequence). Existing rows hold one meeting,
--   so their number keeps its meaning.
ALTER TABLE meeting_events ADD COLUMN meeting_ids uuid[],
                           ADD COLUMN meeting_codes text[],
                           ADD COLUMN event_count integer;
UPDATE meeting_events
SET meeting_ids = ARRAY[meeting_id],
    meeting_codes = ARRAY[array_to_string(country_codes, ',')],
    event_count = 1;
ALTER TABLE meeting_events ALTER COLUMN meeting_ids SET NOT NULL,
                           ALTER COLUMN meeting_codes SET NOT NULL,
                           ALTER COLUMN event_count SET NOT NULL,
                           DROP COLUMN meeting_id,
                           DROP COLUMN country_codes;

-- A stored event record now names its meeting too: the CREATED event of a
-- batch holds many meetings, and the first rewrite of each copies that
-- meeting's first version under (event, meeting). Records whose event has
-- expired were never read again (expiry deletes them); they go now.
ALTER TABLE meeting_event_records ADD COLUMN meeting_id uuid;
DELETE FROM meeting_event_records r
WHERE NOT EXISTS (SELECT 1 FROM meeting_events e WHERE e.event_id = r.event_id);
UPDATE meeting_event_records r SET meeting_id = e.meeting_ids[1]
FROM meeting_events e WHERE e.event_id = r.event_id;
ALTER TABLE meeting_event_records ALTER COLUMN meeting_id SET NOT NULL,
                                  DROP CONSTRAINT meeting_event_records_pkey,
                                  ADD PRIMARY KEY (event_id, meeting_id);
