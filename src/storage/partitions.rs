//! The change feed's time partitions (migration 0021): made ahead of the
//! time they cover, and dropped whole once expired, so that retention never
//! deletes rows.
//!
//! - `meeting_events` is partitioned by `numbered_at`, the time the
//!   sequencer numbered the event. An events partition is dropped once its
//!   end is older than the retention. Numbers rise with numbering times,
//!   so the dropped events are always every number up to a point (the
//!   mark of migration 0023) and none after it.
//! - `meeting_event_records` is partitioned by `written_at`. A records
//!   partition is dropped once its end is older than the retention and
//!   every record in it belongs to an event that is gone (its largest
//!   event_id is below the oldest retained event's).
//!
//! Partition spans come from the retention (`partition_span`), aligned to
//! the Unix epoch, so every instance with the same retention makes the
//! same partitions. Instances with different retentions still agree: a
//! new partition is narrowed to the gap between existing ones, and the
//! bounds read back from the catalog are what count.
//!
//! Every instance runs this maintenance (from the sequencer's loop); an
//! advisory lock makes one change the partitions at a time. Dropping a
//! partition takes an ACCESS EXCLUSIVE lock on its table for the short
//! transaction of the DROP, with a lock timeout so that it never holds up
//! writers for long: a DROP that times out is tried again at the next
//! round.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::AssertSqlSafe;

use super::Storage;
use crate::error::Result;

/// Advisory lock key of partition maintenance ("mtgparts" in ASCII).
const PARTITIONS_LOCK: i64 = 0x6d74_6770_6172_7473;

/// The partitioned tables, and the name prefix of their partitions.
#[derive(Clone, Copy)]
struct Table {
    parent: &'static str,
    prefix: &'static str,
    /// Its DEFAULT partition, if any.
    default: Option<&'static str>,
}

const EVENTS: Table = Table {
    parent: "meeting_events",
    prefix: "meeting_events_p",
    default: None,
};
const RECORDS: Table = Table {
    parent: "meeting_event_records",
    prefix: "meeting_event_records_p",
    default: Some("meeting_event_records_default"),
};

