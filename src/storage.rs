//! All SQL of the service. Queries are static and parameterised; callers get
//! domain values or the stored record bytes, never rows.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use uuid::Uuid;

use crate::domain::{CountryPair, NewMeeting, RequestId};
use crate::error::Result;

/// Handle to the meetings database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Storage {
    pool: PgPool,
}

/// A meeting ready to be written: the validated meeting, the id and time the
/// service gave it, and its canonical encoded record.
#[derive(Debug)]
pub struct NewRow {
    pub id: Uuid,
    pub meeting: NewMeeting,
    pub create_time: DateTime<Utc>,
    pub record: Vec<u8>,
    pub request_id: Option<RequestId>,
}

/// What a create did with one row.
#[derive(Debug)]
pub enum Inserted {
    /// The meeting was stored.
    Created,
    /// A meeting with the same request_id was already stored; its record.
    Existing(Vec<u8>),
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
    pub pair: CountryPair,
    /// Exclusive start: the stream continues after this position.
    pub after: Cursor,
    /// Inclusive bound on the far end of the range.
    pub bound: NaiveDate,
    pub newest_first: bool,
    pub limit: u32,
}

/// A stored meeting as a lookup returns it.
#[derive(Debug, sqlx::FromRow)]
pub struct RecordRow {
    pub date: NaiveDate,
    pub id: Uuid,
    pub record: Vec<u8>,
}

impl PairQuery {
    /// The cursor from which a stream over `[from, to]` starts. Ids are
    /// UUIDv7, never nil nor max, so the sentinel ids exclude nothing.
    pub fn start(from: NaiveDate, to: NaiveDate, newest_first: bool) -> (Cursor, NaiveDate) {
        if newest_first {
            (
                Cursor {
                    date: to,
                    id: Uuid::max(),
                },
                from,
            )
        } else {
            (
                Cursor {
                    date: from,
                    id: Uuid::nil(),
                },
                to,
            )
        }
    }
}

/// Pool settings.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
}

impl Storage {
    /// Connects and applies pending migrations (embedded in the binary).
    pub async fn connect(
        options: PgConnectOptions,
        settings: &PoolSettings,
    ) -> Result<Self, anyhow::Error> {
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(settings.acquire_timeout)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Self { pool })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Answers whether the database is reachable.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Stores meetings with their participants, topics, sources and pair
    /// index rows in one statement: one transaction, one round trip. A row whose
    /// request_id is already used (by a stored meeting or an earlier row of
    /// the batch) is not stored: its outcome carries the stored record.
    /// Outcomes are in the order of `rows`.
    #[tracing::instrument(name = "storage.insert_meetings", skip_all, fields(rows = rows.len()))]
    pub async fn insert_meetings(&self, rows: &[NewRow]) -> Result<Vec<Inserted>> {
        let created: Vec<Uuid> = bind_batch(sqlx::query_scalar(INSERT_MEETINGS), rows)
            .fetch_all(&self.pool)
            .await?;
        let mut outcomes = Vec::with_capacity(rows.len());
        if created.len() == rows.len() {
            outcomes.extend(rows.iter().map(|_| Inserted::Created));
        } else {
            // Rows stopped at their request_id: read what holds each key. The
            // holder is committed (a concurrent insert of the same key made
            // ours wait for its outcome), so this new statement sees it.
            let created: std::collections::HashSet<Uuid> = created.into_iter().collect();
            let keys: Vec<&str> = rows
                .iter()
                .filter(|r| !created.contains(&r.id))
                .filter_map(|r| r.request_id.as_ref().map(RequestId::as_str))
                .collect();
            let existing: Vec<(String, Vec<u8>)> = sqlx::query_as(
                "SELECT request_id, record FROM meetings WHERE request_id = ANY($1)",
            )
            .bind(&keys)
            .fetch_all(&self.pool)
            .await?;
            let existing: std::collections::HashMap<String, Vec<u8>> =
                existing.into_iter().collect();
            for row in rows {
                if created.contains(&row.id) {
                    outcomes.push(Inserted::Created);
                    continue;
                }
                let record = row
                    .request_id
                    .as_ref()
                    .and_then(|k| existing.get(k.as_str()))
                    .ok_or_else(|| {
                        crate::Error::internal(anyhow::anyhow!(
                            "insert of meeting {} stored nothing",
                            row.id
                        ))
                    })?;
                outcomes.push(Inserted::Existing(record.clone()));
            }
        }
        Ok(outcomes)
    }

