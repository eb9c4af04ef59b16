//! All SQL of the service. Queries are static and parameterised; callers get
//! domain values or the stored record bytes, never rows.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::domain::{
    CountryCode, CountryPair, NewMeeting, RequestId, TOPIC_KEY_VERSION, topic_key,
};
use crate::error::Result;

/// Key material, never printed.
#[derive(Clone)]
struct Secret(Arc<[u8]>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Handle to the meetings database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Storage {
    pool: PgPool,
    /// This deployment's key for signing page tokens (shared by every
    /// instance on the database).
    page_token_key: Secret,
    /// Wakes this instance's event sequencer when a write added events.
    events_written: Arc<Notify>,
}

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

/// Kinds of change-feed events, as stored (and as numbered in the proto's
/// MeetingEventKind).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i16)]
pub enum EventKind {
    Created = 1,
    Updated = 2,
    Deleted = 3,
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
    },
}

/// Whether a key was used for the same request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked {
    /// The same meeting, as asked then.
    Same,
    /// Another meeting.
    Other,
    /// Not known: the key was stored without what was asked (before keys
    /// remembered it); compare with the meeting as it is now.
    Unknown,
}

/// A transaction that reads, locks and rewrites one meeting.
pub struct Tx {
    tx: sqlx::Transaction<'static, sqlx::Postgres>,
    events_written: Arc<Notify>,
    wrote_events: bool,
}

/// A stored meeting locked for a change.
#[derive(Debug, sqlx::FromRow)]
pub struct LockedMeeting {
    pub record: Vec<u8>,
    pub version: i64,
    pub request_id: Option<String>,
    pub create_time: DateTime<Utc>,
}

impl Tx {
    /// Reads and locks a meeting until commit.
    pub async fn lock_meeting(&mut self, id: Uuid) -> Result<Option<LockedMeeting>> {
        Ok(sqlx::query_as(
            "SELECT record, version, request_id, create_time FROM meetings WHERE id = $1 FOR UPDATE",
        )
        .bind(id)
        .fetch_optional(&mut *self.tx)
        .await?)
    }

    /// Replaces a locked meeting with `row` (same id): its columns, child
    /// rows, pair rows and search document, with an UPDATED event.
    pub async fn replace_meeting(&mut self, row: &NewRow) -> Result<()> {
        sqlx::query(PREPARE_REWRITE)
            .bind(row.id)
            .execute(&mut *self.tx)
            .await?;
        bind_batch(
            sqlx::query_scalar::<_, Uuid>(UPDATE_MEETINGS),
            &[row],
            EventKind::Updated,
        )
        .fetch_one(&mut *self.tx)
        .await?;
        self.wrote_events = true;
        Ok(())
    }

    /// Deletes a locked meeting and its child rows, with a DELETED event.
    pub async fn delete_meeting(&mut self, id: Uuid) -> Result<()> {
        sqlx::query(PREPARE_REWRITE)
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        sqlx::query(DELETE_MEETING)
            .bind(id)
            .bind(EventKind::Deleted as i16)
            .execute(&mut *self.tx)
            .await?;
        self.wrote_events = true;
        Ok(())
    }

    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        if self.wrote_events {
            self.events_written.notify_one();
        }
        Ok(())
    }
}

/// Filters of ListMeetings, validated.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ListFilter {
    pub country_code: Option<CountryCode>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    /// Lower-cased.
    pub topic: Option<String>,
    pub query: Option<String>,
}

/// What GetCountryPairSummary reports, as stored.
#[derive(Debug)]
pub struct PairSummary {
    pub count: i64,
    pub first: Option<NaiveDate>,
    pub last: Option<NaiveDate>,
    /// (topic as first written, meetings), most frequent first.
    pub topics: Vec<(String, i64)>,
    /// (occasion, implied year, meetings, earliest meeting id), oldest first.
    pub anniversaries: Vec<(String, i32, i64, Uuid)>,
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
    pub record: Option<Vec<u8>>,
    pub event_time: DateTime<Utc>,
}

/// Meetings of at most this many countries keep a copy of their record in
/// each pair row (at most 6 copies); larger ones' pair rows point to the
/// meeting (see `child_rows!`).
pub const RECORD_COPY_MAX_COUNTRIES: i32 = 4;

/// Advisory lock key of the event sequencer ("meetings" in ASCII).
const SEQUENCER_LOCK: i64 = 0x6d65_6574_696e_6773;
/// NOTIFY channel the sequencer wakes watchers on.
const EVENTS_CHANNEL: &str = "meetings_events";

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

/// An idempotency key as stored, with its meeting's record if it exists.
#[derive(Debug, sqlx::FromRow)]
struct StoredKey {
    request_id: String,
    meeting_id: Uuid,
    digest: Option<Vec<u8>>,
    record: Option<Vec<u8>>,
}

/// A meeting's topics and their stored keys.
#[derive(Debug, sqlx::FromRow)]
struct TopicKeys {
    id: Uuid,
    topics: Vec<String>,
    topics_lower: Vec<String>,
}

