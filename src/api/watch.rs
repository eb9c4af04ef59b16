//! WatchMeetings: the change feed, read from the events table.
//!
//! Events are written in the same transaction as the change (a
//! transactional outbox) and numbered afterwards by the sequencer (see
//! `storage::Storage::sequence_events`). A watcher reads numbered events
//! after its position; it is woken by NOTIFY, by this instance's own
//! sequencer, or, if a notification was lost, by the instance's poller,
//! which looks at the newest number once a second for all its watchers: an
//! idle watcher runs no query.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use tokio::sync::watch;
use tokio_stream::Stream;
use tokio_util::sync::CancellationToken;
use tonic::Status;
use tracing::Instrument;

use super::{DatabaseShare, MeetingsApi, decode_record, parse_pair, read_page, timestamp};
use crate::domain::{CountryPair, Violations};
use crate::error::{Error, Result};
use crate::pb;
use crate::storage::{EventRow, Storage};

/// Sequence numbers read per page.
const EVENT_PAGE: u32 = 256;
/// How often the poller looks for events no notification announced.
const POLL: Duration = Duration::from_secs(1);
/// Shortest time between the starts of two sequencer steps that numbered
/// events. Each step is a committed (fsynced) transaction: stepping after
/// every write would double the commits of a steady stream of writes, so
/// under load a step numbers all the writes of its interval. An idle
/// sequencer steps at once: a lone write is delivered without this delay.
const SEQUENCE_INTERVAL: Duration = Duration::from_millis(100);

impl MeetingsApi {
    pub(super) async fn watch_start(
        &self,
        req: &pb::WatchMeetingsRequest,
    ) -> Result<(i64, Option<CountryPair>)> {
        let mut v = Violations::new();
        let pair = match (req.country_a.trim(), req.country_b.trim()) {
            ("", "") => None,
            _ => parse_pair(&req.country_a, &req.country_b, &mut v),
        };
        let after = i64::try_from(req.after_sequence)
            .map_err(|_| v.add("after_sequence", "is larger than any sequence number"))
            .unwrap_or(0);
        if !v.is_empty() {
            return Err(Error::invalid_request(v));
        }
        if after > 0 {
            // A position the feed has not reached (a client that kept its
            // position across a restore of the database) would wait for
            // events it will never get.
            let newest = self.storage.newest_sequence().await?;
            if after > newest {
                return Err(Error::SequenceAhead { newest });
            }
            if let Some(oldest) = self.storage.oldest_event().await?
                && after < oldest - 1
            {
                return Err(Error::EventsExpired { oldest });
            }
        }
        Ok((after, pair))
    }
}

/// Where a watcher is.
struct Watcher {
    storage: Storage,
    reads: Arc<Semaphore>,
    share: DatabaseShare,
    after: i64,
    pair: Option<CountryPair>,
    buffer: std::vec::IntoIter<EventRow>,
    /// The number the buffered page covers through (its events may be
    /// fewer: other pairs').
    through: i64,
    wake: watch::Receiver<u64>,
    shutdown: CancellationToken,
    ended: bool,
}

/// The events after `after`, then new ones as they are numbered, until the
/// client goes away or the server shuts down (UNAVAILABLE: resume with the
/// last sequence received).
pub(super) fn watch_stream(
    storage: Storage,
    reads: Arc<Semaphore>,
    share: DatabaseShare,
    after: i64,
    pair: Option<CountryPair>,
    wake: watch::Receiver<u64>,
    shutdown: CancellationToken,
) -> impl Stream<Item = Result<pb::WatchMeetingsResponse, Status>> + Send {
    let state = Watcher {
        storage,
        reads,
        share,
        after,
        pair,
        buffer: Vec::new().into_iter(),
        through: after,
        wake,
        shutdown,
        ended: false,
    };
    let span = tracing::Span::current();
    futures_util::stream::unfold(state, move |mut w| {
        async move {
            loop {
                if w.ended {
                    return None;
                }
                if w.shutdown.is_cancelled() {
                    w.ended = true;
                    return Some((Err(Error::ShuttingDown.into()), w));
                }
                if let Some(row) = w.buffer.next() {
                    w.after = row.sequence;
                    let item = event_to_pb(row).map_err(Status::from);
                    w.ended = item.is_err();
                    return Some((item, w));
                }
                // The page is delivered: go on after all it covered.
                w.after = w.after.max(w.through);
                // Mark the current wake-up as seen before reading, so one that
                // arrives during the read is not missed.
                w.wake.borrow_and_update();
                let (storage, after, pair) = (w.storage.clone(), w.after, w.pair);
                let read = read_page(&w.reads, &w.share, async move {
                    let page = storage.events_after(after, pair, EVENT_PAGE).await?;
                    // Events after the position expired while the watcher
                    // was connected (it fell behind the retention): it
                    // would miss them, so it ends as a new watch would.
                    if let Some(oldest) = storage.oldest_event().await?
                        && after < oldest - 1
                    {
                        return Err(Error::EventsExpired { oldest });
                    }
                    Ok(page)
                });
                let page = tokio::select! {
                    () = w.shutdown.cancelled() => continue,
                    page = read => page,
                };
                match page {
                    Ok(page) if page.through > w.after => {
                        w.buffer = page.events.into_iter();
                        w.through = page.through;
                        continue;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        w.ended = true;
                        return Some((Err(e.into()), w));
                    }
                }
                tokio::select! {
                    () = w.shutdown.cancelled() => {}
                    changed = w.wake.changed() => {
                        if changed.is_err() {
                            // Nothing wakes watchers any more: the server
                            // is stopping.
                            w.shutdown.cancelled().await;
                        }
                    }
                }
            }
        }
        .instrument(span.clone())
    })
}

