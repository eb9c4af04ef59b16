-- The change feed's events are kept in partitions of one day (UTC) of
-- their event_time, so that expiry drops a whole day's partition instead
-- of deleting its rows one by one (each a dead tuple, index entries and
-- WAL, and vacuum's work afterwards). The service creates the partitions
-- of the next days ahead (storage::events::ensure_event_partitions); the
-- default partition catches an event outside them.
--
-- A partitioned table's unique keys must hold the partition key: the
-- primary key is (event_id, event_time), and sequence is unique per
-- partition (the sequencer gives each number once anyway). Readers look
-- events up by event_id or walk sequence order, which both still use an
-- index of each partition.
ALTER TABLE meeting_events RENAME TO meeting_events_unpartitioned;
ALTER INDEX meeting_events_pkey RENAME TO meeting_events_unpartitioned_pkey;
ALTER INDEX meeting_events_sequence_idx RENAME TO meeting_events_unpartitioned_sequence_idx;
ALTER INDEX meeting_events_unsequenced_idx RENAME TO meeting_events_unpartitioned_unsequenced_idx;

CREATE TABLE meeting_events (LIKE meeting_events_unpartitioned INCLUDING DEFAULTS)
    PARTITION BY RANGE (event_time);
ALTER TABLE meeting_events ADD PRIMARY KEY (event_id, event_time);
CREATE UNIQUE INDEX meeting_events_sequence_idx ON meeting_events (sequence, event_time)
    WHERE sequence IS NOT NULL;
CREATE INDEX meeting_events_unsequenced_idx ON meeting_events (event_id)
    WHERE sequence IS NULL;
CREATE TABLE meeting_events_default PARTITION OF meeting_events DEFAULT;

-- A partition for each day that has events, and for today and the next
-- two days, before the events move in (a day's partition cannot be made
-- once the default partition holds rows of that day).
DO $$
DECLARE
    day date;
BEGIN
    FOR day IN
        SELECT DISTINCT (event_time AT TIME ZONE 'UTC')::date FROM meeting_events_unpartitioned
        UNION
        SELECT (now() AT TIME ZONE 'UTC')::date + i FROM generate_series(0, 2) AS i
    LOOP
        EXECUTE format(
            'CREATE TABLE %I PARTITION OF meeting_events FOR VALUES FROM (%L) TO (%L)',
            'meeting_events_' || to_char(day, 'YYYYMMDD'),
            day::text || ' 00:00:00+00', (day + 1)::text || ' 00:00:00+00');
    END LOOP;
END
$$;

INSERT INTO meeting_events SELECT * FROM meeting_events_unpartitioned;
ALTER SEQUENCE meeting_events_event_id_seq OWNED BY meeting_events.event_id;
DROP TABLE meeting_events_unpartitioned;
