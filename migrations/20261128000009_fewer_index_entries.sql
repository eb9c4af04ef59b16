-- Two index entries fewer for most created meetings.
-- - request_id is unique only where set: a meeting created without a key
--   (most imported records) no longer adds a NULL entry, all of which went
--   to the rightmost leaf of the index. Inserts name the predicate in their
--   ON CONFLICT clause to use it (storage.rs: INSERT_MEETINGS).
-- - A meeting's pair rows are found by their primary key, from the
--   meeting's date and country codes (storage.rs: PREPARE_REWRITE), so
--   the meeting_id index on the pair rows, used only to delete them when
--   their meeting is rewritten, goes.
CREATE UNIQUE INDEX meetings_request_id_idx ON meetings (request_id)
    WHERE request_id IS NOT NULL;
ALTER TABLE meetings DROP CONSTRAINT meetings_request_id_key;
DROP INDEX meeting_country_pairs_meeting_id_idx;
