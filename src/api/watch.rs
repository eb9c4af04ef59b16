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

use tokio::sync::Semaphore;
use tokio::sync::watch;
use tokio_stream::Stream;
use tokio_util::sync::CancellationToken;
use tonic::Status;
use tracing::Instrument;

use super::request::{decode_record, parse_pair};
use super::{DatabaseShare, MeetingsApi, read_page, timestamp};
use crate::domain::{CountryPair, Violations};
use crate::error::{Error, Result};
use crate::pb;
use crate::storage::{EventRow, Storage};

/// Sequence numbers read per page.
const EVENT_PAGE: u32 = 256;

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
