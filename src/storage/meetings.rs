//! Meetings: insert (with idempotency keys), get, list, update, delete,
//! and the repair of stored topic keys.

use std::sync::Arc;

use tokio::sync::Notify;
use uuid::Uuid;

use super::batch::{MeetingColumns, joined};
use super::error::{DEADLOCK_DETECTED, has_code};
use super::model::{NameColumns, TopicKeys};
use super::record::Stored;
use super::{
    Asked, Candidate, Cursor, EventKind, IdRecord, Inserted, ListFilter, LockedCandidate,
    LockedMeeting, NewRow, RECORDS_BY_ID, RecordRow, Storage, StoredKey, UpdatedRow,
};
use crate::domain::{
    NAME_TOKEN_VERSION, Party, Report, RequestId, TOPIC_KEY_VERSION, limits, name_tokens, topic_key,
};

/// The longest span of a meeting in days, as SQL's date arithmetic takes it.
const MAX_SPAN_DAYS_SQL: i32 = limits::MAX_SPAN_DAYS as i32;
use crate::error::Result;

const INSERT_MEETINGS: &str = include_str!("queries/insert_meetings.sql");
const DELETE_MEETING: &str = include_str!("queries/delete_meeting.sql");
const LIST_MEETINGS: &str = include_str!("queries/list_meetings.sql");
const DUPLICATE_CANDIDATES: &str = include_str!("queries/duplicate_candidates.sql");
const DUPLICATE_CANDIDATES_MANY: &str = include_str!("queries/duplicate_candidates_many.sql");
const PREPARE_REWRITES: &str = include_str!("queries/prepare_rewrites.sql");
const UPDATE_MEETINGS: &str = include_str!("queries/update_meetings.sql");

/// The most stored meetings a report is compared with.
pub const MAX_DUPLICATE_CANDIDATES: i64 = 100;
/// The keys of rows an insert did not store, with what each was asked and
/// its meeting's record if the meeting still exists.
/// The meetings keys were answered with; a meeting merged into another
/// (MergeMeetings) is that one now.
const STORED_KEYS: &str = "SELECT k.request_id, coalesce(r.meeting_id, k.meeting_id) AS meeting_id, \
     k.digest, m.record, \
     (m.id IS NOT NULL AND m.request_id IS DISTINCT FROM k.request_id) AS merged \
     FROM meeting_requests k \
     LEFT JOIN meeting_redirects r ON r.merged_id = k.meeting_id \
     LEFT JOIN meetings m ON m.id = coalesce(r.meeting_id, k.meeting_id) \
     WHERE k.request_id = ANY($1)";

/// The meeting a merged id resolves to (MergeMeetings), if it was merged.
const REDIRECT: &str = "SELECT meeting_id FROM meeting_redirects WHERE merged_id = $1";

/// A transaction that reads, locks and rewrites one meeting.
pub struct Tx {
    tx: sqlx::Transaction<'static, sqlx::Postgres>,
    events_written: Arc<Notify>,
    wrote_events: bool,
}

impl Tx {
    /// Reads and locks a meeting until commit.
    #[tracing::instrument(name = "storage.lock_meeting", skip_all)]
    pub async fn lock_meeting(&mut self, id: Uuid) -> Result<Option<LockedMeeting>> {
        Ok(sqlx::query_as(
            "SELECT record, version, create_time FROM meetings WHERE id = $1 FOR UPDATE",
        )
        .bind(id)
        .fetch_optional(&mut *self.tx)
        .await?)
    }

    /// The meeting a merged id resolves to (MergeMeetings), if it was
    /// merged.
    pub async fn redirect(&mut self, id: Uuid) -> Result<Option<Uuid>> {
        Ok(sqlx::query_scalar(REDIRECT)
            .bind(id)
            .fetch_optional(&mut *self.tx)
            .await?)
    }

    /// Replaces a locked meeting with `row` (same id): its columns, pair
    /// rows and search document, with an UPDATED event.
    #[tracing::instrument(name = "storage.replace_meeting", skip_all)]
    pub async fn replace_meeting(&mut self, row: UpdatedRow) -> Result<()> {
        let row = NewRow {
            id: row.id,
            meeting: row.meeting,
            // A rewrite keeps the stored creation time and request key.
            create_time: row.update_time,
            update_time: row.update_time,
            version: row.version,
            record: row.record,
            request_id: None,
            request_digest: None,
        };
        self.rewrite_meetings(&[&row]).await
    }

