-- Deletes a locked meeting ($1) with its event: DELETED, or MERGED ($2)
-- naming the meeting it went into ($3). Ids merged into it stop resolving
-- (a merge repoints them before it deletes).
WITH gone AS (
    DELETE FROM meetings WHERE id = $1
    RETURNING id, country_codes, date, format, create_time, anniversary_years,
              anniversary_occasion, topics, topics_lower
), redirects AS (
    DELETE FROM meeting_redirects WHERE meeting_id = $1
), figures AS (
    -- The meeting as it was, for the pair figures (migration 0020).
    INSERT INTO pair_figure_changes (removed_ids, removed_codes, removed_dates, removed_formats,
                                     removed_created, removed_anniversary_years,
                                     removed_anniversary_occasions, removed_topic_keys,
                                     removed_topics)
    SELECT array_agg(gone.id), array_agg(array_to_string(gone.country_codes, ',')),
           array_agg(gone.date), array_agg(gone.format), array_agg(gone.create_time),
           array_agg(gone.anniversary_years), array_agg(gone.anniversary_occasion),
           array_agg(array_to_string(gone.topics_lower, chr(31))),
           array_agg(CASE WHEN gone.topics <> gone.topics_lower
                          THEN array_to_string(gone.topics, chr(31)) END)
    FROM gone
    HAVING count(*) > 0
)
INSERT INTO meeting_events (kind, meeting_ids, meeting_codes, event_count, merged_into)
SELECT $2::int2, ARRAY[gone.id], ARRAY[array_to_string(gone.country_codes, ',')], 1, $3::uuid
FROM gone;
