-- Updates, deletes, listing with full-text search, and the change feed.

-- Every write bumps the version; the etag is derived from it.
ALTER TABLE meetings ADD COLUMN version bigint NOT NULL DEFAULT 1;

-- Full-text search over summary, topics, participant names and titles,
-- with the 'simple' configuration: names from many languages are not
-- stemmed as English words.
ALTER TABLE meetings ADD COLUMN search tsvector NOT NULL DEFAULT ''::tsvector;
UPDATE meetings m SET search = to_tsvector('simple',
    m.summary || ' ' || array_to_string(m.topics, ' ') || ' ' ||
    coalesce((SELECT string_agg(p.name || ' ' || p.title, ' ')
              FROM meeting_participants p WHERE p.meeting_id = m.id), ''));
CREATE INDEX meetings_search_idx ON meetings USING gin (search);

-- Listing: newest first, optionally by country or topic.
CREATE INDEX meetings_date_id_idx ON meetings (date DESC, id DESC);
CREATE INDEX meetings_country_codes_idx ON meetings USING gin (country_codes);
CREATE FUNCTION meetings_lower_topics(topics text[]) RETURNS text[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN ARRAY(SELECT lower(t) FROM unnest(topics) AS t);
CREATE INDEX meetings_lower_topics_idx ON meetings USING gin (meetings_lower_topics(topics));

-- The change feed: a transactional outbox. Each change writes its event in
-- the change's own transaction, with no sequence yet. A single sequencer
-- (whichever server instance holds the advisory lock) numbers the events of
-- committed transactions in one serial step, so sequence numbers appear in
-- increasing order and a watcher that has seen N has seen everything up to
-- N, with several instances on one database.
CREATE TABLE meeting_events (
    event_id bigserial PRIMARY KEY,
    sequence bigint UNIQUE,
    kind smallint NOT NULL,
    meeting_id uuid NOT NULL,
    country_codes text[] NOT NULL,
    -- The meeting's record after the change; NULL for a deletion.
    record bytea,
    event_time timestamptz NOT NULL DEFAULT now()
);
CREATE SEQUENCE meeting_event_sequence AS bigint;
CREATE INDEX meeting_events_unsequenced_idx ON meeting_events (event_id) WHERE sequence IS NULL;
CREATE INDEX meeting_events_time_idx ON meeting_events (event_time);
