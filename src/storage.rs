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
pub struct MeetingRow<'a> {
    pub id: Uuid,
    pub meeting: &'a NewMeeting,
    pub create_time: DateTime<Utc>,
    pub record: &'a [u8],
    pub request_id: Option<&'a RequestId>,
}

/// What a create did.
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

    /// Stores a meeting with its participants, topics, sources and pair
    /// index rows in one statement (hence one transaction). With a
    /// request_id already used, stores nothing and returns the stored record.
    #[tracing::instrument(name = "storage.insert_meeting", skip_all, fields(id = %row.id))]
    pub async fn insert_meeting(&self, row: MeetingRow<'_>) -> Result<Inserted> {
        let m = row.meeting;
        let participants = m.participants();
        let pairs = m.country_pairs();
        let location = m.location();
        let inserted: Option<Uuid> = sqlx::query_scalar(INSERT_MEETING)
            .bind(row.id)
            .bind(m.date())
            .bind(location.map_or("", |l| l.city()))
            .bind(
                location
                    .and_then(|l| l.country_code())
                    .map(|c| c.to_string()),
            )
            .bind(m.anniversary().map(|a| a.years() as i32))
            .bind(m.anniversary().map(|a| a.occasion()))
            .bind(m.summary())
            .bind(
                m.country_codes()
                    .iter()
                    .map(|c| c.to_string())
                    .collect::<Vec<_>>(),
            )
            .bind(row.request_id.map(RequestId::as_str))
            .bind(row.record)
            .bind(row.create_time)
            .bind(participants.iter().map(|p| p.name()).collect::<Vec<_>>())
            .bind(participants.iter().map(|p| p.title()).collect::<Vec<_>>())
            .bind(
                participants
                    .iter()
                    .map(|p| p.country_code().to_string())
                    .collect::<Vec<_>>(),
            )
            .bind(m.topics())
            .bind(m.sources().iter().map(|s| s.name()).collect::<Vec<_>>())
            .bind(m.sources().iter().map(|s| s.url()).collect::<Vec<_>>())
            .bind(
                pairs
                    .iter()
                    .map(|p| p.low().to_string())
                    .collect::<Vec<_>>(),
            )
            .bind(
                pairs
                    .iter()
                    .map(|p| p.high().to_string())
                    .collect::<Vec<_>>(),
            )
            .fetch_optional(&self.pool)
            .await?;
        if inserted.is_some() {
            return Ok(Inserted::Created);
        }
        // The insert stopped at the request_id: that row is committed (a
        // concurrent insert with the same key waits for it), so it is visible
        // to this new statement.
        let request_id = row.request_id.map(RequestId::as_str);
        let record: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT record FROM meetings WHERE request_id = $1")
                .bind(request_id)
                .fetch_optional(&self.pool)
                .await?;
        record.map(Inserted::Existing).ok_or_else(|| {
            crate::Error::internal(anyhow::anyhow!(
                "insert of meeting {} stored nothing",
                row.id
            ))
        })
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

const INSERT_MEETING: &str = r#"
WITH meeting AS (
    INSERT INTO meetings (id, date, location_city, location_country_code, anniversary_years,
                          anniversary_occasion, summary, country_codes, request_id, record,
                          create_time, update_time)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)
    ON CONFLICT (request_id) DO NOTHING
    RETURNING id, date
), participants AS (
    INSERT INTO meeting_participants (meeting_id, position, name, title, country_code)
    SELECT meeting.id, p.position, p.name, p.title, p.country_code
    FROM meeting, UNNEST($12::text[], $13::text[], $14::text[])
         WITH ORDINALITY AS p (name, title, country_code, position)
), topics AS (
    INSERT INTO meeting_topics (meeting_id, position, topic)
    SELECT meeting.id, t.position, t.topic
    FROM meeting, UNNEST($15::text[]) WITH ORDINALITY AS t (topic, position)
), sources AS (
    INSERT INTO meeting_sources (meeting_id, position, name, url)
    SELECT meeting.id, s.position, s.name, s.url
    FROM meeting, UNNEST($16::text[], $17::text[]) WITH ORDINALITY AS s (name, url, position)
), pairs AS (
    INSERT INTO meeting_country_pairs (country_low, country_high, date, meeting_id)
    SELECT p.low, p.high, meeting.date, meeting.id
    FROM meeting, UNNEST($18::text[], $19::text[]) AS p (low, high)
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
