-- Smaller meeting rows (docs/performance.md, "Bytes a meeting").
--
-- - summary, source_names and source_urls are dropped: no statement reads
--   them (the record holds them, and search its own document). They were
--   about 650 bytes of a 3.1 kB row.
-- - Records written from now on are zstd frames (storage/record.rs), in
--   meetings, in the pair rows' copies and in the change feed's records;
--   records stored before stay as they are and are read either way.
--
-- Dropping a column only hides it: existing rows shrink when rewritten (an
-- update, or VACUUM FULL / pg_repack of the table by an operator).
ALTER TABLE meetings DROP COLUMN summary,
                     DROP COLUMN source_names,
                     DROP COLUMN source_urls;
