-- Event records move to their own table. The sequencer numbers events by
-- updating their rows; with the record (~1.5 kB) in the row, each numbering
-- wrote a copy of every record again (PostgreSQL writes a whole new row
-- version) and its commit stalled the creates committing beside it. The
-- event rows are now narrow and the records are written once, never updated.
CREATE TABLE meeting_event_records (
    event_id bigint PRIMARY KEY,
    record bytea NOT NULL
);
INSERT INTO meeting_event_records (event_id, record)
SELECT event_id, record FROM meeting_events WHERE record IS NOT NULL;
ALTER TABLE meeting_events DROP COLUMN record;
