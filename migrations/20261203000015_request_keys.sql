-- An idempotency key remembers what was asked with it, apart from the
-- meeting it made: an identical retry after the meeting was updated gets
-- the meeting as it is now (not ALREADY_EXISTS), and after it was deleted
-- NOT_FOUND (not a second meeting). `digest` is the SHA-256 of the meeting
-- as asked (its normalised encoding). Keys stored before this table get no
-- digest: a retry with one is compared with the meeting as it is then.
CREATE TABLE meeting_requests (
    request_id text PRIMARY KEY,
    meeting_id uuid NOT NULL,
    digest bytea
);

INSERT INTO meeting_requests (request_id, meeting_id, digest)
SELECT request_id, id, NULL FROM meetings WHERE request_id IS NOT NULL;