/// The time partitions of a table, with their bounds in microseconds since
/// the Unix epoch (None for MINVALUE or MAXVALUE). The pending partition
/// ([infinity, MAXVALUE)) and a DEFAULT partition are not listed.
const PARTITIONS: &str = r"
SELECT c.relname::text AS name,
       CASE WHEN b[1] = 'MINVALUE' THEN NULL
            ELSE (extract(epoch FROM btrim(b[1], '''')::timestamptz) * 1000000)::int8 END AS lower,
       CASE WHEN b[2] = 'MAXVALUE' THEN NULL
            ELSE (extract(epoch FROM btrim(b[2], '''')::timestamptz) * 1000000)::int8 END AS upper
FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid
CROSS JOIN LATERAL regexp_match(pg_get_expr(c.relpartbound, c.oid),
                                '^FOR VALUES FROM \((.+)\) TO \((.+)\)$') AS b
WHERE i.inhparent = $1::regclass AND b IS NOT NULL AND b[1] <> '''infinity'''
";

/// One time partition: [lower, upper) in microseconds since the epoch.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
struct Partition {
    name: String,
    lower: Option<i64>,
    upper: Option<i64>,
}

impl Partition {
    fn covers(&self, t: i64) -> bool {
        self.lower.is_none_or(|l| l <= t) && self.upper.is_none_or(|u| t < u)
    }
}

/// Spans a partition may have, longest first; each divides the one before
/// it, and a day.
const SPANS: [Duration; 7] = [
    Duration::from_secs(86_400),
    Duration::from_secs(6 * 3_600),
    Duration::from_secs(3_600),
    Duration::from_secs(600),
    Duration::from_secs(60),
    Duration::from_secs(10),
    Duration::from_secs(1),
];

/// The span of the partitions for `retention`: the longest of `SPANS` at
/// most a quarter of it (a day for the default week), so that about four
/// to a few dozen partitions are retained and an event is dropped at most
/// a quarter of the retention after it expires.
pub fn partition_span(retention: Duration) -> Duration {
    SPANS
        .into_iter()
        .find(|span| *span <= retention / 4)
        .unwrap_or(Duration::from_secs(1))
}

/// The partition to make for the instant `t` (not covered by any of
/// `existing`): its span's slot, narrowed to the gap between the existing
/// partitions around `t`.
fn slot(t: i64, span: i64, existing: &[Partition]) -> (i64, i64) {
    let start = t.div_euclid(span) * span;
    let lower = existing
        .iter()
        .filter_map(|p| p.upper.filter(|u| *u <= t))
        .fold(start, i64::max);
    let upper = existing
        .iter()
        .filter_map(|p| p.lower.filter(|l| *l > t))
        .fold(start + span, i64::min);
    (lower, upper)
}

fn timestamp(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// A bound as a SQL literal, in UTC.
fn literal(micros: i64) -> String {
    format!("'{}'", timestamp(micros).format("%Y-%m-%d %H:%M:%S%.6f+00"))
}

/// Whether `e` is PostgreSQL's lock_not_available (a lock timeout).
fn is_lock_timeout(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "55P03")
}

impl Storage {
    /// Makes the partitions that cover now and the next two spans in both
    /// change-feed tables, where missing.
    pub async fn prepare_event_partitions(&self, span: Duration) -> Result<()> {
        let span = i64::try_from(span.as_micros()).unwrap_or(i64::MAX).max(1);
        // Each on its own: one that fails (a lock not had in time) leaves
        // the others to be made; it is tried again at the next round.
        let mut first_error = None;
        for table in [EVENTS, RECORDS] {
            for ahead in 0..=2 {
                if let Err(e) = self.prepare_partition(table, span, ahead).await {
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Makes the partition for the instant `ahead` spans from now, if none
    /// covers it, in a transaction of its own.
    async fn prepare_partition(&self, table: Table, span: i64, ahead: i64) -> Result<()> {
        let Some(mut tx) = self.maintenance().await? else {
            return Ok(());
        };
        // Made ahead of need, so it can wait longer for its locks than a
        // DROP: the LOCK of a DEFAULT partition waits for the reads of it
        // in progress (watchers' pages), and holds up new ones meanwhile.
        sqlx::query("SET LOCAL lock_timeout = '1s'")
            .execute(&mut *tx)
            .await?;
        let now: DateTime<Utc> = sqlx::query_scalar("SELECT now()")
            .fetch_one(&mut *tx)
            .await?;
        let existing: Vec<Partition> = sqlx::query_as(PARTITIONS)
            .bind(table.parent)
            .fetch_all(&mut *tx)
            .await?;
        let t = now
            .timestamp_micros()
            .saturating_add(span.saturating_mul(ahead));
        if existing.iter().any(|p| p.covers(t)) {
            return Ok(());
        }
        let (lower, upper) = slot(t, span, &existing);
        let name = format!(
            "{}{}",
            table.prefix,
            timestamp(lower).format("%Y%m%dt%H%M%S%6f")
        );
        // Made apart and attached, as attaching takes a weaker lock on the
        // table than CREATE TABLE ... PARTITION OF; the table's indexes are
        // made on the partition as it attaches.
        sqlx::query(AssertSqlSafe(format!(
            "CREATE TABLE {name} (LIKE {} INCLUDING DEFAULTS INCLUDING STORAGE \
             INCLUDING COMPRESSION)",
            table.parent
        )))
        .execute(&mut *tx)
        .await?;
        if let Some(default) = table.default {
            // Records written in the slot before it had a partition are in
            // the DEFAULT partition, where they would make the ATTACH fail:
            // they move to the new partition first, under a lock that keeps
            // others from writing there until the ATTACH is done.
            sqlx::query(AssertSqlSafe(format!(
                "LOCK TABLE {default} IN ACCESS EXCLUSIVE MODE"
            )))
            .execute(&mut *tx)
            .await?;
            sqlx::query(AssertSqlSafe(format!(
                "WITH moved AS (DELETE FROM {default} WHERE written_at >= {lower} \
                 AND written_at < {upper} RETURNING *) INSERT INTO {name} SELECT * FROM moved",
                lower = literal(lower),
                upper = literal(upper)
            )))
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(AssertSqlSafe(format!(
            "ALTER TABLE {} ATTACH PARTITION {name} FOR VALUES FROM ({}) TO ({})",
            table.parent,
            literal(lower),
            literal(upper)
        )))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::debug!(partition = %name, "change-feed partition made");
        Ok(())
    }

    /// A maintenance transaction (None if another instance holds the
    /// maintenance lock): waits for table locks bounded (a writer queued
    /// behind a DDL statement waits at most that long), and partition bounds
    /// printed and read back in UTC and ISO style whatever the session's
    /// settings (pg_get_expr prints them in the session's).
    async fn maintenance(&self) -> Result<Option<sqlx::Transaction<'static, sqlx::Postgres>>> {
        let mut tx = super::begin(&self.pool, None).await?;
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
            .bind(PARTITIONS_LOCK)
            .fetch_one(&mut *tx)
            .await?;
        if !locked {
            return Ok(None);
        }
        sqlx::raw_sql(
            "SET LOCAL lock_timeout = '100ms'; SET LOCAL TimeZone = 'UTC'; \
             SET LOCAL DateStyle = 'ISO, YMD'",
        )
        .execute(&mut *tx)
        .await?;
        Ok(Some(tx))
    }

    /// Drops the change-feed partitions that `retention` no longer keeps,
    /// oldest first, and stops at the first that cannot go yet, so that
    /// the dropped events are always every number up to a point; returns how
    /// many it dropped. Records that went to the DEFAULT partition are
    /// deleted once their events are gone.
    pub async fn expire_events(&self, retention: Duration) -> Result<u64> {
        let retention = i64::try_from(retention.as_micros()).unwrap_or(i64::MAX);
        let mut dropped = 0;
        let (now, mut events) = self.partitions_now(EVENTS).await?;
        let cutoff = now.saturating_sub(retention);
        let expired = |p: &Partition| p.upper.is_some_and(|u| u <= cutoff);
        events.sort_by_key(|p| p.lower);
        for partition in events.iter().take_while(|p| expired(p)) {
            if !self.drop_partition(EVENTS, &partition.name).await? {
                break;
            }
            dropped += 1;
        }
        // After the events: a record goes only once its event has.
        let oldest: Option<i64> = sqlx::query_scalar("SELECT min(event_id) FROM meeting_events")
            .fetch_one(&self.pool)
            .await?;
        let (_, mut records) = self.partitions_now(RECORDS).await?;
        records.sort_by_key(|p| p.lower);
        for partition in records.iter().take_while(|p| expired(p)) {
            let newest: Option<i64> = sqlx::query_scalar(AssertSqlSafe(format!(
                "SELECT max(event_id) FROM {}",
                partition.name
            )))
            .fetch_one(&self.pool)
            .await?;
            let orphans = match (newest, oldest) {
                (None, _) | (Some(_), None) => true,
                (Some(newest), Some(oldest)) => newest < oldest,
            };
            if !orphans || !self.drop_partition(RECORDS, &partition.name).await? {
                break;
            }
            dropped += 1;
        }
        // One statement, so that it sees a new event and its records
        // together or neither.
        sqlx::query(
            "DELETE FROM meeting_event_records_default \
             WHERE event_id < (SELECT min(event_id) FROM meeting_events)",
        )
        .execute(&self.pool)
        .await?;
        Ok(dropped)
    }

    /// The database's time and a table's time partitions, read with the
    /// settings of `maintenance` (no lock needed to read them).
    async fn partitions_now(&self, table: Table) -> Result<(i64, Vec<Partition>)> {
        let mut tx = super::begin(&self.pool, None).await?;
        sqlx::raw_sql("SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, YMD'")
            .execute(&mut *tx)
            .await?;
        let now: DateTime<Utc> = sqlx::query_scalar("SELECT now()")
            .fetch_one(&mut *tx)
            .await?;
        let partitions = sqlx::query_as(PARTITIONS)
            .bind(table.parent)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok((now.timestamp_micros(), partitions))
    }

    /// Drops a partition in a short transaction of its own; false if the
    /// lock did not come within the timeout (tried again next round) or
    /// another instance holds the maintenance lock. An events partition's
    /// newest number becomes the feed's expired-through mark in the same
    /// transaction (migration 0023), so the mark and the drop are seen
    /// together or not at all.
    async fn drop_partition(&self, table: Table, name: &str) -> Result<bool> {
        let Some(mut tx) = self.maintenance().await? else {
            return Ok(false);
        };
        // Another instance dropped it between our reading of the catalog and
        // our taking the maintenance lock.
        let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
            .bind(name)
            .fetch_one(&mut *tx)
            .await?;
        if !exists {
            return Ok(true);
        }
        // The locks the DROP takes, in its order (parent, then partition),
        // before the partition's newest number is read: no numbering step
        // can then commit rows into it that the mark would not count.
        let dropped = sqlx::raw_sql(AssertSqlSafe(format!(
            "LOCK TABLE ONLY {parent} IN ACCESS EXCLUSIVE MODE; \
             LOCK TABLE ONLY {name} IN ACCESS EXCLUSIVE MODE; {mark} DROP TABLE {name}",
            parent = table.parent,
            mark = if table.parent == EVENTS.parent {
                format!(
                    "UPDATE meeting_event_expiry SET expired_through = greatest(expired_through, \
                     (SELECT coalesce(max(sequence), 0) FROM {name}));"
                )
            } else {
                String::new()
            },
        )))
        .execute(&mut *tx)
        .await;
        match dropped {
            Ok(_) => {}
            Err(e) if is_lock_timeout(&e) => {
                tracing::debug!(partition = %name, "dropping a change-feed partition waited too long; retrying later");
                return Ok(false);
            }
            Err(e) => return Err(e.into()),
        }
        tx.commit().await?;
        tracing::info!(partition = %name, "expired change-feed partition dropped");
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partition(lower: Option<i64>, upper: Option<i64>) -> Partition {
        Partition {
            name: String::new(),
            lower,
            upper,
        }
    }

    #[test]
    fn spans_follow_the_retention() {
        let hours = |h: u64| Duration::from_secs(h * 3_600);
        assert_eq!(partition_span(hours(168)), hours(24));
        assert_eq!(partition_span(hours(24)), hours(6));
        assert_eq!(partition_span(hours(2)), Duration::from_secs(600));
        assert_eq!(
            partition_span(Duration::from_secs(2)),
            Duration::from_secs(1)
        );
        for span in SPANS {
            assert_eq!(86_400 % span.as_secs(), 0);
        }
    }

    #[test]
    fn a_new_partition_fills_the_gap_around_its_instant() {
        // Nothing yet: the span's slot.
        assert_eq!(slot(1_250, 1_000, &[]), (1_000, 2_000));
        assert_eq!(slot(-1, 1_000, &[]), (-1_000, 0));
        // After the legacy partition (MINVALUE to 1_100) and before one
        // made by an instance with a shorter span.
        let existing = [
            partition(None, Some(1_100)),
            partition(Some(1_500), Some(1_600)),
        ];
        assert_eq!(slot(1_250, 1_000, &existing), (1_100, 1_500));
        assert_eq!(slot(1_700, 1_000, &existing), (1_600, 2_000));
        assert!(existing[0].covers(1_099) && !existing[0].covers(1_100));
    }
}