/// Most bytes of records in one page of a stream (a pair's or a
/// watcher's): a page ends early past it.
pub const PAGE_BYTES: usize = 1024 * 1024;

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
        // NOTICEs (a search word too long to index, say) are not ours to
        // log: they would reach the log at INFO, once per call.
        let options = options.options([("client_min_messages", "warning")]);
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(settings.acquire_timeout)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        let page_token_key = Self::secret(&pool, "page_token_key").await?;
        let storage = Self {
            pool,
            page_token_key,
            events_written: Arc::new(Notify::new()),
        };
        storage.refresh_topic_keys().await?;
        Ok(storage)
    }

    /// Recomputes the stored topic keys (`topics_lower`) with the service's
    /// `topic_key` when they were made by an earlier rule, in pages of
    /// meetings by id, then records the rule's version. Runs at start,
    /// before serving; it is idempotent, so an interrupted run is simply
    /// run again at the next start.
    pub async fn refresh_topic_keys(&self) -> Result<u64, anyhow::Error> {
        const NAME: &str = "topics_lower";
        const PAGE: i64 = 1_000;
        let stored: Option<i32> =
            sqlx::query_scalar("SELECT version FROM derived_value_versions WHERE name = $1")
                .bind(NAME)
                .fetch_optional(&self.pool)
                .await?;
        if stored.is_some_and(|v| v >= TOPIC_KEY_VERSION) {
            return Ok(0);
        }
        tracing::info!(
            from = stored.unwrap_or(1),
            to = TOPIC_KEY_VERSION,
            "recomputing the stored topic keys"
        );
        let mut after = Uuid::nil();
        let mut changed = 0u64;
        loop {
            let rows: Vec<TopicKeys> = sqlx::query_as(
                "SELECT id, topics, topics_lower FROM meetings WHERE id > $1 ORDER BY id LIMIT $2",
            )
            .bind(after)
            .bind(PAGE)
            .fetch_all(&self.pool)
            .await?;
            let Some(last) = rows.last() else { break };
            after = last.id;
            let mut stale = (Vec::new(), Vec::new(), Vec::new());
            for row in &rows {
                let keys: Vec<String> = row.topics.iter().map(|t| topic_key(t)).collect();
                if keys != row.topics_lower {
                    stale.0.push(row.id);
                    stale
                        .1
                        .push(joined_list(row.topics.iter()).unwrap_or_default());
                    stale.2.push(joined_list(keys.iter()).unwrap_or_default());
                }
            }
            if !stale.0.is_empty() {
                // Only rows whose topics are still those read: a meeting
                // updated meanwhile got its keys from its update.
                let updated = sqlx::query(
                    "UPDATE meetings m SET topics_lower = (string_to_array(k.keys, chr(31)))[2:] \
                     FROM UNNEST($1::uuid[], $2::text[], $3::text[]) AS k (id, topics, keys) \
                     WHERE m.id = k.id AND m.topics = (string_to_array(k.topics, chr(31)))[2:]",
                )
                .bind(&stale.0)
                .bind(&stale.1)
                .bind(&stale.2)
                .execute(&self.pool)
                .await?;
                changed += updated.rows_affected();
            }
        }
        sqlx::query(
            "INSERT INTO derived_value_versions (name, version) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET version = EXCLUDED.version",
        )
        .bind(NAME)
        .bind(TOPIC_KEY_VERSION)
        .execute(&self.pool)
        .await?;
        tracing::info!(changed, "stored topic keys recomputed");
        Ok(changed)
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The key page tokens are signed with.
    pub fn page_token_key(&self) -> &[u8] {
        &self.page_token_key.0
    }

    /// A random secret of this deployment, made by the first instance that
    /// asks for it and read by every later one.
    async fn secret(pool: &PgPool, name: &str) -> Result<Secret, anyhow::Error> {
        let mut fresh = [0u8; 32];
        getrandom::fill(&mut fresh).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
        sqlx::query(
            "INSERT INTO service_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(&fresh[..])
        .execute(pool)
        .await?;
        let value: Vec<u8> =
            sqlx::query_scalar("SELECT value FROM service_secrets WHERE name = $1")
                .bind(name)
                .fetch_one(pool)
                .await?;
        Ok(Secret(Arc::from(value)))
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
        // Rows are inserted in request_id order. An insert that meets a key
        // another uncommitted batch holds waits for that batch; when every
        // batch takes its keys in the same order, no two wait on each other
        // (which PostgreSQL would end as a deadlock). The sort is stable, so
        // of two rows with one key the earlier one is still stored.
        let mut ordered: Vec<&NewRow> = rows.iter().collect();
        ordered.sort_by(|a, b| a.request_id.cmp(&b.request_id));
        let mut attempt = 1;
        let created: Vec<Uuid> = loop {
            let result = bind_batch(
                sqlx::query_scalar(INSERT_MEETINGS),
                &ordered,
                EventKind::Created,
            )
            .fetch_all(&self.pool)
            .await;
            match result {
                // Not expected with ordered keys; kept as a safety net should
                // another lock order appear. The statement is atomic: run it
                // again.
                Err(sqlx::Error::Database(e))
                    if e.code().as_deref() == Some("40P01") && attempt < 3 =>
                {
                    tracing::debug!(attempt, "insert deadlocked with another batch; retrying");
                    attempt += 1;
                }
                other => break other?,
            }
        };
        if !created.is_empty() {
            self.events_written.notify_one();
        }
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
            let existing: Vec<StoredKey> = sqlx::query_as(
                "SELECT k.request_id, k.meeting_id, k.digest, m.record \
                 FROM meeting_requests k LEFT JOIN meetings m ON m.id = k.meeting_id \
                 WHERE k.request_id = ANY($1)",
            )
            .bind(&keys)
            .fetch_all(&self.pool)
            .await?;
            let existing: std::collections::HashMap<String, StoredKey> = existing
                .into_iter()
                .map(|k| (k.request_id.clone(), k))
                .collect();
            for row in rows {
                if created.contains(&row.id) {
                    outcomes.push(Inserted::Created);
                    continue;
                }
                let key = row
                    .request_id
                    .as_ref()
                    .and_then(|k| existing.get(k.as_str()))
                    .ok_or_else(|| {
                        crate::Error::internal(anyhow::anyhow!(
                            "insert of meeting {} stored nothing",
                            row.id
                        ))
                    })?;
                let asked = match (&key.digest, &row.request_digest) {
                    (Some(stored), Some(asked)) if stored.as_slice() == asked.as_slice() => {
                        Asked::Same
                    }
                    (Some(_), _) => Asked::Other,
                    (None, _) => Asked::Unknown,
                };
                outcomes.push(Inserted::Existing {
                    meeting_id: key.meeting_id,
                    record: key.record.clone(),
                    asked,
                });
            }
        }
        Ok(outcomes)
    }

    /// Starts a transaction for a read-modify-write of one meeting.
    pub async fn begin(&self) -> Result<Tx> {
        Ok(Tx {
            tx: self.pool.begin().await?,
            events_written: self.events_written.clone(),
            wrote_events: false,
        })
    }

    /// One page of ListMeetings, newest first, after `after` (exclusive):
    /// up to `limit` rows, fewer if their records pass `max_bytes`. Rows
    /// are read as they arrive, so a page never holds much more than
    /// `max_bytes` whatever the records' sizes; the row that passes the
    /// budget and the one after it are returned too, the last as the sign
    /// that more follow.
    #[tracing::instrument(name = "storage.list_meetings", skip_all, fields(limit))]
    pub async fn list_meetings(
        &self,
        filter: &ListFilter,
        after: Option<Cursor>,
        limit: u32,
        max_bytes: usize,
    ) -> Result<Vec<RecordRow>> {
        use futures_util::TryStreamExt;
        let (date, id) = after.map_or((None, None), |c| (Some(c.date), Some(c.id)));
        let mut rows = sqlx::query_as::<_, RecordRow>(LIST_MEETINGS)
            .bind(date)
            .bind(id)
            .bind(filter.country_code.map(|c| c.to_string()))
            .bind(filter.from)
            .bind(filter.to)
            .bind(filter.topic.as_deref())
            .bind(filter.query.as_deref())
            .bind(i64::from(limit))
            .fetch(&self.pool);
        let mut page = Vec::new();
        let mut bytes = 0;
        while let Some(row) = rows.try_next().await? {
            let over = bytes > max_bytes;
            bytes += row.record.len();
            page.push(row);
            if over {
                break;
            }
        }
        Ok(page)
    }

    /// Counts, dates, top topics and anniversaries of a pair's meetings.
    #[tracing::instrument(name = "storage.pair_summary", skip(self))]
    pub async fn pair_summary(&self, pair: CountryPair, top_topics: u32) -> Result<PairSummary> {
        let (count, first, last): (i64, Option<NaiveDate>, Option<NaiveDate>) = sqlx::query_as(
            "SELECT count(*), min(date), max(date) FROM meeting_country_pairs \
             WHERE country_low = $1 AND country_high = $2",
        )
        .bind(pair.low().to_string())
        .bind(pair.high().to_string())
        .fetch_one(&self.pool)
        .await?;
        let topics: Vec<(String, i64)> = sqlx::query_as(PAIR_TOP_TOPICS)
            .bind(pair.low().to_string())
            .bind(pair.high().to_string())
            .bind(i64::from(top_topics))
            .fetch_all(&self.pool)
            .await?;
        let anniversaries: Vec<(String, i32, i64, Uuid)> = sqlx::query_as(PAIR_ANNIVERSARIES)
            .bind(pair.low().to_string())
            .bind(pair.high().to_string())
            .fetch_all(&self.pool)
            .await?;
        Ok(PairSummary {
            count,
            first,
            last,
            topics,
            anniversaries,
        })
    }

    /// Numbers the events of committed transactions, in one serial step
    /// across all instances (an advisory lock), and wakes watchers with a
    /// NOTIFY when it numbered any. Returns how many it numbered; 0 also
    /// when another instance holds the lock.
    pub async fn sequence_events(&self) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
            .bind(SEQUENCER_LOCK)
            .fetch_one(&mut *tx)
            .await?;
        if !locked {
            return Ok(0);
        }
        // Two steps with explicit ids, so that the numbering is always a few
        // primary-key lookups: as one UPDATE ... FROM (pending rows), stale
        // statistics made the planner hash-join the whole events table.
        let pending: Vec<(i64, i64)> = sqlx::query_as(PENDING_EVENTS).fetch_all(&mut *tx).await?;
        // Each row with the running count of events up to and including it:
        // where its last number falls in the range reserved for the step.
        let (rows, through): (Vec<i64>, Vec<i64>) = pending
            .iter()
            .scan(0, |total, &(event_id, events)| {
                *total += events;
                Some((event_id, *total))
            })
            .unzip();
        let numbered = through.last().copied().unwrap_or(0);
        if numbered > 0 {
            sqlx::query(NUMBER_EVENTS)
                .bind(&rows)
                .bind(&through)
                .bind(numbered)
                .execute(&mut *tx)
                .await?;
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(EVENTS_CHANNEL)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(u64::try_from(numbered).unwrap_or(0))
    }

    /// Waits until this instance wrote events (or `timeout` passes).
    pub async fn events_written(&self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.events_written.notified()).await;
    }

    /// Deletes the events numbered before the first one within `retention`,
    /// with their records.
    pub async fn expire_events(&self, retention: Duration) -> Result<u64> {
        let cutoff =
            Utc::now() - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
        let expired: i64 = sqlx::query_scalar(EXPIRE_EVENTS)
            .bind(cutoff)
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(expired).unwrap_or(0))
    }

    /// The next page of the change feed after the number `after`: the
    /// events numbered up to `limit` numbers further (of one pair, if set),
    /// in order. The page covers numbers up to its `through` whether or not
    /// any of them were the pair's; `through == after` when nothing is
    /// numbered after `after`.
    pub async fn events_after(
        &self,
        after: i64,
        pair: Option<CountryPair>,
        limit: u32,
    ) -> Result<EventPage> {
        let rows: Vec<(i64, i64, i32)> = sqlx::query_as(EVENT_ROWS_AFTER)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        let (rows, through) = page_span(after, &rows, limit);
        let mut page = EventPage {
            events: Vec::new(),
            through,
        };
        if rows.is_empty() {
            return Ok(page);
        }
        use futures_util::TryStreamExt;
        let mut events = sqlx::query_as::<_, EventRow>(EVENTS_IN)
            .bind(&rows)
            .bind(after)
            .bind(through)
            .bind(pair.map(|p| vec![p.low().to_string(), p.high().to_string()]))
            .fetch(&self.pool);
        let mut bytes = 0;
        while let Some(event) = events.try_next().await? {
            bytes += event.record.as_ref().map_or(0, Vec::len);
            let sequence = event.sequence;
            page.events.push(event);
            if bytes >= PAGE_BYTES {
                // The page ends at this event; the next starts after it.
                page.through = sequence;
                break;
            }
        }
        Ok(page)
    }

    /// The oldest retained sequence number, if any event is numbered: the
    /// first of the first numbered row.
    pub async fn oldest_event(&self) -> Result<Option<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT sequence - event_count + 1 FROM meeting_events \
             WHERE sequence IS NOT NULL ORDER BY sequence LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The newest sequence number given to an event (0 before the first).
    pub async fn newest_sequence(&self) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM meeting_event_sequence",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    /// A listener for the sequencer's wake-ups (its own connection).
    pub async fn listen_events(&self) -> Result<sqlx::postgres::PgListener> {
        let mut listener = sqlx::postgres::PgListener::connect_with(&self.pool).await?;
        listener.listen(EVENTS_CHANNEL).await?;
        Ok(listener)
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

    /// The stored records of the meetings among `ids` that exist, in no
    /// particular order: one statement for many concurrent GetMeeting calls.
    #[tracing::instrument(name = "storage.get_meetings", skip_all, fields(ids = ids.len()))]
    pub async fn get_meetings(&self, ids: &[Uuid]) -> Result<Vec<(Uuid, Vec<u8>)>> {
        Ok(
            sqlx::query_as("SELECT id, record FROM meetings WHERE id = ANY($1)")
                .bind(ids)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// One bounded page of a pair lookup, in stream order. Bounded pages keep
    /// a pool connection only while a page is read, so a slow or vanished
    /// client never holds one.
    #[tracing::instrument(name = "storage.pair_page", skip_all, fields(limit = q.limit))]
    /// A page ends early once its records pass `PAGE_BYTES`, so that a
    /// stream holds about that much at most whatever the meetings' sizes.
    pub async fn pair_page(&self, q: &PairQuery) -> Result<PairPage> {
        use futures_util::TryStreamExt;
        let sql = if q.newest_first {
            PAIR_PAGE_DESC
        } else {
            PAIR_PAGE_ASC
        };
        let mut rows = sqlx::query_as::<_, RecordRow>(sql)
            .bind(q.pair.low().to_string())
            .bind(q.pair.high().to_string())
            .bind(q.after.date)
            .bind(q.after.id)
            .bind(q.bound)
            .bind(i64::from(q.limit))
            .fetch(&self.pool);
        let mut page = PairPage {
            rows: Vec::new(),
            more: false,
        };
        let mut bytes = 0;
        while let Some(row) = rows.try_next().await? {
            bytes += row.record.len();
            page.rows.push(row);
            if bytes >= PAGE_BYTES {
                page.more = true;
                break;
            }
        }
        page.more |= page.rows.len() >= q.limit as usize;
        Ok(page)
    }
}

/// Binds the columns of `rows` as arrays, in the order INSERT_MEETINGS
/// numbers its parameters. Lists (topics, sources, participants) go as one
/// text per meeting (see joined_list); the statement makes the pair rows
/// from each meeting's countries.
fn bind_batch<'q, O>(
    q: sqlx::query::QueryScalar<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>,
    rows: &[&'q NewRow],
    kind: EventKind,
) -> sqlx::query::QueryScalar<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments> {
    let rows = || rows.iter().copied();
    let col = |f: &dyn Fn(&NewRow) -> Option<String>| rows().map(f).collect::<Vec<_>>();
    q.bind(rows().map(|r| r.id).collect::<Vec<_>>())
        .bind(rows().map(|r| r.meeting.date()).collect::<Vec<_>>())
        .bind(col(&|r| r.meeting.location().map(|l| l.city().to_owned())))
        .bind(col(&|r| {
            r.meeting
                .location()
                .and_then(|l| l.country_code())
                .map(|c| c.to_string())
        }))
        .bind(
            rows()
                .map(|r| r.meeting.anniversary().map(|a| a.years() as i32))
                .collect::<Vec<_>>(),
        )
        .bind(col(&|r| {
            r.meeting.anniversary().map(|a| a.occasion().to_owned())
        }))
        .bind(rows().map(|r| r.meeting.summary()).collect::<Vec<_>>())
        // Each meeting's lists go as one text each (see joined_list).
        .bind(col(&|r| {
            joined_list(r.meeting.topics().iter().map(String::as_str))
        }))
        .bind(col(&|r| {
            joined_list(r.meeting.sources().iter().map(|s| s.name()))
        }))
        .bind(col(&|r| {
            joined_list(r.meeting.sources().iter().map(|s| s.url()))
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
        .bind(rows().map(|r| r.record.as_slice()).collect::<Vec<_>>())
        .bind(rows().map(|r| r.create_time).collect::<Vec<_>>())
        .bind(rows().map(|r| r.update_time).collect::<Vec<_>>())
        .bind(rows().map(|r| r.version).collect::<Vec<_>>())
        .bind(rows().map(|r| search_text(&r.meeting)).collect::<Vec<_>>())
        .bind(col(&|r| {
            joined_list(r.meeting.participants().iter().map(|p| p.name()))
        }))
        .bind(col(&|r| {
            joined_list(r.meeting.participants().iter().map(|p| p.title()))
        }))
        .bind(col(&|r| {
            joined_list(r.meeting.participants().iter().map(|p| p.country_code()))
        }))
        .bind(col(&|r| joined_list(r.meeting.topics_lower().iter())))
        .bind(kind as i16)
        .bind(RECORD_COPY_MAX_COUNTRIES)
        .bind(
            rows()
                .map(|r| r.request_digest.map(|d| d.to_vec()))
                .collect::<Vec<_>>(),
        )
}

/// The event rows (ids) a page after the number `after` reads, and the
/// number it ends at: `limit` numbers from the first of `rows` ((event_id,
/// number of its last event, events) of the rows numbered after `after`, in
/// order). A row's events are numbered consecutively; numbers between rows
/// may be missing (a numbering step that failed after reserving them).
fn page_span(after: i64, rows: &[(i64, i64, i32)], limit: u32) -> (Vec<i64>, i64) {
    let mut ids = Vec::new();
    let mut through = after;
    let mut left = i64::from(limit);
    for &(event_id, last, count) in rows {
        // The last number before this row's share of the page.
        let start = after.max(last - i64::from(count));
        ids.push(event_id);
        if last - start >= left {
            through = start + left;
            break;
        }
        left -= last - start;
        through = last;
    }
    (ids, through)
}

/// What full-text search sees of a meeting.
fn search_text(m: &NewMeeting) -> String {
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
    }
    text
}

/// A per-row list bound as one text value (arrays of arrays must be
/// rectangular in PostgreSQL): each item preceded by U+001F, so that an
/// empty list, a list of one empty item (a source without URL) and longer
/// lists all differ. Items are validated single-line text, which has no
/// control characters, so the separator never occurs inside one.
fn joined_list(items: impl Iterator<Item = impl AsRef<str>>) -> Option<String> {
    let mut joined = String::new();
    for item in items {
        let item = item.as_ref();
        debug_assert!(!item.contains(LIST_SEPARATOR), "validated text");
        joined.push(LIST_SEPARATOR);
        joined.push_str(item);
    }
    Some(joined)
}

/// Separates the items of a `joined_list`; `chr(31)` in `text_list!`.
const LIST_SEPARATOR: char = '\u{1f}';

/// The meetings of a batch as rows: parameters $1 to $21, as bound by
/// `bind_batch`.
macro_rules! batch_rows {
    () => {
        r#"UNNEST($1::uuid[], $2::date[], $3::text[], $4::text[], $5::int4[], $6::text[],
                $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[],
                $13::bytea[], $14::timestamptz[], $15::timestamptz[], $16::int8[], $17::text[],
                $18::text[], $19::text[], $20::text[], $21::text[])
         AS m (id, date, city, location_country_code, years, occasion, summary, topics,
               source_names, source_urls, codes, request_id, record, create_time,
               update_time, version, search, participant_names, participant_titles,
               participant_country_codes, topics_lower)"#
    };
}

/// A per-meeting list passed as one text (see `joined_list`), as a text[]
/// in its order: split at U+001F, dropping the empty piece before the first
/// separator. One scan of the text, where parsing it as JSON took a subplan
/// and a sort per list and row.
macro_rules! text_list {
    ($column:literal) => {
        concat!("(string_to_array(m.", $column, ", chr(31)))[2:]")
    };
}

/// After a `meeting` CTE that returns (id, date, country_codes, record,
/// event_id), event_id the same for every row (the statement's `event`):
/// its pair rows and change-feed event row (kind $22, one
/// event per meeting, in id order: UUIDv7, so the order they were made in).
macro_rules! child_rows {
    () => {
        r#"
), pairs AS (
    -- Every pair of the meeting's (sorted, distinct) countries. A pair row
    -- keeps a copy of the record for meetings of at most $23 countries, so
    -- a pair scan reads nothing else; a larger meeting's pair rows point
    -- to it instead, so one meeting never writes more than $23 choose 2
    -- copies of its record.
    INSERT INTO meeting_country_pairs (country_low, country_high, date, meeting_id, record)
    SELECT low.code, high.code, meeting.date, meeting.id,
           CASE WHEN cardinality(meeting.country_codes) <= $23::int4 THEN meeting.record END
    FROM meeting
    CROSS JOIN LATERAL unnest(meeting.country_codes) AS low (code)
    CROSS JOIN LATERAL unnest(meeting.country_codes) AS high (code)
    WHERE low.code < high.code
), events AS (
    -- An update also records each meeting's countries before it, so that a
    -- pair's watchers see a meeting leave the pair (kind 2, UPDATED).
    INSERT INTO meeting_events (event_id, kind, meeting_ids, meeting_codes, previous_codes,
                                event_count)
    SELECT min(meeting.event_id), $22::int2, array_agg(meeting.id ORDER BY meeting.id),
           array_agg(array_to_string(meeting.country_codes, ',') ORDER BY meeting.id),
           CASE WHEN $22::int2 = 2
                THEN array_agg(array_to_string(meeting.previous_codes, ',') ORDER BY meeting.id)
           END,
           count(*)
    FROM meeting
    HAVING count(*) > 0
), event_records AS (
    -- A CREATED event (kind 1, EventKind::Created) stores no record: it is
    -- the meeting's until its first rewrite (PREPARE_REWRITE copies it then).
    INSERT INTO meeting_event_records (event_id, meeting_id, record)
    SELECT meeting.event_id, meeting.id, meeting.record FROM meeting WHERE $22::int2 <> 1
)
SELECT id FROM meeting
"#
    };
}

/// The change-feed row of a write statement: one id, evaluated once (a CTE
/// with a volatile function is materialised).
macro_rules! event_row {
    () => {
        "WITH event AS (SELECT nextval('meeting_events_event_id_seq') AS id), "
    };
}

/// Inserts meetings with their child rows and change-feed events. A row
/// with a request_id is stored only if its key is new: keys ($12, with the
/// digests $24 of what was asked) outlive their meetings.
const INSERT_MEETINGS: &str = concat!(
    event_row!(),
    r#"
keys AS (
    INSERT INTO meeting_requests (request_id, meeting_id, digest)
    SELECT k.request_id, k.id, k.digest
    FROM UNNEST($1::uuid[], $12::text[], $24::bytea[]) AS k (id, request_id, digest)
    WHERE k.request_id IS NOT NULL
    ON CONFLICT (request_id) DO NOTHING
    RETURNING meeting_id
),
meeting AS (
    INSERT INTO meetings (id, date, location_city, location_country_code, anniversary_years,
                          anniversary_occasion, summary, topics, source_names, source_urls,
                          country_codes, request_id, record, create_time, update_time, version,
                          search, participant_names, participant_titles,
                          participant_country_codes, topics_lower, created_event_id)
    SELECT m.id, m.date, coalesce(m.city, ''), m.location_country_code, m.years, m.occasion,
           m.summary, "#,
    text_list!("topics"),
    ", ",
    text_list!("source_names"),
    ", ",
    text_list!("source_urls"),
    r#",
           string_to_array(m.codes, ','), m.request_id, m.record, m.create_time, m.update_time,
           m.version, to_tsvector('simple', m.search), "#,
    text_list!("participant_names"),
    ", ",
    text_list!("participant_titles"),
    ", ",
    text_list!("participant_country_codes"),
    ", ",
    text_list!("topics_lower"),
    r#", event.id
    FROM "#,
    batch_rows!(),
    r#", event
    WHERE m.request_id IS NULL OR m.id IN (SELECT meeting_id FROM keys)
    ON CONFLICT (request_id) WHERE request_id IS NOT NULL DO NOTHING
    RETURNING id, date, country_codes, record, created_event_id AS event_id,
              NULL::text[] AS previous_codes"#,
    child_rows!()
);

/// Rewrites meetings in place (their old pair rows deleted
/// first), keeping the row so that concurrent writers waiting on its lock
/// see the new version rather than a deleted row.
const UPDATE_MEETINGS: &str = concat!(
    event_row!(),
    r#"
previous AS (
    -- The statement's snapshot: the meetings' countries before the update.
    SELECT id, country_codes FROM meetings WHERE id = ANY($1::uuid[])
),
meeting AS (
    UPDATE meetings AS t
    SET date = m.date, location_city = coalesce(m.city, ''),
        location_country_code = m.location_country_code, anniversary_years = m.years,
        anniversary_occasion = m.occasion, summary = m.summary, topics = "#,
    text_list!("topics"),
    ", source_names = ",
    text_list!("source_names"),
    ", source_urls = ",
    text_list!("source_urls"),
    r#",
        country_codes = string_to_array(m.codes, ','), record = m.record,
        update_time = m.update_time, version = m.version,
        search = to_tsvector('simple', m.search), participant_names = "#,
    text_list!("participant_names"),
    ", participant_titles = ",
    text_list!("participant_titles"),
    ", participant_country_codes = ",
    text_list!("participant_country_codes"),
    ", topics_lower = ",
    text_list!("topics_lower"),
    r#"
    FROM "#,
    batch_rows!(),
    r#", event, previous
    WHERE t.id = m.id AND previous.id = m.id
    RETURNING t.id, t.date, t.country_codes, t.record, event.id AS event_id,
              previous.country_codes AS previous_codes"#,
    child_rows!()
);

/// Before a locked meeting is rewritten or deleted: keeps the record of its
/// CREATED event if that still reads the meeting's own (version 1, event
/// not expired), and deletes its pair rows.
const PREPARE_REWRITE: &str = r#"
WITH created_record AS (
    INSERT INTO meeting_event_records (event_id, meeting_id, record)
    SELECT m.created_event_id, m.id, m.record
    FROM meetings m JOIN meeting_events e ON e.event_id = m.created_event_id
    WHERE m.id = $1 AND m.version = 1
    ON CONFLICT (event_id, meeting_id) DO NOTHING
)
-- Its pair rows, by primary key (every pair of its countries on its date;
-- see domain::NewMeeting::country_pairs): each condition is on a key column
-- and a value known before the scan, so this is a few index probes.
DELETE FROM meeting_country_pairs
WHERE country_low = ANY((SELECT country_codes FROM meetings WHERE id = $1)::text[])
  AND country_high = ANY((SELECT country_codes FROM meetings WHERE id = $1)::text[])
  AND date = (SELECT date FROM meetings WHERE id = $1)
  AND meeting_id = $1
"#;

const PAIR_PAGE_ASC: &str = r#"
SELECT p.date, p.meeting_id AS id, coalesce(p.record, m.record) AS record
FROM meeting_country_pairs p
-- Pair rows of meetings with many countries keep no record of their own.
LEFT JOIN meetings m ON p.record IS NULL AND m.id = p.meeting_id
WHERE p.country_low = $1 AND p.country_high = $2
  AND (p.date, p.meeting_id) > ($3, $4) AND p.date <= $5
ORDER BY p.date, p.meeting_id
LIMIT $6
"#;

const PAIR_PAGE_DESC: &str = r#"
SELECT p.date, p.meeting_id AS id, coalesce(p.record, m.record) AS record
FROM meeting_country_pairs p
-- Pair rows of meetings with many countries keep no record of their own.
LEFT JOIN meetings m ON p.record IS NULL AND m.id = p.meeting_id
WHERE p.country_low = $1 AND p.country_high = $2
  AND (p.date, p.meeting_id) < ($3, $4) AND p.date >= $5
ORDER BY p.date DESC, p.meeting_id DESC
LIMIT $6
"#;

const DELETE_MEETING: &str = r#"
WITH gone AS (
    DELETE FROM meetings WHERE id = $1 RETURNING id, country_codes
)
INSERT INTO meeting_events (kind, meeting_ids, meeting_codes, event_count)
SELECT $2::int2, ARRAY[gone.id], ARRAY[array_to_string(gone.country_codes, ',')], 1 FROM gone
"#;

/// Newest first; each filter applies only when its parameter is set.
const LIST_MEETINGS: &str = r#"
SELECT m.date, m.id, m.record
FROM meetings m
WHERE ($1::date IS NULL OR (m.date, m.id) < ($1::date, $2::uuid))
  AND ($3::text IS NULL OR m.country_codes @> ARRAY[$3::text])
  AND ($4::date IS NULL OR m.date >= $4::date)
  AND ($5::date IS NULL OR m.date <= $5::date)
  AND ($6::text IS NULL OR m.topics_lower @> ARRAY[$6::text])
  AND ($7::text IS NULL OR m.search @@ websearch_to_tsquery('simple', $7::text))
ORDER BY m.date DESC, m.id DESC
LIMIT $8
"#;

const PAIR_TOP_TOPICS: &str = r#"
SELECT (array_agg(t.topic ORDER BY m.create_time, m.id))[1] AS topic,
       count(DISTINCT m.id) AS meetings
FROM meeting_country_pairs p
JOIN meetings m ON m.id = p.meeting_id
CROSS JOIN LATERAL unnest(m.topics, m.topics_lower) AS t (topic, lower)
WHERE p.country_low = $1 AND p.country_high = $2
GROUP BY t.lower
ORDER BY meetings DESC, t.lower
LIMIT $3
"#;

const PAIR_ANNIVERSARIES: &str = r#"
SELECT m.anniversary_occasion AS occasion,
       (extract(year FROM m.date)::int - m.anniversary_years) AS since_year,
       count(*) AS meetings,
       (array_agg(m.id ORDER BY m.date, m.id))[1] AS meeting_id
FROM meeting_country_pairs p
JOIN meetings m ON m.id = p.meeting_id
WHERE p.country_low = $1 AND p.country_high = $2 AND m.anniversary_years IS NOT NULL
GROUP BY m.anniversary_occasion, since_year
ORDER BY since_year, occasion
LIMIT 1000
"#;

/// Every event row of a committed transaction that has no number yet, in
/// the order they were written, with how many events (meetings) each holds.
/// Rows of transactions still in flight are invisible here and get later
/// numbers in a later step.
const PENDING_EVENTS: &str = r#"
SELECT event_id, event_count::int8 FROM meeting_events
WHERE sequence IS NULL ORDER BY event_id
"#;

/// Numbers the event rows $1 (in that order) with the next $3 numbers of
/// the sequence, reserved in one step (only the lock holder numbers): each
/// row gets the number of its last event, which is $2 (the running count of
/// events up to and including the row) into the reserved range.
const NUMBER_EVENTS: &str = r#"
WITH reserved AS (
    SELECT setval('meeting_event_sequence', nextval('meeting_event_sequence') + $3 - 1) AS last
), numbered AS (
    SELECT p.event_id, reserved.last - $3 + p.through AS sequence
    FROM UNNEST($1::int8[], $2::int8[]) AS p (event_id, through), reserved
)
UPDATE meeting_events e
SET sequence = numbered.sequence
FROM numbered
WHERE e.event_id = numbered.event_id
"#;

/// Deletes the numbered events before the first one written at or after
/// $1 (all of them if none is), found by walking the sequence index from
/// the oldest, so only the deleted rows are read; an event numbered after
/// a newer one waits for the next expiry. Also deletes records below the
/// oldest event: a CREATED event's record copied by a rewrite while a
/// concurrent expiry deleted that event.
const EXPIRE_EVENTS: &str = r#"
WITH bound AS (
    SELECT coalesce(
        (SELECT sequence FROM meeting_events
         WHERE sequence IS NOT NULL AND event_time >= $1
         ORDER BY sequence LIMIT 1),
        (SELECT max(sequence) + 1 FROM meeting_events)
    ) AS sequence
), gone AS (
    DELETE FROM meeting_events WHERE sequence < (SELECT sequence FROM bound)
    RETURNING event_id
), records AS (
    DELETE FROM meeting_event_records WHERE event_id IN (SELECT event_id FROM gone)
), orphans AS (
    DELETE FROM meeting_event_records
    WHERE event_id < (SELECT min(event_id) FROM meeting_events)
)
SELECT count(*) FROM gone
"#;

/// The next $2 numbered event rows after the number $1, by their counts
/// only (a large row's meeting lists are stored out of line).
const EVENT_ROWS_AFTER: &str = r#"
SELECT event_id, sequence, event_count FROM meeting_events
WHERE sequence > $1 ORDER BY sequence LIMIT $2
"#;

/// The events of the rows $1 numbered in ($2, $3] (of the pair $4, if set:
/// meetings in the pair after the change, or before it for an update), in
/// order: each row's meetings, numbered from the row's first number.
const EVENTS_IN: &str = r#"
SELECT u.sequence, e.kind, u.meeting_id, string_to_array(u.codes, ',') AS country_codes,
       coalesce(r.record, m.record) AS record, e.event_time
FROM meeting_events e
CROSS JOIN LATERAL (
    SELECT e.sequence - e.event_count + i.position AS sequence, i.meeting_id, i.codes,
           i.previous
    FROM UNNEST(e.meeting_ids, e.meeting_codes, e.previous_codes)
         WITH ORDINALITY AS i (meeting_id, codes, previous, position)
) u
LEFT JOIN meeting_event_records r ON r.event_id = e.event_id AND r.meeting_id = u.meeting_id
-- A CREATED event without a stored record: the meeting is still at that
-- version (its first rewrite stores the record in the same transaction).
LEFT JOIN meetings m ON r.event_id IS NULL AND m.created_event_id = e.event_id
                    AND m.id = u.meeting_id
WHERE e.event_id = ANY($1) AND u.sequence > $2 AND u.sequence <= $3
  AND ($4::text[] IS NULL OR string_to_array(u.codes, ',') @> $4::text[]
       OR string_to_array(u.previous, ',') @> $4::text[])
ORDER BY u.sequence
"#;

#[cfg(test)]
mod tests {
    use super::page_span;

    #[test]
    fn a_page_spans_limit_numbers_from_its_start() {
        // One-event rows 5..=8, then a 500-event row (9..=508).
        let rows = [(1, 5, 1), (2, 6, 1), (3, 7, 1), (4, 8, 1), (5, 508, 500)];
        assert_eq!(page_span(4, &rows, 3), (vec![1, 2, 3], 7));
        assert_eq!(page_span(4, &rows, 10), (vec![1, 2, 3, 4, 5], 14));
        // Resuming inside the large row.
        assert_eq!(page_span(100, &rows[4..], 256), (vec![5], 356));
        assert_eq!(page_span(400, &rows[4..], 256), (vec![5], 508));
        // Nothing after the position.
        assert_eq!(page_span(508, &[], 256), (vec![], 508));
    }

    #[test]
    fn a_page_skips_missing_numbers_between_rows() {
        // Numbers 11..=19 were reserved by a step that failed.
        let rows = [(1, 10, 2), (2, 25, 5)];
        assert_eq!(page_span(8, &rows, 4), (vec![1, 2], 22));
        assert_eq!(page_span(10, &rows[1..], 4), (vec![2], 24));
    }
}
