-- An UPDATED event records each meeting's countries before the update as
-- well as after it (one comma-joined text per meeting, parallel to
-- meeting_codes), so that the watchers of a pair see an update that moves
-- a meeting out of the pair. NULL for other kinds and for events written
-- before this column.
ALTER TABLE meeting_events ADD COLUMN previous_codes text[];