    /// The stored record of one meeting.
    #[tracing::instrument(name = "storage.get_meeting", skip(self))]
    pub async fn get_meeting(&self, id: Uuid) -> Result<Option<RecordRow>> {
        Ok(
            sqlx::query_as("SELECT date, id, record FROM meetings WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// One bounded page of a pair lookup, in stream order. Bounded pages keep
    /// a pool connection only while a page is read, so a slow or vanished
    /// client never holds one.
    #[tracing::instrument(name = "storage.pair_page", skip_all, fields(limit = q.limit))]
    pub async fn pair_page(&self, q: &PairQuery) -> Result<Vec<RecordRow>> {
        let sql = if q.newest_first {
            PAIR_PAGE_DESC
        } else {
            PAIR_PAGE_ASC
        };
        Ok(sqlx::query_as(sql)
            .bind(q.pair.low().to_string())
            .bind(q.pair.high().to_string())
            .bind(q.after.date)
            .bind(q.after.id)
            .bind(q.bound)
            .bind(i64::from(q.limit))
            .fetch_all(&self.pool)
            .await?)
    }
}

/// Binds the columns of `rows` as arrays, in the order INSERT_MEETINGS
/// numbers its parameters. Child rows (participants, topics, sources, pairs)
/// are flattened, each tagged with its meeting's id.
fn bind_batch<'q, O>(
    q: sqlx::query::QueryScalar<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>,
    rows: &'q [NewRow],
) -> sqlx::query::QueryScalar<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments> {
    let col = |f: &dyn Fn(&NewRow) -> Option<String>| rows.iter().map(f).collect::<Vec<_>>();
    let mut participants = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut pairs = (Vec::new(), Vec::new(), Vec::new());
    for row in rows {
        let m = &row.meeting;
        for (i, p) in m.participants().iter().enumerate() {
            participants.0.push(row.id);
            participants.1.push(position(i));
            participants.2.push(p.name());
            participants.3.push(p.title());
            participants.4.push(p.country_code().to_string());
        }
        for pair in m.country_pairs() {
            pairs.0.push(row.id);
            pairs.1.push(pair.low().to_string());
            pairs.2.push(pair.high().to_string());
        }
    }
    q.bind(rows.iter().map(|r| r.id).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.meeting.date()).collect::<Vec<_>>())
        .bind(col(&|r| r.meeting.location().map(|l| l.city().to_owned())))
        .bind(col(&|r| {
            r.meeting
                .location()
                .and_then(|l| l.country_code())
                .map(|c| c.to_string())
        }))
        .bind(
            rows.iter()
                .map(|r| r.meeting.anniversary().map(|a| a.years() as i32))
                .collect::<Vec<_>>(),
        )
        .bind(col(&|r| {
            r.meeting.anniversary().map(|a| a.occasion().to_owned())
        }))
        .bind(rows.iter().map(|r| r.meeting.summary()).collect::<Vec<_>>())
        // Arrays of arrays must be rectangular in PostgreSQL: each meeting's
        // list goes as one JSON array text.
        .bind(col(&|r| {
            json_array(r.meeting.topics().iter().map(String::as_str))
        }))
        .bind(col(&|r| {
            json_array(r.meeting.sources().iter().map(|s| s.name()))
        }))
        .bind(col(&|r| {
            json_array(r.meeting.sources().iter().map(|s| s.url()))
        }))
        .bind(col(&|r| {
            let codes: Vec<String> = r
                .meeting
                .country_codes()
                .iter()
                .map(|c| c.to_string())
                .collect();
            Some(codes.join(","))
        }))
        .bind(col(&|r| {
            r.request_id.as_ref().map(|k| k.as_str().to_owned())
        }))
        .bind(rows.iter().map(|r| r.record.as_slice()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.create_time).collect::<Vec<_>>())
        .bind(participants.0)
        .bind(participants.1)
        .bind(participants.2)
        .bind(participants.3)
        .bind(participants.4)
        .bind(pairs.0)
        .bind(pairs.1)
        .bind(pairs.2)
}

/// A JSON array of strings, for a per-row list bound as one text value.
fn json_array<'a>(items: impl Iterator<Item = &'a str>) -> Option<String> {
    serde_json::to_string(&items.collect::<Vec<_>>()).ok()
}

