//! What goes into the database and what comes out of it: named row types,
//! so that no column is read by position.

use chrono::{DateTime, Days, NaiveDate, Utc};
use uuid::Uuid;

use crate::domain::{CountryCode, NewMeeting, OrganizationCode, PartyPair, RequestId, limits};

/// A meeting ready to be written: the validated meeting, the id and time the
/// service gave it, and its canonical encoded record.
#[derive(Debug)]
pub struct NewRow {
    pub id: Uuid,
    pub meeting: NewMeeting,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
    /// 1 for a new meeting; one more than before for an update.
    pub version: i64,
    pub record: Vec<u8>,
    pub request_id: Option<RequestId>,
    /// With a request_id: the SHA-256 of the meeting as asked, which the
    /// key remembers.
    pub request_digest: Option<[u8; 32]>,
}

/// A stored meeting rewritten by an update: its new content, version and
/// record (its id, create time and key do not change).
#[derive(Debug)]
pub struct UpdatedRow {
    pub id: Uuid,
    pub meeting: NewMeeting,
    pub update_time: DateTime<Utc>,
    pub version: i64,
    pub record: Vec<u8>,
}

/// Kinds of change-feed events, as stored (and as numbered in the proto's
/// MeetingEventKind).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i16)]
pub enum EventKind {
    Created = 1,
    Updated = 2,
    Deleted = 3,
    Merged = 4,
}

impl EventKind {
    /// The stored value.
    pub fn code(self) -> i16 {
        self as i16
    }
}

/// What a create did with one row.
#[derive(Debug)]
pub enum Inserted {
    /// The meeting was stored.
    Created,
    /// The request_id was used before: for the meeting `meeting_id`, whose
    /// record is given unless it was deleted since.
    Existing {
        meeting_id: Uuid,
        record: Option<Vec<u8>>,
        asked: Asked,
        /// The key's report went into this meeting by a merge.
        merged: bool,
    },
}

/// Whether a key was used for the same request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked {
    /// The same meeting, as asked then.
    Same,
    /// Another meeting.
    Other,
    /// Not known: the key has no digest of what was asked (keys migrated
    /// from meetings.request_id); compare with the meeting as it is now.
    Unknown,
}

impl Asked {
    /// Whether a key stored with `stored` (its request's digest; None for
    /// keys stored before digests were) was asked for the same meeting as
    /// `asked`.
    pub fn of(stored: Option<&[u8]>, asked: Option<&[u8]>) -> Self {
        match (stored, asked) {
            (Some(stored), Some(asked)) if stored == asked => Self::Same,
            (Some(_), _) => Self::Other,
            (None, _) => Self::Unknown,
        }
    }
}

/// A stored meeting locked for a change.
#[derive(Debug, sqlx::FromRow)]
pub struct LockedMeeting {
    #[sqlx(try_from = "super::record::Stored")]
    pub record: Vec<u8>,
    pub version: i64,
    pub create_time: DateTime<Utc>,
}

/// Filters of ListMeetings, validated.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ListFilter {
    pub country_code: Option<CountryCode>,
    pub organization_code: Option<OrganizationCode>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    /// As `domain::topic_key` makes it.
    pub topic: Option<String>,
    pub query: Option<String>,
    /// The words of a participant's name (`NameKey`): a meeting with any
    /// of them among its name tokens is a candidate, which the caller
    /// checks with the name rules.
    pub participant: Option<Vec<String>>,
}

/// What GetCountryPairSummary reports, as stored.
#[derive(Debug)]
pub struct PairSummary {
    pub counts: PairCounts,
    /// Most frequent first.
    pub topics: Vec<TopicCount>,
    /// Oldest first.
    pub anniversaries: Vec<AnniversaryCount>,
    /// Oldest first.
    pub years: Vec<YearCount>,
    /// By format number.
    pub formats: Vec<FormatCount>,
}

/// A pair's meetings in one calendar year.
#[derive(Debug, sqlx::FromRow)]
pub struct YearCount {
    pub year: i32,
    pub meetings: i64,
}

/// A pair's meetings held in one format (MeetingFormat's number).
#[derive(Debug, sqlx::FromRow)]
pub struct FormatCount {
    pub format: i16,
    pub meetings: i64,
}

/// How many meetings a pair has, and their first and last dates.
#[derive(Debug, sqlx::FromRow)]
pub struct PairCounts {
    pub count: i64,
    pub first: Option<NaiveDate>,
    pub last: Option<NaiveDate>,
}

/// A topic of a pair's meetings: as first written, and in how many.
#[derive(Debug, sqlx::FromRow)]
pub struct TopicCount {
    pub topic: String,
    pub meetings: i64,
}

/// An anniversary the meetings of a pair mark: what, since which year (the
/// meeting's year minus the years), in how many, and the earliest of them.
#[derive(Debug, sqlx::FromRow)]
pub struct AnniversaryCount {
    pub occasion: String,
    pub since_year: i32,
    pub meetings: i64,
    pub meeting_id: Uuid,
}

/// A page of the change feed: the events (of a pair, if asked) numbered
/// after the page's start, up to and including `through`.
#[derive(Debug)]
pub struct EventPage {
    pub events: Vec<EventRow>,
    pub through: i64,
}

/// A numbered change-feed event.
#[derive(Debug, sqlx::FromRow)]
pub struct EventRow {
    pub sequence: i64,
    pub kind: i16,
    pub meeting_id: Uuid,
    pub country_codes: Vec<String>,
    #[sqlx(try_from = "super::record::MaybeStored")]
    pub record: Option<Vec<u8>>,
    pub event_time: DateTime<Utc>,
    /// For a MERGED event: the meeting it went into.
    pub merged_into: Option<Uuid>,
}

