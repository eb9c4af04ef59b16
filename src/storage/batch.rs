//! Meetings as the columns of one multi-row insert (queries/
//! insert_meetings.sql): one vector a column, built in one pass over the
//! rows, bound as arrays in the order the statement numbers them.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::postgres::PgArguments;
use sqlx::query::QueryScalar;
use uuid::Uuid;

use super::RECORD_COPY_MAX_COUNTRIES;
use super::model::{EventKind, NewRow};
use crate::domain::{NewMeeting, Report};

/// Separates the items of a joined list; `chr(31)` in SQL.
const LIST_SEPARATOR: char = '\u{1f}';

/// The columns of a batch of new meetings ($1 to $18, and $21 to $26), each
/// derived value read from the validated meeting.
#[derive(Debug, Default)]
pub(super) struct MeetingColumns<'a> {
    ids: Vec<Uuid>,
    dates: Vec<NaiveDate>,
    cities: Vec<Option<&'a str>>,
    location_codes: Vec<Option<String>>,
    anniversary_years: Vec<Option<i32>>,
    anniversary_occasions: Vec<Option<&'a str>>,
    topics: Vec<String>,
    /// The meeting's party keys (`Party::key`), joined by commas.
    party_keys: Vec<String>,
    request_ids: Vec<Option<&'a str>>,
    /// Packed (`record::pack`).
    records: Vec<Vec<u8>>,
    create_times: Vec<DateTime<Utc>>,
    update_times: Vec<DateTime<Utc>>,
    versions: Vec<i64>,
    searches: Vec<String>,
    participant_names: Vec<String>,
    participant_titles: Vec<String>,
    participant_codes: Vec<String>,
    topic_keys: Vec<String>,
    request_digests: Vec<Option<&'a [u8]>>,
    end_dates: Vec<Option<NaiveDate>>,
    formats: Vec<i16>,
    name_tokens: Vec<String>,
    participant_aliases: Vec<String>,
    match_keys: Vec<String>,
}

impl<'a> MeetingColumns<'a> {
    pub(super) fn of(rows: &[&'a NewRow]) -> Self {
        let mut c = Self::default();
        for row in rows {
            let m = &row.meeting;
            c.ids.push(row.id);
            c.dates.push(m.date());
            c.cities.push(m.location().map(|l| l.city()));
            c.location_codes.push(
                m.location()
                    .and_then(|l| l.country_code())
                    .map(|code| code.to_string()),
            );
            c.anniversary_years.push(
                m.anniversary()
                    .map(|a| i32::try_from(a.years()).unwrap_or(i32::MAX)),
            );
            c.anniversary_occasions
                .push(m.anniversary().map(|a| a.occasion()));
            c.topics.push(joined(m.topics()));
            c.party_keys.push(
                m.parties()
                    .iter()
                    .map(|p| p.key())
                    .collect::<Vec<_>>()
                    .join(","),
            );
            c.request_ids
                .push(row.request_id.as_ref().map(|k| k.as_str()));
            c.records.push(super::record::pack(&row.record));
            c.create_times.push(row.create_time);
            c.update_times.push(row.update_time);
            c.versions.push(row.version);
            c.searches.push(search_text(m));
            c.participant_names
                .push(joined(m.participants().iter().map(|p| p.name())));
            c.participant_titles
                .push(joined(m.participants().iter().map(|p| p.title())));
            c.participant_codes
                .push(joined(m.participants().iter().map(|p| p.party().key())));
            c.topic_keys.push(joined(m.topic_keys()));
            c.request_digests
                .push(row.request_digest.as_ref().map(|d| d.as_slice()));
            c.end_dates.push(m.end_date());
            c.formats.push(format_column(m));
            // One `NameKey` a spelling for both derived columns.
            let report = Report::of(m);
            c.name_tokens.push(joined(report.name_tokens()));
            c.match_keys.push(joined(report.match_keys()));
            c.participant_aliases
                .push(joined(m.participants().iter().flat_map(|p| p.aliases())));
        }
        c
    }

    /// Binds the columns as insert_meetings.sql numbers them.
    pub(super) fn bind<O>(
        self,
        q: QueryScalar<'a, sqlx::Postgres, O, PgArguments>,
    ) -> QueryScalar<'a, sqlx::Postgres, O, PgArguments> {
        self.bind_for(q, EventKind::Created)
    }

    /// Binds the columns for a statement numbered as insert_meetings.sql,
    /// with `kind` as its events' kind (update_meetings.sql: UPDATED).
    pub(super) fn bind_for<O>(
        self,
        q: QueryScalar<'a, sqlx::Postgres, O, PgArguments>,
        kind: EventKind,
    ) -> QueryScalar<'a, sqlx::Postgres, O, PgArguments> {
        q.bind(self.ids)
            .bind(self.dates)
            .bind(self.cities)
            .bind(self.location_codes)
            .bind(self.anniversary_years)
            .bind(self.anniversary_occasions)
            .bind(self.topics)
            .bind(self.party_keys)
            .bind(self.request_ids)
            .bind(self.records)
            .bind(self.create_times)
            .bind(self.update_times)
            .bind(self.versions)
            .bind(self.searches)
            .bind(self.participant_names)
            .bind(self.participant_titles)
            .bind(self.participant_codes)
            .bind(self.topic_keys)
            .bind(kind.code())
            .bind(RECORD_COPY_MAX_COUNTRIES)
            .bind(self.request_digests)
            .bind(self.end_dates)
            .bind(self.formats)
            .bind(self.name_tokens)
            .bind(self.participant_aliases)
            .bind(self.match_keys)
    }
}

/// The meeting's format as stored: MeetingFormat's number.
pub(super) fn format_column(m: &NewMeeting) -> i16 {
    i16::try_from(m.format().number()).unwrap_or(0)
}

/// What full-text search sees of a meeting.
pub(super) fn search_text(m: &NewMeeting) -> String {
    let mut text = m.summary().to_owned();
    for t in m.topics() {
        text.push(' ');
        text.push_str(t);
    }
    for p in m.participants() {
        text.push(' ');
        text.push_str(p.name());
        text.push(' ');
        text.push_str(p.title());
        for alias in p.aliases() {
            text.push(' ');
            text.push_str(alias);
        }
    }
    text
}

/// A per-meeting list bound as one text value (arrays of arrays must be
/// rectangular in PostgreSQL): each item preceded by U+001F, so that an
/// empty list, a list of one empty item (a source without URL) and longer
/// lists all differ. Items are validated single-line text, which has no
/// control characters, so the separator never occurs inside one.
pub(super) fn joined(items: impl IntoIterator<Item = impl AsRef<str>>) -> String {
    let mut joined = String::new();
    for item in items {
        let item = item.as_ref();
        debug_assert!(!item.contains(LIST_SEPARATOR), "validated text");
        joined.push(LIST_SEPARATOR);
        joined.push_str(item);
    }
    joined
}