fn event_to_pb(row: EventRow) -> Result<pb::WatchMeetingsResponse> {
    let meeting = match &row.record {
        Some(record) => decode_record(record)?,
        None => pb::Meeting {
            id: row.meeting_id.to_string(),
            country_codes: row.country_codes.clone(),
            ..Default::default()
        },
    };
    Ok(pb::WatchMeetingsResponse {
        event: Some(pb::MeetingEvent {
            sequence: u64::try_from(row.sequence).unwrap_or(0),
            kind: i32::from(row.kind),
            meeting: Some(meeting),
            event_time: Some(timestamp(row.event_time)),
        }),
    })
}

/// Numbers events and wakes this instance's watchers; expires old events.
/// Runs in every instance: the advisory lock makes one number at a time.
pub async fn run_sequencer(
    storage: Storage,
    wake: watch::Sender<u64>,
    retention: Duration,
    stop: CancellationToken,
) {
    let mut last_expiry = tokio::time::Instant::now();
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = storage.events_written(Duration::from_millis(100)) => {}
        }
        let step = tokio::time::Instant::now();
        match storage.sequence_events().await {
            Ok(0) => {}
            Ok(_) => {
                wake.send_modify(|n| *n += 1);
                // Writes meanwhile leave a stored wake-up; they are numbered
                // together after the interval.
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep_until(step + SEQUENCE_INTERVAL) => {}
                }
            }
            Err(e) => tracing::warn!(error = %e, "event sequencer failed; retrying"),
        }
        if last_expiry.elapsed() > expiry_interval(retention) {
            last_expiry = tokio::time::Instant::now();
            match storage.expire_events(retention).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(expired = n, "old change-feed events deleted"),
                Err(e) => tracing::warn!(error = %e, "expiring events failed"),
            }
        }
    }
}

/// How often old events are expired: every minute, or four times within a
/// shorter retention (so that a watcher behind it learns soon).
fn expiry_interval(retention: Duration) -> Duration {
    (retention / 4).clamp(Duration::from_millis(100), Duration::from_secs(60))
}

/// Wakes this instance's watchers when the feed has moved on although no
/// notification said so (NOTIFYs sent while the listener reconnects are
/// lost): one query a second for the whole instance.
pub async fn run_poller(storage: Storage, wake: watch::Sender<u64>, stop: CancellationToken) {
    let mut seen = None;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(POLL) => {}
        }
        match storage.newest_sequence().await {
            Ok(newest) if seen != Some(newest) => {
                seen = Some(newest);
                wake.send_modify(|n| *n += 1);
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "cannot look for new events yet"),
        }
    }
}

/// Forwards the sequencers' NOTIFYs (from any instance) to this instance's
/// watchers. PgListener reconnects by itself; notifications lost meanwhile
/// are covered by the watchers' polling.
pub async fn run_listener(storage: Storage, wake: watch::Sender<u64>, stop: CancellationToken) {
    loop {
        let mut listener = tokio::select! {
            () = stop.cancelled() => return,
            l = storage.listen_events() => match l {
                Ok(l) => l,
                Err(e) => {
                    tracing::debug!(error = %e, "cannot listen for events yet");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
        };
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                n = listener.recv() => match n {
                    Ok(_) => wake.send_modify(|n| *n += 1),
                    Err(e) => {
                        tracing::debug!(error = %e, "event listener lost its connection");
                        break;
                    }
                },
            }
        }
    }
}
