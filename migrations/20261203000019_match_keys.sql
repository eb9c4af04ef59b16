-- What name matching compares of each meeting (domain::Report::match_keys):
-- one item a spelling of a participant, its party's key and then the words
-- of its NameKey ("AZ jeihun bairamov"). A MERGE batch matches its reports
-- against these instead of reading each candidate's record and computing
-- its keys again. NULL until computed: the service fills them at start
-- for meetings stored before, and reads the record of any still NULL.
ALTER TABLE meetings ADD COLUMN match_keys text[];
