-- A CREATED event no longer stores a copy of the record: until the meeting
-- is first rewritten, the record of its CREATED event is the meeting's own
-- (version 1). The first update or delete copies it into
-- meeting_event_records before changing the row (storage.rs:
-- PREPARE_REWRITE), and the change feed reads coalesce(event record,
-- meeting record). Saves a ~1 kB row, an index entry and ~12% of the WAL of
-- every created meeting. created_event_id names the meeting's CREATED
-- event; it is NULL for meetings created before this migration, whose
-- CREATED events keep their stored records.
ALTER TABLE meetings ADD COLUMN created_event_id bigint;
