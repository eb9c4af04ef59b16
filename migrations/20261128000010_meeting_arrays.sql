-- Two changes to the meeting row that both rewrite every row, made in one
-- pass (the UPDATE below; on a large table it runs once, at upgrade).
--
-- Participants move from rows of their own to arrays on the meeting, as
-- topics and sources did: no query reads them apart from their meeting
-- (search reads the meeting's search document; pair and country lookups
-- read the pair rows and country_codes), and each participant row cost a
-- heap tuple, a primary-key entry and two WAL records. Side by side on one
-- server, inserting 500 meetings took 9% longer with participant rows
-- than with the arrays. The arrays are parallel, in the order given:
-- participant_names[i], participant_titles[i] and
-- participant_country_codes[i] are one participant.
--
-- Topics are also stored lower-cased, by the service, and the topic filter's
-- GIN index is on that column. The index was on an expression,
-- meetings_lower_topics(topics): a SQL function PostgreSQL cannot inline,
-- so every insert ran the function's own executor once per row; the same
-- comparison measured inserts 10% faster with the stored column. The
-- service lower-cases with Unicode rules, as it already did the filter's
-- topic: PostgreSQL's lower() follows the database's locale, and under the
-- C locale of the embedded server it lower-cased only ASCII letters, so a
-- filter on a topic such as "Ükraine" found nothing there. Existing rows are
-- lower-cased here by lower() (with the database's locale) once.
ALTER TABLE meetings ADD COLUMN participant_names text[],
                     ADD COLUMN participant_titles text[],
                     ADD COLUMN participant_country_codes text[],
                     ADD COLUMN topics_lower text[];
UPDATE meetings m
SET participant_names = coalesce(
        (SELECT array_agg(p.name ORDER BY p.position)
         FROM meeting_participants p WHERE p.meeting_id = m.id), '{}'),
    participant_titles = coalesce(
        (SELECT array_agg(p.title ORDER BY p.position)
         FROM meeting_participants p WHERE p.meeting_id = m.id), '{}'),
    participant_country_codes = coalesce(
        (SELECT array_agg(p.country_code ORDER BY p.position)
         FROM meeting_participants p WHERE p.meeting_id = m.id), '{}'),
    topics_lower = meetings_lower_topics(m.topics);
ALTER TABLE meetings ALTER COLUMN participant_names SET NOT NULL,
                     ALTER COLUMN participant_titles SET NOT NULL,
                     ALTER COLUMN participant_country_codes SET NOT NULL,
                     ALTER COLUMN topics_lower SET NOT NULL;
DROP TABLE meeting_participants;
CREATE INDEX meetings_topics_lower_idx ON meetings USING gin (topics_lower);
DROP INDEX meetings_lower_topics_idx;
DROP FUNCTION meetings_lower_topics(text[]);
