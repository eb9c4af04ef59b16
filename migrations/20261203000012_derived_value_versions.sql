-- Values the service derives from a meeting and stores beside it (today the
-- case-folded topics in meetings.topics_lower) are made by rules in the
-- service, not in SQL: PostgreSQL's lower() follows the database's locale,
-- and under the C locale it changes ASCII letters only. When a rule
-- changes, the service recomputes the stored values at start and records
-- the rule's version here. No row: the values of migration 0010 (lower()).
CREATE TABLE derived_value_versions (
    name text PRIMARY KEY,
    version integer NOT NULL
);
