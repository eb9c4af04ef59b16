-- Child rows (participants, country pairs) are only ever written in the
-- statement that writes their meeting, and deleted in the transaction that
-- deletes or rewrites it (storage.rs: PREPARE_REWRITE), so the foreign
-- keys never caught anything; their per-row checks (a trigger and a
-- key-share lock on the meeting, for each of ~3 child rows a meeting) were
-- 6.6% of the database's CPU during a bulk import (perf). The meeting_id
-- indexes that serve the deletes stay.
ALTER TABLE meeting_participants DROP CONSTRAINT meeting_participants_meeting_id_fkey;
ALTER TABLE meeting_country_pairs DROP CONSTRAINT meeting_country_pairs_meeting_id_fkey;
