-- Rewrites locked meetings in place (their pair rows deleted first by
-- prepare_rewrites.sql), keeping the rows so that concurrent writers
-- waiting on their locks see the new versions rather than deleted rows;
-- with their new pair rows and one UPDATED event row for the statement,
-- which keeps the new records and each meeting's parties before and after
-- (so that a pair's watchers see a meeting leave the pair). Parameters are numbered as in
-- insert_meetings.sql (`MeetingColumns`); $9, $11 and $21 (request keys,
-- creation times, digests) are not used: a rewrite keeps them. $19 is the
-- event kind, $20 the most parties a meeting may have and still copy its
-- record into its pair rows.
WITH event AS (
    SELECT nextval('meeting_events_event_id_seq') AS id
), u AS (
    SELECT *
    FROM UNNEST($1::uuid[], $2::date[], $3::text[], $4::text[], $5::int4[], $6::text[],
                $7::text[], $8::text[], $10::bytea[],
                $12::timestamptz[], $13::int8[], $14::text[], $15::text[], $16::text[],
                $17::text[], $18::text[], $22::date[], $23::int2[], $24::text[], $25::text[], $26::text[])
         AS u (id, date, city, location_country_code, years, occasion, topics,
               codes, record, update_time, version, search,
               participant_names, participant_titles, participant_country_codes,
               topics_lower, end_date, format, name_tokens, participant_aliases, match_keys)
), previous AS (
    -- The statement's snapshot: the meetings before the rewrite (their
    -- parties for the event, the rest for the pair figures).
    SELECT id, country_codes, date, format, create_time, anniversary_years,
           anniversary_occasion, topics, topics_lower
    FROM meetings WHERE id = ANY($1)
), meeting AS (
    UPDATE meetings AS t
    SET date = u.date, location_city = coalesce(u.city, ''),
        location_country_code = u.location_country_code, anniversary_years = u.years,
        anniversary_occasion = u.occasion,
        topics = (string_to_array(u.topics, chr(31)))[2:],
        country_codes = string_to_array(u.codes, ','), record = u.record,
        update_time = u.update_time, version = u.version,
        search = to_tsvector('simple', u.search),
        participant_names = (string_to_array(u.participant_names, chr(31)))[2:],
        participant_titles = (string_to_array(u.participant_titles, chr(31)))[2:],
        participant_country_codes = (string_to_array(u.participant_country_codes, chr(31)))[2:],
        topics_lower = (string_to_array(u.topics_lower, chr(31)))[2:],
        end_date = u.end_date, format = u.format,
        name_tokens = (string_to_array(u.name_tokens, chr(31)))[2:],
        participant_aliases = (string_to_array(u.participant_aliases, chr(31)))[2:],
        match_keys = (string_to_array(u.match_keys, chr(31)))[2:]
    FROM u, event, previous
    WHERE t.id = u.id AND previous.id = t.id
    RETURNING t.id, t.date, t.end_date, t.country_codes, t.record, event.id AS event_id,
              previous.country_codes AS previous_codes, t.format, t.create_time,
              t.anniversary_years, t.anniversary_occasion, t.topics, t.topics_lower,
              previous.id AS previous_id, previous.date AS previous_date,
              previous.format AS previous_format, previous.create_time AS previous_create_time,
              previous.anniversary_years AS previous_anniversary_years,
              previous.anniversary_occasion AS previous_anniversary_occasion,
              previous.topics AS previous_topics, previous.topics_lower AS previous_topics_lower
), pairs AS (
    INSERT INTO meeting_country_pairs (country_low, country_high, date, end_date, meeting_id,
                                       record)
    SELECT low.code, high.code, meeting.date, meeting.end_date, meeting.id,
           CASE WHEN cardinality(meeting.country_codes) <= $20::int4 THEN meeting.record END
    FROM meeting
    CROSS JOIN LATERAL unnest(meeting.country_codes) AS low (code)
    CROSS JOIN LATERAL unnest(meeting.country_codes) AS high (code)
    WHERE low.code < high.code COLLATE "C"
), events AS (
    INSERT INTO meeting_events (event_id, kind, meeting_ids, meeting_codes, previous_codes,
                                event_count)
    SELECT min(meeting.event_id), $19::int2, array_agg(meeting.id ORDER BY meeting.id),
           array_agg(array_to_string(meeting.country_codes, ',') ORDER BY meeting.id),
           array_agg(array_to_string(meeting.previous_codes, ',') ORDER BY meeting.id),
           count(*)
    FROM meeting
    HAVING count(*) > 0
), event_records AS (
    INSERT INTO meeting_event_records (event_id, meeting_id, record)
    SELECT meeting.event_id, meeting.id, meeting.record FROM meeting
), figures AS (
    -- The meetings after and before, for the pair figures (migration 0020).
    INSERT INTO pair_figure_changes (ids, codes, dates, formats, created, anniversary_years,
                                     anniversary_occasions, topic_keys, topics,
                                     removed_ids, removed_codes, removed_dates, removed_formats,
                                     removed_created, removed_anniversary_years,
                                     removed_anniversary_occasions, removed_topic_keys,
                                     removed_topics)
    SELECT array_agg(meeting.id), array_agg(array_to_string(meeting.country_codes, ',')),
           array_agg(meeting.date), array_agg(meeting.format), array_agg(meeting.create_time),
           array_agg(meeting.anniversary_years), array_agg(meeting.anniversary_occasion),
           array_agg(array_to_string(meeting.topics_lower, chr(31))),
           array_agg(CASE WHEN meeting.topics <> meeting.topics_lower
                          THEN array_to_string(meeting.topics, chr(31)) END),
           array_agg(meeting.previous_id), array_agg(array_to_string(meeting.previous_codes, ',')),
           array_agg(meeting.previous_date), array_agg(meeting.previous_format), array_agg(meeting.previous_create_time),
           array_agg(meeting.previous_anniversary_years), array_agg(meeting.previous_anniversary_occasion),
           array_agg(array_to_string(meeting.previous_topics_lower, chr(31))),
           array_agg(CASE WHEN meeting.previous_topics <> meeting.previous_topics_lower
                          THEN array_to_string(meeting.previous_topics, chr(31)) END)
    FROM meeting
    HAVING count(*) > 0
)
SELECT id FROM meeting;
