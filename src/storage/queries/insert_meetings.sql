-- Inserts meetings ($1-$18: one array a column, as bound by
-- `MeetingColumns`) with their idempotency keys, pair rows and one
-- change-feed event row, in one statement: one transaction, one round trip.
-- Lists go as one text a meeting, each item after a U+001F (chr(31)); the
-- empty piece before the first separator is dropped. $19 is the CREATED
-- event kind, $20 the most countries a meeting may have and still copy its
-- record into its pair rows, $21 the digests of what each key was asked,
-- $22 the end dates, $23 the formats, $24 the name tokens, $25 the
-- participants' aliases and $26 the match keys. "Countries" here are party keys
-- (see migration 0016): country codes, and "org:" codes of organisations.
--
-- A row with a request_id is stored only if its key is new: keys outlive
-- their meetings. The statement returns the ids of the meetings it stored.
WITH event AS (
    -- One id for the statement's event row (a CTE with a volatile function
    -- is evaluated once).
    SELECT nextval('meeting_events_event_id_seq') AS id
), keys AS (
    INSERT INTO meeting_requests (request_id, meeting_id, digest)
    SELECT k.request_id, k.id, k.digest
    FROM UNNEST($1::uuid[], $9::text[], $21::bytea[]) AS k (id, request_id, digest)
    WHERE k.request_id IS NOT NULL
    ON CONFLICT (request_id) DO NOTHING
    RETURNING meeting_id
), meeting AS (
    INSERT INTO meetings (id, date, location_city, location_country_code, anniversary_years,
                          anniversary_occasion, topics, country_codes, request_id, record, create_time, update_time, version,
                          search, participant_names, participant_titles,
                          participant_country_codes, topics_lower, created_event_id,
                          end_date, format, name_tokens, participant_aliases, match_keys)
    SELECT m.id, m.date, coalesce(m.city, ''), m.location_country_code, m.years, m.occasion,
           (string_to_array(m.topics, chr(31)))[2:],
           string_to_array(m.codes, ','), m.request_id, m.record, m.create_time, m.update_time,
           m.version, to_tsvector('simple', m.search),
           (string_to_array(m.participant_names, chr(31)))[2:],
           (string_to_array(m.participant_titles, chr(31)))[2:],
           (string_to_array(m.participant_country_codes, chr(31)))[2:],
           (string_to_array(m.topics_lower, chr(31)))[2:],
           event.id, m.end_date, m.format,
           (string_to_array(m.name_tokens, chr(31)))[2:],
           (string_to_array(m.participant_aliases, chr(31)))[2:],
           (string_to_array(m.match_keys, chr(31)))[2:]
    FROM UNNEST($1::uuid[], $2::date[], $3::text[], $4::text[], $5::int4[], $6::text[],
                $7::text[], $8::text[], $9::text[],
                $10::bytea[], $11::timestamptz[], $12::timestamptz[], $13::int8[], $14::text[],
                $15::text[], $16::text[], $17::text[], $18::text[], $22::date[], $23::int2[],
                $24::text[], $25::text[], $26::text[])
         AS m (id, date, city, location_country_code, years, occasion, topics,
               codes, request_id, record, create_time,
               update_time, version, search, participant_names, participant_titles,
               participant_country_codes, topics_lower, end_date, format, name_tokens,
               participant_aliases, match_keys),
         event
    WHERE m.request_id IS NULL OR m.id IN (SELECT meeting_id FROM keys)
    ON CONFLICT (request_id) WHERE request_id IS NOT NULL DO NOTHING
    RETURNING id, date, end_date, country_codes, record, created_event_id AS event_id,
              format, create_time, anniversary_years, anniversary_occasion, topics,
              topics_lower
), pairs AS (
    -- Every pair of the meeting's (sorted, distinct) countries, low and
    -- high in the byte order of their keys (as the service orders them,
    -- whatever the database's collation). A pair row
    -- keeps a copy of the record for meetings of at most $20 countries, so
    -- a pair scan reads nothing else; a larger meeting's pair rows point to
    -- it instead, so one meeting never writes more than $20 choose 2 copies
    -- of its record.
    INSERT INTO meeting_country_pairs (country_low, country_high, date, end_date, meeting_id,
                                       record)
    SELECT low.code, high.code, meeting.date, meeting.end_date, meeting.id,
           CASE WHEN cardinality(meeting.country_codes) <= $20::int4 THEN meeting.record END
    FROM meeting
    CROSS JOIN LATERAL unnest(meeting.country_codes) AS low (code)
    CROSS JOIN LATERAL unnest(meeting.country_codes) AS high (code)
    WHERE low.code < high.code COLLATE "C"
), events AS (
    -- One event row for the statement: its meetings in id order (UUIDv7,
    -- so the order they were made in). A CREATED event stores no record:
    -- the meeting's own is its record until the meeting is first rewritten
    -- (prepare_rewrites.sql copies it then).
    INSERT INTO meeting_events (event_id, kind, meeting_ids, meeting_codes, event_count)
    SELECT min(meeting.event_id), $19::int2, array_agg(meeting.id ORDER BY meeting.id),
           array_agg(array_to_string(meeting.country_codes, ',') ORDER BY meeting.id), count(*)
    FROM meeting
    HAVING count(*) > 0
), figures AS (
    -- The statement's meetings for the pair figures (see migration 0020).
    INSERT INTO pair_figure_changes (ids, codes, dates, formats, created, anniversary_years,
                                     anniversary_occasions, topic_keys, topics)
    SELECT array_agg(meeting.id), array_agg(array_to_string(meeting.country_codes, ',')),
           array_agg(meeting.date), array_agg(meeting.format), array_agg(meeting.create_time),
           array_agg(meeting.anniversary_years), array_agg(meeting.anniversary_occasion),
           array_agg(array_to_string(meeting.topics_lower, chr(31))),
           array_agg(CASE WHEN meeting.topics <> meeting.topics_lower
                          THEN array_to_string(meeting.topics, chr(31)) END)
    FROM meeting
    HAVING count(*) > 0
)
SELECT id FROM meeting;
