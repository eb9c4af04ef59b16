-- Meetings merged by hand (MergeMeetings), and names found across
-- spellings (ListMeetings' participant filter).
--
-- A merged meeting's id keeps working: meeting_redirects maps it to the
-- meeting that absorbed it (and is repointed when that one is merged in
-- turn, so a lookup is one step; rows go with their meeting when it is
-- deleted).
CREATE TABLE meeting_redirects (
    merged_id uuid PRIMARY KEY,
    meeting_id uuid NOT NULL
);
CREATE INDEX meeting_redirects_meeting_id_idx ON meeting_redirects (meeting_id);

-- A MERGED event names the meeting the absorbed one went into.
ALTER TABLE meeting_events ADD COLUMN merged_into uuid;

-- The words of every participant's name and aliases as duplicate matching
-- compares them (domain::NameKey: transliterated, lower-case, without
-- initials and particles, as spelling skeletons), for the participant
-- filter; made by the service, which fills it for stored meetings at start
-- (derived_value_versions 'name_tokens').
ALTER TABLE meetings ADD COLUMN name_tokens text[];
CREATE INDEX meetings_name_tokens_idx ON meetings USING gin (name_tokens);

-- Every participant's aliases, in participant order (aliases exist only
-- in records written from this version on), so that name_tokens can be
-- recomputed from columns when its rule changes.
ALTER TABLE meetings ADD COLUMN participant_aliases text[] NOT NULL DEFAULT '{}';
