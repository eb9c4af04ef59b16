-- Secrets of a deployment, shared by every instance on this database: the
-- key that signs ListMeetings page tokens, so that a token cannot be
-- altered to start at another position. Made at random by the first
-- instance that starts.
CREATE TABLE service_secrets (
    name text PRIMARY KEY,
    value bytea NOT NULL
);