    /// Deletes a locked meeting and its child rows, with a DELETED event.
    #[tracing::instrument(name = "storage.delete_meeting", skip_all)]
    pub async fn delete_meeting(&mut self, id: Uuid) -> Result<()> {
        sqlx::query(PREPARE_REWRITES)
            .bind([id])
            .execute(&mut *self.tx)
            .await?;
        sqlx::query(DELETE_MEETING)
            .bind(id)
            .bind(EventKind::Deleted.code())
            .bind(None::<Uuid>)
            .execute(&mut *self.tx)
            .await?;
        self.wrote_events = true;
        Ok(())
    }

    /// Ends a locked meeting as a meeting of its own, merged into `into`:
    /// its rows go (with a MERGED event), and its id, and every id merged
    /// into it before, resolve to `into`.
    pub async fn absorb_meeting(&mut self, id: Uuid, into: Uuid) -> Result<()> {
        sqlx::query(PREPARE_REWRITES)
            .bind([id])
            .execute(&mut *self.tx)
            .await?;
        sqlx::query(
            "WITH repointed AS ( \
                 UPDATE meeting_redirects SET meeting_id = $2 WHERE meeting_id = $1 \
             ) \
             INSERT INTO meeting_redirects (merged_id, meeting_id) VALUES ($1, $2) \
             ON CONFLICT (merged_id) DO UPDATE SET meeting_id = EXCLUDED.meeting_id",
        )
        .bind(id)
        .bind(into)
        .execute(&mut *self.tx)
        .await?;
        sqlx::query(DELETE_MEETING)
            .bind(id)
            .bind(EventKind::Merged.code())
            .bind(into)
            .execute(&mut *self.tx)
            .await?;
        self.wrote_events = true;
        Ok(())
    }

    /// Serialises, until commit, the writers of reports that could match
    /// one another: transaction-scoped advisory locks on a hash of each
    /// report's party keys and of each month its candidates may begin in
    /// (`Report::candidate_dates`), taken in one order by every writer. Two
    /// reports that can match share their parties and a month (the month of
    /// either's first day lies in both windows), so reports of one meeting
    /// merged at once see each other, while reports of other months of the
    /// same parties proceed in parallel.
    pub async fn lock_reports(&mut self, reports: &[&Report]) -> Result<()> {
        let mut keys: Vec<i64> = reports
            .iter()
            .flat_map(|r| {
                let parties = parties_lock_key(r.parties());
                let (from, to) = r.candidate_dates();
                let month = |d: chrono::NaiveDate| {
                    use chrono::Datelike;
                    i64::from(d.year()) * 12 + i64::from(d.month0())
                };
                (month(from)..=month(to))
                    .map(move |m| parties ^ m.wrapping_mul(0x9E37_79B9_7F4A_7C15_u64 as i64))
            })
            .collect();
        keys.sort_unstable();
        keys.dedup();
        // unnest yields the keys in array order, so the locks are taken in
        // that order.
        sqlx::query("SELECT count(pg_advisory_xact_lock(k)) FROM unnest($1::int8[]) AS k")
            .bind(keys)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// The stored meetings that may describe the same meeting as each of
    /// `reports`, not locked: (position in `reports`, meeting), a meeting
    /// once for each report it may match.
    pub async fn duplicate_candidates_many(
        &mut self,
        reports: &[&Report],
    ) -> Result<Vec<(usize, Candidate)>> {
        let mut columns = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut ends_from = Vec::with_capacity(reports.len());
        for report in reports {
            ends_from.push(report.candidate_end());
            let parties = report.parties();
            let (from, to) = report.candidate_dates();
            columns.0.push(parties.first().map_or("", |p| p.key()));
            columns.1.push(parties.get(1).map_or("", |p| p.key()));
            columns.2.push(from);
            columns.3.push(to);
            columns.4.push(
                parties
                    .iter()
                    .map(|p| p.key())
                    .collect::<Vec<_>>()
                    .join(","),
            );
        }
        #[derive(sqlx::FromRow)]
        struct Found {
            report: i64,
            #[sqlx(flatten)]
            candidate: Candidate,
        }
        let found: Vec<Found> = sqlx::query_as(DUPLICATE_CANDIDATES_MANY)
            .bind(columns.0)
            .bind(columns.1)
            .bind(columns.2)
            .bind(columns.3)
            .bind(columns.4)
            .bind(MAX_DUPLICATE_CANDIDATES)
            .bind(ends_from)
            .fetch_all(&mut *self.tx)
            .await?;
        Ok(found
            .into_iter()
            .map(|f| {
                let report = usize::try_from(f.report - 1).unwrap_or(usize::MAX);
                (report, f.candidate)
            })
            .collect())
    }

    /// Locks meetings until commit, in id order (as MergeMeetings locks its
    /// meetings, so that the two never wait on each other in a cycle), and
    /// reads them under the lock: the meetings of `ids` that still exist.
    pub async fn lock_meetings(&mut self, ids: &[Uuid]) -> Result<Vec<LockedCandidate>> {
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        Ok(sqlx::query_as(
            "SELECT id, record, version, create_time FROM meetings \
             WHERE id = ANY($1) ORDER BY id FOR UPDATE",
        )
        .bind(&ids)
        .fetch_all(&mut *self.tx)
        .await?)
    }

    /// What holds each of `keys` that is used: the meeting it was answered
    /// with, the digest of what it asked, and the meeting's record.
    pub async fn request_keys(
        &mut self,
        keys: &[&RequestId],
    ) -> Result<std::collections::HashMap<String, StoredKey>> {
        let keys: Vec<&str> = keys.iter().map(|k| k.as_str()).collect();
        let stored: Vec<StoredKey> = sqlx::query_as(STORED_KEYS)
            .bind(&keys)
            .fetch_all(&mut *self.tx)
            .await?;
        Ok(stored
            .into_iter()
            .map(|k| (k.request_id.clone(), k))
            .collect())
    }

    /// Stores new meetings with their keys (as `Storage::insert_meetings`,
    /// in this transaction); the ids of those stored (a row whose key is
    /// already used is not).
    #[tracing::instrument(name = "storage.insert_rows", skip_all)]
    pub async fn insert_rows(&mut self, rows: &[&NewRow]) -> Result<Vec<Uuid>> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let created: Vec<Uuid> = MeetingColumns::of(rows)
            .bind(sqlx::query_scalar(INSERT_MEETINGS))
            .fetch_all(&mut *self.tx)
            .await?;
        self.wrote_events |= !created.is_empty();
        Ok(created)
    }

