-- Rewrites a locked meeting in place ($1 its id; its pair rows deleted
-- first by prepare_rewrite.sql), keeping the row so that concurrent writers
-- waiting on its lock see the new version rather than a deleted row; with
-- its new pair rows and an UPDATED event ($20) that keeps the new record
-- and the countries before and after the update (so that a pair's watchers
-- see a meeting leave the pair). $21 is the most countries a meeting may
-- have and still copy its record into its pair rows; $22 the end date and
-- $23 the format, $24 the name tokens, $25 the participants' aliases.
WITH event AS (
    SELECT nextval('meeting_events_event_id_seq') AS id
), previous AS (
    -- The statement's snapshot: the meeting's countries before the update.
    SELECT id, country_codes FROM meetings WHERE id = $1
), meeting AS (
    UPDATE meetings AS t
    SET date = $2, location_city = coalesce($3, ''), location_country_code = $4,
        anniversary_years = $5, anniversary_occasion = $6, summary = $7, topics = $8,
        source_names = $9, source_urls = $10, country_codes = $11, record = $12,
        update_time = $13, version = $14, search = to_tsvector('simple', $15),
        participant_names = $16, participant_titles = $17, participant_country_codes = $18,
        topics_lower = $19, end_date = $22, format = $23, name_tokens = $24,
        participant_aliases = $25
    FROM event, previous
    WHERE t.id = $1 AND previous.id = t.id
    RETURNING t.id, t.date, t.end_date, t.country_codes, t.record, event.id AS event_id,
              previous.country_codes AS previous_codes
), pairs AS (
    INSERT INTO meeting_country_pairs (country_low, country_high, date, end_date, meeting_id,
                                       record)
    SELECT low.code, high.code, meeting.date, meeting.end_date, meeting.id,
           CASE WHEN cardinality(meeting.country_codes) <= $21::int4 THEN meeting.record END
    FROM meeting
    CROSS JOIN LATERAL unnest(meeting.country_codes) AS low (code)
    CROSS JOIN LATERAL unnest(meeting.country_codes) AS high (code)
    WHERE low.code < high.code COLLATE "C"
), events AS (
    INSERT INTO meeting_events (event_id, kind, meeting_ids, meeting_codes, previous_codes,
                                event_count)
    SELECT meeting.event_id, $20::int2, ARRAY[meeting.id],
           ARRAY[array_to_string(meeting.country_codes, ',')],
           ARRAY[array_to_string(meeting.previous_codes, ',')], 1
    FROM meeting
), event_records AS (
    INSERT INTO meeting_event_records (event_id, meeting_id, record)
    SELECT meeting.event_id, meeting.id, meeting.record FROM meeting
)
SELECT id FROM meeting;
