-- A pair's summary figures (GetCountryPairSummary) kept as meetings are
-- written, instead of recomputed from every meeting of the pair at each
-- call (3 s for a pair of 40,000 meetings in an archive of 1,000,000).
--
-- pair_figure_changes: one row per write statement that created, rewrote or
-- deleted meetings, written by that statement (no trigger, no row per
-- meeting or pair). It lists each meeting as it is after the statement
-- (the unprefixed arrays, empty for a deletion) and as it was before
-- (`removed_`, empty for a creation): parallel arrays of id, party keys
-- (comma-joined), date, format, creation time, anniversary years and
-- occasion, topic keys and topics as written (each U+001F-joined; NULL
-- when the same as the keys). Plain arrays, which cost a writer far less
-- than building JSON. The table holds exactly the changes not yet folded
-- into pair_figures.
--
-- pair_figures: per pair, the figures of its meetings (count, per year, per
-- format, per topic key with the earliest meeting's spelling, per
-- anniversary with its earliest meeting), encoded by the service
-- (storage::figures). A background fold adds change rows to them and
-- deletes those rows in one transaction; a summary reads its pair's row and
-- adds the change rows still pending, in one snapshot, so it is exact at
-- every moment. First and last dates come from the pair index.
--
-- Existing meetings are counted by the service at start (it records
-- derived value "pair_figures"), with writes held off meanwhile.
CREATE TABLE pair_figure_changes (
    change_id bigserial PRIMARY KEY,
    ids uuid[] NOT NULL DEFAULT '{}',
    codes text[] NOT NULL DEFAULT '{}',
    dates date[] NOT NULL DEFAULT '{}',
    formats int2[] NOT NULL DEFAULT '{}',
    created timestamptz[] NOT NULL DEFAULT '{}',
    anniversary_years int4[] NOT NULL DEFAULT '{}',
    anniversary_occasions text[] NOT NULL DEFAULT '{}',
    topic_keys text[] NOT NULL DEFAULT '{}',
    topics text[] NOT NULL DEFAULT '{}',
    removed_ids uuid[] NOT NULL DEFAULT '{}',
    removed_codes text[] NOT NULL DEFAULT '{}',
    removed_dates date[] NOT NULL DEFAULT '{}',
    removed_formats int2[] NOT NULL DEFAULT '{}',
    removed_created timestamptz[] NOT NULL DEFAULT '{}',
    removed_anniversary_years int4[] NOT NULL DEFAULT '{}',
    removed_anniversary_occasions text[] NOT NULL DEFAULT '{}',
    removed_topic_keys text[] NOT NULL DEFAULT '{}',
    removed_topics text[] NOT NULL DEFAULT '{}'
);

-- A statement's arrays (~150 bytes a meeting) are compressed with lz4,
-- which costs writers far less CPU than the default pglz (as in migration
-- 0004, a server built without lz4 keeps pglz).
DO $$
BEGIN
    ALTER TABLE pair_figure_changes
        ALTER COLUMN ids SET COMPRESSION lz4,
        ALTER COLUMN codes SET COMPRESSION lz4,
        ALTER COLUMN dates SET COMPRESSION lz4,
        ALTER COLUMN formats SET COMPRESSION lz4,
        ALTER COLUMN created SET COMPRESSION lz4,
        ALTER COLUMN anniversary_years SET COMPRESSION lz4,
        ALTER COLUMN anniversary_occasions SET COMPRESSION lz4,
        ALTER COLUMN topic_keys SET COMPRESSION lz4,
        ALTER COLUMN topics SET COMPRESSION lz4,
        ALTER COLUMN removed_ids SET COMPRESSION lz4,
        ALTER COLUMN removed_codes SET COMPRESSION lz4,
        ALTER COLUMN removed_dates SET COMPRESSION lz4,
        ALTER COLUMN removed_formats SET COMPRESSION lz4,
        ALTER COLUMN removed_created SET COMPRESSION lz4,
        ALTER COLUMN removed_anniversary_years SET COMPRESSION lz4,
        ALTER COLUMN removed_anniversary_occasions SET COMPRESSION lz4,
        ALTER COLUMN removed_topic_keys SET COMPRESSION lz4,
        ALTER COLUMN removed_topics SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'lz4 is not available: figure changes stay pglz-compressed';
END
$$;

CREATE TABLE pair_figures (
    country_low text NOT NULL,
    country_high text NOT NULL,
    figures bytea NOT NULL,
    PRIMARY KEY (country_low, country_high)
);