/// An event row waiting for its numbers: how many events (meetings) it
/// holds.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct PendingEvents {
    pub event_id: i64,
    pub event_count: i64,
}

/// A numbered event row: its events end at `sequence`.
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
pub(super) struct NumberedEvents {
    pub event_id: i64,
    pub sequence: i64,
    pub event_count: i32,
}

/// Position in a pair stream: the (date, id) of the last meeting sent.
/// Ordered like the rows (date, then id; PostgreSQL and `Uuid` both compare
/// uuids bytewise).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    pub date: NaiveDate,
    pub id: Uuid,
}

/// One page of a pair lookup.
#[derive(Debug, Clone, Copy)]
pub struct PairQuery {
    pub pair: PartyPair,
    /// Exclusive start: the stream continues after this position.
    pub after: Cursor,
    /// Inclusive bound on the far end of the range of dates.
    pub bound: NaiveDate,
    /// Only meetings that end on or after this day.
    pub ends_from: Option<NaiveDate>,
    pub newest_first: bool,
    pub limit: u32,
}

/// Open ends of a date range, within what PostgreSQL's `date` holds.
const EARLIEST: NaiveDate = NaiveDate::from_ymd_opt(1, 1, 1).expect("valid date");
const LATEST: NaiveDate = NaiveDate::from_ymd_opt(9999, 12, 31).expect("valid date");

impl PairQuery {
    /// The first page of a stream over the meetings of `pair` whose days
    /// overlap `[from, to]`: those that began on or before `to` and end on
    /// or after `from`. Those began at most `MAX_SPAN_DAYS` before `from`,
    /// so the range of dates scanned starts there. Ids are UUIDv7, never
    /// nil nor max, so the sentinel ids of the start exclude nothing.
    pub fn new(
        pair: PartyPair,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
        newest_first: bool,
        limit: u32,
    ) -> Self {
        let earliest = from
            .and_then(|f| f.checked_sub_days(Days::new(limits::MAX_SPAN_DAYS)))
            .unwrap_or(EARLIEST)
            .max(EARLIEST);
        let latest = to.unwrap_or(LATEST);
        let (after, bound) = if newest_first {
            (
                Cursor {
                    date: latest,
                    id: Uuid::max(),
                },
                earliest,
            )
        } else {
            (
                Cursor {
                    date: earliest,
                    id: Uuid::nil(),
                },
                latest,
            )
        };
        Self {
            pair,
            after,
            bound,
            ends_from: from,
            newest_first,
            limit,
        }
    }
}

/// One page of a pair lookup; `more` when another may follow.
#[derive(Debug)]
pub struct PairPage {
    pub rows: Vec<RecordRow>,
    pub more: bool,
}

/// A stored meeting as a lookup returns it.
#[derive(Debug, sqlx::FromRow)]
pub struct RecordRow {
    pub date: NaiveDate,
    pub id: Uuid,
    #[sqlx(try_from = "super::record::Stored")]
    pub record: Vec<u8>,
}

/// A row of the pair index: its record, unless the meeting has too many
/// countries for its pair rows to keep a copy.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct PairRow {
    pub date: NaiveDate,
    pub id: Uuid,
    #[sqlx(try_from = "super::record::MaybeStored")]
    pub record: Option<Vec<u8>>,
}

/// A stored meeting's record, by id.
#[derive(Debug, sqlx::FromRow)]
pub struct IdRecord {
    pub id: Uuid,
    #[sqlx(try_from = "super::record::Stored")]
    pub record: Vec<u8>,
}

/// An idempotency key as stored, with its meeting's record if it exists.
#[derive(Debug, sqlx::FromRow)]
pub struct StoredKey {
    pub request_id: String,
    pub meeting_id: Uuid,
    pub digest: Option<Vec<u8>>,
    #[sqlx(try_from = "super::record::MaybeStored")]
    pub record: Option<Vec<u8>>,
    /// The key's report was merged into the meeting (by a MERGE create or
    /// import, or MergeMeetings since) rather than stored as it.
    pub merged: bool,
}

/// A stored meeting that may describe the same meeting as a report, as
/// matching reads it: its days and match keys (or, where those are not
/// computed yet, its record), not locked.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Candidate {
    pub id: Uuid,
    pub version: i64,
    pub date: NaiveDate,
    pub end_date: Option<NaiveDate>,
    pub country_codes: Vec<String>,
    pub match_keys: Option<Vec<String>>,
    /// Only where `match_keys` is NULL.
    #[sqlx(try_from = "super::record::MaybeStored")]
    pub record: Option<Vec<u8>>,
}

/// A stored meeting locked for a rewrite: what the rewrite needs.
#[derive(Debug, sqlx::FromRow)]
pub struct LockedCandidate {
    pub id: Uuid,
    #[sqlx(try_from = "super::record::Stored")]
    pub record: Vec<u8>,
    pub version: i64,
    pub create_time: DateTime<Utc>,
}

/// A meeting's names and aliases, and their stored tokens.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct NameColumns {
    pub id: Uuid,
    pub participant_names: Vec<String>,
    pub participant_aliases: Vec<String>,
    pub name_tokens: Option<Vec<String>>,
}

/// A meeting's topics and their stored keys.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct TopicKeys {
    pub id: Uuid,
    pub topics: Vec<String>,
    pub topics_lower: Vec<String>,
}
