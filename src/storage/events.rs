//! The change feed: numbering the events of committed writes, expiring
//! old ones, and the pages watchers read.

use std::time::Duration;

use chrono::{NaiveDate, Utc};

use super::model::{NumberedEvents, PendingEvents};
use super::{EventPage, EventRow, PAGE_BYTES, Storage};
use crate::domain::PartyPair;
use crate::error::Result;

/// Advisory lock key of the event sequencer ("meetings" in ASCII).
const SEQUENCER_LOCK: i64 = 0x6d65_6574_696e_6773;
/// Advisory lock key of the partition maintenance ("events" in ASCII).
const PARTITIONS_LOCK: i64 = 0x0000_6576_656e_7473;
/// NOTIFY channel the sequencer wakes watchers on.
const EVENTS_CHANNEL: &str = "meetings_events";

const PENDING_EVENTS: &str = include_str!("queries/pending_events.sql");
const NUMBER_EVENTS: &str = include_str!("queries/number_events.sql");
const EXPIRE_EVENTS: &str = include_str!("queries/expire_events.sql");
const EVENT_ROWS_AFTER: &str = include_str!("queries/event_rows_after.sql");
const EVENTS_IN: &str = include_str!("queries/events_in.sql");

impl Storage {
    /// Numbers the events of committed transactions, in one serial step
    /// across all instances (an advisory lock), and wakes watchers with a
    /// NOTIFY when it numbered any. Returns how many it numbered; 0 also
    /// when another instance holds the lock.
    pub async fn sequence_events(&self) -> Result<u64> {
        let mut tx = super::begin(&self.pool, None).await?;
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
            .bind(SEQUENCER_LOCK)
            .fetch_one(&mut *tx)
            .await?;
        if !locked {
            return Ok(0);
        }
        // Two steps with explicit ids, so that the numbering is always a few
        // primary-key lookups: as one UPDATE ... FROM (pending rows), stale
        // statistics can make the planner hash-join the whole events table.
        let pending: Vec<PendingEvents> =
            sqlx::query_as(PENDING_EVENTS).fetch_all(&mut *tx).await?;
        // Each row with the running count of events up to and including it:
        // where its last number falls in the range reserved for the step.
        let (rows, through): (Vec<i64>, Vec<i64>) = pending
            .iter()
            .scan(0, |total, row| {
                *total += row.event_count;
                Some((row.event_id, *total))
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

    /// Expires the events older than `retention`, with their records. With
    /// a retention of a day or more, whole days' partitions go (dropped,
    /// not deleted row by row), so an event is kept up to a day longer
    /// than the retention; a shorter retention deletes rows. Also makes
    /// the partitions of the coming days. How many events went.
    pub async fn expire_events(&self, retention: Duration) -> Result<u64> {
        self.ensure_event_partitions().await?;
        let retention = chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
        let mut cutoff = Utc::now()
            .checked_sub_signed(retention)
            .unwrap_or(chrono::DateTime::<Utc>::MIN_UTC);
        let mut expired = 0u64;
        if retention >= chrono::Duration::days(1) {
            let (dropped, kept_from) = self.drop_event_partitions(cutoff).await?;
            expired += dropped;
            // Rows older than the oldest day kept can only be in the
            // default partition.
            cutoff = kept_from.map_or(cutoff, |day| {
                day.and_hms_opt(0, 0, 0)
                    .map_or(cutoff, |t| t.and_utc().min(cutoff))
            });
        }
        let deleted: i64 = sqlx::query_scalar(EXPIRE_EVENTS)
            .bind(cutoff)
            .fetch_one(&self.pool)
            .await?;
        Ok(expired + u64::try_from(deleted).unwrap_or(0))
    }

    /// Makes the partitions of today and the next two days (UTC) that do
    /// not exist yet (migration 0021), one instance at a time.
    pub async fn ensure_event_partitions(&self) -> Result<()> {
        let mut tx = super::begin(&self.pool, None).await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(PARTITIONS_LOCK)
            .execute(&mut *tx)
            .await?;
        let existing = event_partitions(&mut tx).await?;
        let today = Utc::now().date_naive();
        for day in (0..3).filter_map(|i| today.checked_add_days(chrono::Days::new(i))) {
            if existing.iter().any(|(d, _)| *d == day) {
                continue;
            }
            let Some(next) = day.succ_opt() else { continue };
            // Names and bounds are made here from dates: nothing a caller
            // gave reaches this statement.
            let sql = format!(
                "CREATE TABLE IF NOT EXISTS {} PARTITION OF meeting_events \
                 FOR VALUES FROM ('{day} 00:00:00+00') TO ('{next} 00:00:00+00')",
                partition_name(day)
            );
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Drops, oldest first, the day partitions that ended before `cutoff`,
    /// as long as each holds only numbered events all numbered before every
    /// later event (a long transaction's event numbered after newer ones
    /// waits, as in expire_events.sql). How many events went, and the first
    /// day still kept.
    async fn drop_event_partitions(
        &self,
        cutoff: chrono::DateTime<Utc>,
    ) -> Result<(u64, Option<NaiveDate>)> {
        let mut tx = super::begin(&self.pool, None).await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(PARTITIONS_LOCK)
            .execute(&mut *tx)
            .await?;
        // Dropping a partition locks the table briefly; never queue behind
        // a long reader for it (the next expiry tries again).
        sqlx::query("SET LOCAL lock_timeout = '2s'")
            .execute(&mut *tx)
            .await?;
        let mut dropped = 0u64;
        let mut kept_from = None;
        for (day, name) in event_partitions(&mut tx).await? {
            let Some(end) = day.succ_opt().and_then(|d| d.and_hms_opt(0, 0, 0)) else {
                continue;
            };
            let end = end.and_utc();
            let (unnumbered, last, events): (Option<bool>, Option<i64>, Option<i64>) =
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT bool_or(sequence IS NULL), max(sequence), sum(event_count)::int8 \
                     FROM {name}"
                )))
                .fetch_one(&mut *tx)
                .await?;
            let later: Option<i64> = sqlx::query_scalar(
                "SELECT min(sequence) FROM meeting_events \
                 WHERE event_time >= $1 AND sequence IS NOT NULL",
            )
            .bind(end)
            .fetch_one(&mut *tx)
            .await?;
            let in_order = match (last, later) {
                (Some(last), Some(later)) => last < later,
                _ => true,
            };
            if end > cutoff || unnumbered == Some(true) || !in_order {
                kept_from = Some(day);
                break;
            }
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP TABLE {name}")))
                .execute(&mut *tx)
                .await?;
            dropped += u64::try_from(events.unwrap_or(0)).unwrap_or(0);
        }
        // The records of dropped events (below the oldest event left).
        sqlx::query(
            "DELETE FROM meeting_event_records \
             WHERE event_id < (SELECT min(event_id) FROM meeting_events)",
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((dropped, kept_from))
    }

    /// The next page of the change feed after the number `after`: the
    /// events numbered up to `limit` numbers further (of one pair, if set),
    /// in order. The page covers numbers up to its `through` whether or not
    /// any of them were the pair's; `through == after` when nothing is
    /// numbered after `after`.
    pub async fn events_after(
        &self,
        after: i64,
        pair: Option<PartyPair>,
        limit: u32,
    ) -> Result<EventPage> {
        let rows: Vec<NumberedEvents> = sqlx::query_as(EVENT_ROWS_AFTER)
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
            .bind(pair.map(|p| vec![p.low().key(), p.high().key()]))
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
}

/// The day partitions of meeting_events, oldest first, with their names.
async fn event_partitions(conn: &mut sqlx::PgConnection) -> Result<Vec<(NaiveDate, String)>> {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         WHERE i.inhparent = 'meeting_events'::regclass \
           AND c.relname ~ '^meeting_events_[0-9]{8}$' ORDER BY 1",
    )
    .fetch_all(conn)
    .await?;
    Ok(names
        .into_iter()
        .filter_map(|name| {
            let day = NaiveDate::parse_from_str(name.strip_prefix("meeting_events_")?, "%Y%m%d");
            Some((day.ok()?, name))
        })
        .collect())
}

/// The name of a day's partition (as migration 0021 names them).
fn partition_name(day: NaiveDate) -> String {
    format!("meeting_events_{}", day.format("%Y%m%d"))
}

/// The event rows (ids) a page after the number `after` reads, and the
/// number it ends at: `limit` numbers from the first of `rows` ((event_id,
/// number of its last event, events) of the rows numbered after `after`, in
/// order). A row's events are numbered consecutively; numbers between rows
/// may be missing (a numbering step that failed after reserving them).
fn page_span(after: i64, rows: &[NumberedEvents], limit: u32) -> (Vec<i64>, i64) {
    let mut ids = Vec::new();
    let mut through = after;
    let mut left = i64::from(limit);
    for &NumberedEvents {
        event_id,
        sequence: last,
        event_count: count,
    } in rows
    {
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

#[cfg(test)]
mod tests {
    use super::{NumberedEvents, page_span};

    /// Rows as (event_id, number of the last event, events).
    fn rows(rows: &[(i64, i64, i32)]) -> Vec<NumberedEvents> {
        rows.iter()
            .map(|&(event_id, sequence, event_count)| NumberedEvents {
                event_id,
                sequence,
                event_count,
            })
            .collect()
    }

    #[test]
    fn a_page_spans_limit_numbers_from_its_start() {
        // One-event rows 5..=8, then a 500-event row (9..=508).
        let rows = rows(&[(1, 5, 1), (2, 6, 1), (3, 7, 1), (4, 8, 1), (5, 508, 500)]);
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
        let rows = rows(&[(1, 10, 2), (2, 25, 5)]);
        assert_eq!(page_span(8, &rows, 4), (vec![1, 2], 22));
        assert_eq!(page_span(10, &rows[1..], 4), (vec![2], 24));
    }
}
