//! The change feed: numbering the events of committed writes and the
//! pages watchers read (expiry: `partitions`).

use std::time::Duration;

use super::model::{NumberedEvents, PendingEvents};
use super::{EventPage, EventRow, PAGE_BYTES, Storage};
use crate::domain::PartyPair;
use crate::error::Result;

/// Advisory lock key of the event sequencer ("meetings" in ASCII).
const SEQUENCER_LOCK: i64 = 0x6d65_6574_696e_6773;
/// NOTIFY channel the sequencer wakes watchers on.
const EVENTS_CHANNEL: &str = "meetings_events";

const PENDING_EVENTS: &str = include_str!("queries/pending_events.sql");
const NUMBER_EVENTS: &str = include_str!("queries/number_events.sql");
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

    /// The newest number retention has dropped (0 before the first drop).
    /// A position before it would miss events; numbers after it may still
    /// be missing, as numbers a failed numbering step reserved and never
    /// used, which a watcher skips.
    pub async fn expired_through(&self) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT expired_through FROM meeting_event_expiry")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Event rows written and not yet numbered.
    pub async fn pending_events(&self) -> Result<i64> {
        Ok(
            sqlx::query_scalar(
                "SELECT count(*) FROM meeting_events WHERE numbered_at = 'infinity'",
            )
            .fetch_one(&self.pool)
            .await?,
        )
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