/// 1-based position of a child row.
fn position(i: usize) -> i32 {
    i32::try_from(i + 1).unwrap_or(i32::MAX)
}

const INSERT_MEETINGS: &str = r#"
WITH meeting AS (
    INSERT INTO meetings (id, date, location_city, location_country_code, anniversary_years,
                          anniversary_occasion, summary, topics, source_names, source_urls,
                          country_codes, request_id, record, create_time, update_time)
    SELECT m.id, m.date, coalesce(m.city, ''), m.location_country_code, m.years, m.occasion,
           m.summary,
           ARRAY(SELECT e FROM jsonb_array_elements_text(m.topics::jsonb) WITH ORDINALITY AS x (e, n) ORDER BY n),
           ARRAY(SELECT e FROM jsonb_array_elements_text(m.source_names::jsonb) WITH ORDINALITY AS x (e, n) ORDER BY n),
           ARRAY(SELECT e FROM jsonb_array_elements_text(m.source_urls::jsonb) WITH ORDINALITY AS x (e, n) ORDER BY n),
           string_to_array(m.codes, ','), m.request_id, m.record, m.create_time, m.create_time
    FROM UNNEST($1::uuid[], $2::date[], $3::text[], $4::text[], $5::int4[], $6::text[],
                $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[],
                $13::bytea[], $14::timestamptz[])
         AS m (id, date, city, location_country_code, years, occasion, summary, topics,
               source_names, source_urls, codes, request_id, record, create_time)
    ON CONFLICT (request_id) DO NOTHING
    RETURNING id, date
), participants AS (
    INSERT INTO meeting_participants (meeting_id, position, name, title, country_code)
    SELECT p.meeting_id, p.position, p.name, p.title, p.country_code
    FROM UNNEST($15::uuid[], $16::int4[], $17::text[], $18::text[], $19::text[])
         AS p (meeting_id, position, name, title, country_code)
    WHERE p.meeting_id IN (SELECT id FROM meeting)
), pairs AS (
    INSERT INTO meeting_country_pairs (country_low, country_high, date, meeting_id)
    SELECT p.low, p.high, meeting.date, meeting.id
    FROM UNNEST($20::uuid[], $21::text[], $22::text[]) AS p (meeting_id, low, high)
    JOIN meeting ON meeting.id = p.meeting_id
)
SELECT id FROM meeting
"#;

const PAIR_PAGE_ASC: &str = r#"
SELECT p.date, p.meeting_id AS id, m.record
FROM meeting_country_pairs p
JOIN meetings m ON m.id = p.meeting_id
WHERE p.country_low = $1 AND p.country_high = $2
  AND (p.date, p.meeting_id) > ($3, $4) AND p.date <= $5
ORDER BY p.date, p.meeting_id
LIMIT $6
"#;

const PAIR_PAGE_DESC: &str = r#"
SELECT p.date, p.meeting_id AS id, m.record
FROM meeting_country_pairs p
JOIN meetings m ON m.id = p.meeting_id
WHERE p.country_low = $1 AND p.country_high = $2
  AND (p.date, p.meeting_id) < ($3, $4) AND p.date >= $5
ORDER BY p.date DESC, p.meeting_id DESC
LIMIT $6
"#;
