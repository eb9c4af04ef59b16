-- Organisations and former countries as parties, meetings of several days,
-- and how a meeting was held.
--
-- Parties: the columns that held country codes (meetings.country_codes and
-- participant_country_codes, the pair rows' country_low and country_high,
-- the change feed's meeting_codes and previous_codes) now hold party keys:
-- a country's code as before (two letters, or an ISO 3166-3 code of four
-- for a former country), or "org:" and an organisation's code. The prefix
-- keeps the African Union ("org:AU") apart from Australia ("AU"). Stored
-- country codes are their own keys, so no row changes; the columns keep
-- their names, which every query and the upgrade path already use.
--
-- Spans: end_date is the last day of a meeting of several days (NULL for a
-- meeting of one day), at most 90 days after date, as the service checks.
-- The pair rows carry it too, so that a pair lookup with date bounds finds
-- the meetings overlapping them from the pair index alone: one that ends
-- on or after `from` began at most 90 days before it, which bounds the
-- index range scanned. The CHECK is NOT VALID so that adding it does not
-- scan the table (every existing row has no end_date); new rows are checked.
ALTER TABLE meetings ADD COLUMN end_date date,
                     ADD COLUMN format smallint NOT NULL DEFAULT 0;
ALTER TABLE meetings ADD CONSTRAINT meetings_end_date_check
    CHECK (end_date >= date AND end_date <= date + 90) NOT VALID;
ALTER TABLE meetings ADD CONSTRAINT meetings_format_check
    CHECK (format BETWEEN 0 AND 3) NOT VALID;
ALTER TABLE meeting_country_pairs ADD COLUMN end_date date;

-- Pair rows hold (low, high) in byte order of the keys, as the service
-- orders parties. Under a linguistic collation (en_US, ICU) "org:EU" sorts
-- before "US" although its bytes sort after, so the order check compares
-- bytes (COLLATE "C"), as the statements that write pair rows do. Country
-- codes alone (all that existed before) sort alike under every collation,
-- so stored rows satisfy the new check; NOT VALID skips scanning them.
ALTER TABLE meeting_country_pairs DROP CONSTRAINT meeting_country_pairs_check;
ALTER TABLE meeting_country_pairs ADD CONSTRAINT meeting_country_pairs_check
    CHECK (country_low < country_high COLLATE "C") NOT VALID;
