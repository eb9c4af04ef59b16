-- Meetings of several days in the pair index, for duplicate matching: a
-- report's candidates are the meetings of its parties that begin within a
-- day of its days (a short range of the primary key), and those that began
-- up to 90 days earlier and last into them. Only the latter need the end
-- date; this index holds the pair rows of multi-day meetings alone, so
-- that finding them does not read every meeting of the 90 days before.
CREATE INDEX meeting_country_pairs_spans_idx
    ON meeting_country_pairs (country_low, country_high, date) INCLUDE (end_date)
    WHERE end_date IS NOT NULL;