    /// Rewrites locked meetings (`rows`: each one's id, new meeting,
    /// update time, version and record) in two statements, with one
    /// UPDATED event row.
    pub async fn rewrite_meetings(&mut self, rows: &[&NewRow]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        sqlx::query(PREPARE_REWRITES)
            .bind(&ids)
            .execute(&mut *self.tx)
            .await?;
        MeetingColumns::of(rows)
            .bind_for(
                sqlx::query_scalar::<_, Uuid>(UPDATE_MEETINGS),
                EventKind::Updated,
            )
            .fetch_all(&mut *self.tx)
            .await?;
        self.wrote_events = true;
        Ok(())
    }

    /// Records request keys answered with stored meetings: (key, the
    /// meeting, the digest of what it asked); a key already used is left.
    pub async fn store_request_keys(
        &mut self,
        keys: &[(&RequestId, Uuid, Option<[u8; 32]>)],
    ) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let requests: Vec<&str> = keys.iter().map(|k| k.0.as_str()).collect();
        let ids: Vec<Uuid> = keys.iter().map(|k| k.1).collect();
        let digests: Vec<Option<Vec<u8>>> = keys.iter().map(|k| k.2.map(|d| d.to_vec())).collect();
        sqlx::query(
            "INSERT INTO meeting_requests (request_id, meeting_id, digest) \
             SELECT * FROM UNNEST($1::text[], $2::uuid[], $3::bytea[]) \
             ON CONFLICT (request_id) DO NOTHING",
        )
        .bind(requests)
        .bind(ids)
        .bind(digests)
        .execute(&mut *self.tx)
        .await?;
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

fn asked(stored: Option<&[u8]>, asked: Option<&[u8]>) -> Asked {
    Asked::of(stored, asked)
}

/// The advisory lock of a set of parties: FNV-1a of their keys, stable
/// across processes and versions (every instance must take the same lock).
fn parties_lock_key(parties: &[Party]) -> i64 {
    let hash = parties
        .iter()
        .flat_map(|p| p.key().bytes().chain([b',']))
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    i64::from_ne_bytes(hash.to_ne_bytes())
}

async fn duplicate_candidates(
    conn: &mut sqlx::PgConnection,
    report: &Report,
) -> Result<Vec<IdRecord>> {
    let parties = report.parties();
    let (Some(low), Some(high)) = (parties.first(), parties.get(1)) else {
        return Ok(Vec::new());
    };
    let (from, to) = report.candidate_dates();
    let keys: Vec<&str> = parties.iter().map(|p| p.key()).collect();
    Ok(sqlx::query_as(DUPLICATE_CANDIDATES)
        .bind(low.key())
        .bind(high.key())
        .bind(from)
        .bind(to)
        .bind(keys)
        .bind(MAX_DUPLICATE_CANDIDATES)
        .bind(report.candidate_end())
        .fetch_all(conn)
        .await?)
}

impl Storage {
    /// The meeting a merged meeting's id now names, if `id` was merged.
    pub async fn redirect(&self, id: Uuid) -> Result<Option<Uuid>> {
        Ok(sqlx::query_scalar(REDIRECT)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Stored meetings that may describe the same meeting as `report`,
    /// oldest first.
    pub async fn duplicate_candidates(&self, report: &Report) -> Result<Vec<IdRecord>> {
        let mut conn = self.pool.acquire().await?;
        duplicate_candidates(&mut conn, report).await
    }

    /// Starts a transaction for a read-modify-write of one meeting.
    pub async fn begin(&self) -> Result<Tx> {
        Ok(Tx {
            tx: super::begin(&self.pool, None).await?,
            events_written: self.events_written.clone(),
            wrote_events: false,
        })
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
            let result = MeetingColumns::of(&ordered)
                .bind(sqlx::query_scalar(INSERT_MEETINGS))
                .fetch_all(&self.pool)
                .await;
            match result {
                // Not expected with ordered keys; kept as a safety net should
                // another lock order appear. The statement is atomic: run it
                // again.
                Err(e) if has_code(&e, DEADLOCK_DETECTED) && attempt < 3 => {
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
            let existing: Vec<StoredKey> = sqlx::query_as(STORED_KEYS)
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
                let asked = asked(
                    key.digest.as_deref(),
                    row.request_digest.as_ref().map(|d| d.as_slice()),
                );
                outcomes.push(Inserted::Existing {
                    meeting_id: key.meeting_id,
                    record: key.record.clone(),
                    asked,
                    merged: key.merged,
                });
            }
        }
        Ok(outcomes)
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
            .bind(MAX_SPAN_DAYS_SQL)
            .bind(
                filter
                    .organization_code
                    .map(|o| Party::Organization(o).key()),
            )
            .bind(filter.participant.as_deref())
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
    pub async fn get_meetings(&self, ids: &[Uuid]) -> Result<Vec<IdRecord>> {
        Ok(sqlx::query_as(RECORDS_BY_ID)
            .bind(ids)
            .fetch_all(&self.pool)
            .await?)
    }

    /// The version of the rule that made the stored derived values `name`
    /// (topic keys, name tokens); None before any was recorded.
    pub async fn derived_version(&self, name: &str) -> Result<Option<i32>, anyhow::Error> {
        Ok(derived_version_in(&self.pool, name).await?)
    }

    /// Records that the stored derived values `name` are those of `version`.
    pub async fn record_derived_version(
        &self,
        name: &str,
        version: i32,
    ) -> Result<(), anyhow::Error> {
        Ok(record_derived_version_in(&self.pool, name, version).await?)
    }

    /// The name tokens of meetings stored before they existed, or made by
    /// an earlier rule (`NAME_TOKEN_VERSION`), recomputed from the names
    /// and aliases columns, as `refresh_topic_keys` does for topic keys.
    pub async fn refresh_name_tokens(&self) -> Result<u64, anyhow::Error> {
        const NAME: &str = "name_tokens";
        const PAGE: i64 = 1_000;
        let stored = self.derived_version(NAME).await?;
        if stored.is_some_and(|v| v >= NAME_TOKEN_VERSION) {
            return Ok(0);
        }
        tracing::info!(to = NAME_TOKEN_VERSION, "computing the stored name tokens");
        let mut after = Uuid::nil();
        let mut changed = 0u64;
        loop {
            let rows: Vec<NameColumns> = sqlx::query_as(
                "SELECT id, participant_names, participant_aliases, name_tokens FROM meetings \
                 WHERE id > $1 ORDER BY id LIMIT $2",
            )
            .bind(after)
            .bind(PAGE)
            .fetch_all(&self.pool)
            .await?;
            let Some(last) = rows.last() else { break };
            after = last.id;
            let mut stale = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for row in &rows {
                let names = row.participant_names.iter().chain(&row.participant_aliases);
                let tokens = name_tokens(names.map(String::as_str));
                if row.name_tokens.as_ref() != Some(&tokens) {
                    stale.0.push(row.id);
                    stale.1.push(joined(&row.participant_names));
                    stale.2.push(joined(&row.participant_aliases));
                    stale.3.push(joined(&tokens));
                }
            }
            if !stale.0.is_empty() {
                // Only rows whose names are still those read: a meeting
                // written meanwhile got its tokens from its write.
                let updated = sqlx::query(
                    "UPDATE meetings m SET name_tokens = (string_to_array(k.tokens, chr(31)))[2:] \
                     FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[]) \
                          AS k (id, names, aliases, tokens) \
                     WHERE m.id = k.id \
                       AND m.participant_names = (string_to_array(k.names, chr(31)))[2:] \
                       AND m.participant_aliases = (string_to_array(k.aliases, chr(31)))[2:]",
                )
                .bind(&stale.0)
                .bind(&stale.1)
                .bind(&stale.2)
                .bind(&stale.3)
                .execute(&self.pool)
                .await?;
                changed += updated.rows_affected();
            }
        }
        self.record_derived_version(NAME, NAME_TOKEN_VERSION)
            .await?;
        Ok(changed)
    }

    /// Up to `limit` meetings after `after` in id order: id, version,
    /// record and stored match keys.
    pub async fn match_keys_page(
        &self,
        after: Uuid,
        limit: i64,
    ) -> Result<Vec<(Uuid, i64, Vec<u8>, Option<Vec<String>>)>> {
        let rows: Vec<(Uuid, i64, Stored, Option<Vec<String>>)> = sqlx::query_as(
            "SELECT id, version, record, match_keys FROM meetings \
             WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, version, record, keys)| (id, version, record.0, keys))
            .collect())
    }

    /// Stores match keys of meetings (id, the version they were computed
    /// from, keys) that are still at that version: a meeting written
    /// meanwhile got its keys from its write. How many were stored.
    pub async fn store_match_keys(&self, rows: &[(Uuid, i64, Vec<String>)]) -> Result<u64> {
        let ids: Vec<Uuid> = rows.iter().map(|r| r.0).collect();
        let versions: Vec<i64> = rows.iter().map(|r| r.1).collect();
        let keys: Vec<String> = rows.iter().map(|r| joined(&r.2)).collect();
        let updated = sqlx::query(
            "UPDATE meetings m SET match_keys = (string_to_array(k.keys, chr(31)))[2:] \
             FROM UNNEST($1::uuid[], $2::int8[], $3::text[]) AS k (id, version, keys) \
             WHERE m.id = k.id AND m.version = k.version",
        )
        .bind(ids)
        .bind(versions)
        .bind(keys)
        .execute(&self.pool)
        .await?;
        Ok(updated.rows_affected())
    }

    /// Recomputes the stored topic keys (`topics_lower`) with the service's
    /// `topic_key` when they were made by an earlier rule, in pages of
    /// meetings by id, then records the rule's version. Runs at start,
    /// before serving; it is idempotent, so an interrupted run is simply
    /// run again at the next start.
    pub async fn refresh_topic_keys(&self) -> Result<u64, anyhow::Error> {
        const NAME: &str = "topics_lower";
        const PAGE: i64 = 1_000;
        let stored = self.derived_version(NAME).await?;
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
                    stale.1.push(joined(&row.topics));
                    stale.2.push(joined(&keys));
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
        self.record_derived_version(NAME, TOPIC_KEY_VERSION).await?;
        tracing::info!(changed, "stored topic keys recomputed");
        Ok(changed)
    }
}

/// `Storage::derived_version`, on a given connection or transaction.
pub(super) async fn derived_version_in(
    exec: impl sqlx::PgExecutor<'_>,
    name: &str,
) -> Result<Option<i32>> {
    Ok(
        sqlx::query_scalar("SELECT version FROM derived_value_versions WHERE name = $1")
            .bind(name)
            .fetch_optional(exec)
            .await?,
    )
}

/// `Storage::record_derived_version`, on a given connection or transaction.
pub(super) async fn record_derived_version_in(
    exec: impl sqlx::PgExecutor<'_>,
    name: &str,
    version: i32,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO derived_value_versions (name, version) VALUES ($1, $2) \
         ON CONFLICT (name) DO UPDATE SET version = EXCLUDED.version",
    )
    .bind(name)
    .bind(version)
    .execute(exec)
    .await?;
    Ok(())
}
