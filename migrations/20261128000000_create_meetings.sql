-- Meetings and the tables that index them. Each meeting keeps its canonical
-- encoded record (the meetings.v1.Meeting protobuf, output fields included),
-- so reads forward stored bytes instead of re-assembling rows. Topics and
-- sources are arrays on the meeting (one row instead of ~20 per meeting on
-- the write path); participants and country pairs are rows, written in the
-- same statement, because lookups go through them.

CREATE TABLE meetings (
    id uuid PRIMARY KEY,
    date date NOT NULL,
    location_city text NOT NULL DEFAULT '',
    location_country_code text,
    anniversary_years integer,
    anniversary_occasion text,
    summary text NOT NULL DEFAULT '',
    -- In the order given.
    topics text[] NOT NULL,
    source_names text[] NOT NULL,
    -- '' where a source has no URL.
    source_urls text[] NOT NULL,
    country_codes text[] NOT NULL,
    -- Idempotency key of the CreateMeeting call that stored the meeting.
    request_id text UNIQUE,
    record bytea NOT NULL,
    create_time timestamptz NOT NULL,
    update_time timestamptz NOT NULL
);

CREATE TABLE meeting_participants (
    meeting_id uuid NOT NULL REFERENCES meetings (id) ON DELETE CASCADE,
    position integer NOT NULL,
    name text NOT NULL,
    title text NOT NULL,
    country_code text NOT NULL,
    PRIMARY KEY (meeting_id, position)
);

-- One row per unordered pair of distinct participant countries. The primary
-- key serves the pair lookup directly: equality on the pair, then a keyset
-- range scan on (date, meeting_id) in either direction.
CREATE TABLE meeting_country_pairs (
    country_low text NOT NULL,
    country_high text NOT NULL,
    date date NOT NULL,
    meeting_id uuid NOT NULL REFERENCES meetings (id) ON DELETE CASCADE,
    PRIMARY KEY (country_low, country_high, date, meeting_id),
    CHECK (country_low < country_high)
);
CREATE INDEX meeting_country_pairs_meeting_id_idx ON meeting_country_pairs (meeting_id);
