-- A meeting row (record, columns and search document: ~2.9 kB for a record
-- like the AZERTAC example) passes PostgreSQL's 2 kB TOAST threshold, so
-- every insert compressed its record with pglz and, still too long, moved a
-- value out to the TOAST table: 9% of the database's CPU during a bulk
-- import (perf). Rows up to a page now stay whole and uncompressed: more
-- disk for no compression or second insert on write and no decompression
-- on read.
ALTER TABLE meetings SET (toast_tuple_target = 8160);

-- Values past that (very large records, and records in the pair and event
-- tables past 2 kB) are compressed with lz4, several times faster than pglz
-- either way. Applies to values written from now on; older ones stay
-- readable. A server built without lz4 keeps pglz (the ALTERs raise
-- feature_not_supported there).
DO $$
BEGIN
    ALTER TABLE meetings ALTER COLUMN record SET COMPRESSION lz4,
                         ALTER COLUMN search SET COMPRESSION lz4,
                         ALTER COLUMN summary SET COMPRESSION lz4,
                         ALTER COLUMN topics SET COMPRESSION lz4;
    ALTER TABLE meeting_country_pairs ALTER COLUMN record SET COMPRESSION lz4;
    ALTER TABLE meeting_event_records ALTER COLUMN record SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'lz4 is not available: large values stay pglz-compressed';
END
$$;
