-- The change feed in time partitions, so that retention drops a partition
-- (a file) instead of deleting rows and leaving dead tuples for vacuum.
--
-- Events are partitioned by `numbered_at`, the time the sequencer numbered
-- them, not by `event_time` (the writing transaction's start): numbers
-- follow commit order, so an event of one day can be numbered after events
-- of the next, and partitions by event_time could not be dropped without
-- a hole in the numbers. The sequencer stamps each step with a time at or
-- after the previous step's (number_events.sql), so numbering times and
-- numbers rise together and dropping the oldest partitions always keeps a
-- contiguous run of numbers.
--
-- Unnumbered events are written with numbered_at = 'infinity' into the
-- partition `meeting_events_pending` ([infinity, MAXVALUE)); numbering them
-- moves them into the partition of their numbering time. There is no
-- DEFAULT partition, so attaching a new one takes only a SHARE UPDATE
-- EXCLUSIVE lock on the table and never waits for writers.
--
-- Stored event records are partitioned by `written_at` (their writing
-- transaction's start, the same instant as their event's event_time). A
-- records partition is dropped once every event it can belong to is gone
-- (its largest event_id is below the oldest retained event's). Records
-- have a DEFAULT partition: a write never fails because the partition of
-- its time has not been made yet.
--
-- The service makes partitions ahead of time and drops expired ones
-- (storage/partitions.rs). Rows already stored go to a partition ending
-- now, dropped one retention from now.
--
-- Instances of an earlier version must be stopped before this one starts:
-- their sequencer would number events without moving them out of the
-- pending partition (and they would be numbered again).
--
-- Neither table has a unique index: one would have to include the
-- partition key. event_id comes from a sequence; sequence numbers from the
-- single sequencer; (event_id, meeting_id) of a record from the statement
-- that writes it (update_meetings.sql, prepare_rewrites.sql).

ALTER TABLE meeting_events RENAME TO meeting_events_unpartitioned;
ALTER TABLE meeting_event_records RENAME TO meeting_event_records_unpartitioned;
ALTER SEQUENCE meeting_events_event_id_seq OWNED BY NONE;

CREATE TABLE meeting_events (
    event_id bigint NOT NULL DEFAULT nextval('meeting_events_event_id_seq'),
    sequence bigint,
    kind smallint NOT NULL,
    event_time timestamptz NOT NULL DEFAULT now(),
    meeting_ids uuid[] NOT NULL,
    meeting_codes text[] NOT NULL,
    event_count integer NOT NULL,
    previous_codes text[],
    merged_into uuid,
    numbered_at timestamptz NOT NULL DEFAULT 'infinity'
) PARTITION BY RANGE (numbered_at);
ALTER SEQUENCE meeting_events_event_id_seq OWNED BY meeting_events.event_id;

CREATE TABLE meeting_events_pending PARTITION OF meeting_events
    FOR VALUES FROM ('infinity') TO (MAXVALUE);

CREATE TABLE meeting_event_records (
    event_id bigint NOT NULL,
    record bytea NOT NULL,
    meeting_id uuid NOT NULL,
    written_at timestamptz NOT NULL DEFAULT now()
) PARTITION BY RANGE (written_at);
-- Before its partitions are made: they take the setting from the table.
DO $$
BEGIN
    ALTER TABLE meeting_event_records ALTER COLUMN record SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'lz4 is not available: large event records stay pglz-compressed';
END
$$;
CREATE TABLE meeting_event_records_default PARTITION OF meeting_event_records DEFAULT;

DO $$
DECLARE
    -- The rows already stored are kept for a retention from now; the
    -- service's first partition starts where this one ends.
    migrated timestamptz := now();
BEGIN
    EXECUTE format('CREATE TABLE meeting_events_legacy PARTITION OF meeting_events '
                   'FOR VALUES FROM (MINVALUE) TO (%L)', migrated);
    EXECUTE format('CREATE TABLE meeting_event_records_legacy PARTITION OF meeting_event_records '
                   'FOR VALUES FROM (MINVALUE) TO (%L)', migrated);
    INSERT INTO meeting_events (event_id, sequence, kind, event_time, meeting_ids, meeting_codes,
                                event_count, previous_codes, merged_into, numbered_at)
    SELECT event_id, sequence, kind, event_time, meeting_ids, meeting_codes, event_count,
           previous_codes, merged_into,
           CASE WHEN sequence IS NULL THEN 'infinity' ELSE migrated - interval '1 microsecond' END
    FROM meeting_events_unpartitioned;
    INSERT INTO meeting_event_records (event_id, record, meeting_id, written_at)
    SELECT event_id, record, meeting_id, migrated - interval '1 microsecond'
    FROM meeting_event_records_unpartitioned;
END
$$;

DROP TABLE meeting_events_unpartitioned;
DROP TABLE meeting_event_records_unpartitioned;

-- Readers look events up by id (a page's rows, a rewrite's CREATED event)
-- and walk them by number; the pending partition is read by id.
CREATE INDEX meeting_events_event_id_idx ON meeting_events (event_id);
CREATE INDEX meeting_events_sequence_idx ON meeting_events (sequence) WHERE sequence IS NOT NULL;
CREATE INDEX meeting_event_records_event_idx ON meeting_event_records (event_id, meeting_id);
