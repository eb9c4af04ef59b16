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
use tonic::{Request, Status};

use super::paged::{PageSource, paged};
use super::request::{PairFields, decode_record, parse_pair};
use super::{DatabaseShare, MeetingsApi, read_page, timestamp};
use super::{Origin, holding};
use crate::domain::{PartyPair, Violations, split_party_keys};
use crate::error::{Error, Result};
use crate::pb;
use crate::storage::{EventRow, Storage};

/// Sequence numbers read per page.
const EVENT_PAGE: u32 = 256;

impl MeetingsApi {
    /// A watch as served: its slots, its start, then its pages.
    pub(super) async fn watch(
        &self,
        request: Request<pb::WatchMeetingsRequest>,
    ) -> Result<impl Stream<Item = Result<pb::WatchMeetingsResponse, Status>> + Send + use<>, Status>
    {
        let admission = self.limits.admit(&Origin::of(&request))?;
        let from_start = request.get_ref().after_sequence == 0;
        let (after, pair) = self.watch_start(request.get_ref()).await?;
        let pages = EventPages {
            from_start,
            storage: self.storage.clone(),
            reads: self.page_reads.clone(),
            share: admission.database().clone(),
            after,
            pair,
            through: after,
            wake: self.events.clone(),
        };
        Ok(holding(paged(pages, self.shutdown.clone()), admission))
    }

    async fn watch_start(
        &self,
        req: &pb::WatchMeetingsRequest,
    ) -> Result<(i64, Option<PartyPair>)> {
        let mut v = Violations::new();
        let fields = PairFields {
            country_a: &req.country_a,
            country_b: &req.country_b,
            organization_a: &req.organization_a,
            organization_b: &req.organization_b,
        };
        let pair = if fields.any() {
            parse_pair(&fields, &mut v)
        } else {
            None
        };
        // Numbers are PostgreSQL bigints: a position past the largest is
        // past the newest event, like any other position the feed has not
        // reached.
        let after = i64::try_from(req.after_sequence).unwrap_or(i64::MAX);
        if !v.is_empty() {
            return Err(Error::invalid_request(v));
        }
        if after == 0 {
            // From the oldest kept event: after every expired one.
            return Ok((self.storage.expired_through().await?, pair));
        }
        // A position the feed has not reached (a client that kept its
        // position across a restore of the database) would wait for events
        // it will never get.
        let newest = self.storage.newest_sequence().await?;
        if after > newest {
            return Err(Error::SequenceAhead { newest });
        }
        let expired = self.storage.expired_through().await?;
        if after < expired {
            return Err(Error::EventsExpired { through: expired });
        }
        Ok((after, pair))
    }
}

/// A watcher's pages: the events after its position, then new ones as
/// they are numbered, until the client goes away or the server shuts down
/// (UNAVAILABLE: resume with the last sequence received).
pub(super) struct EventPages {
    /// A watch from the start of the feed that has delivered no event yet:
    /// events expiring meanwhile move its start rather than end it.
    pub(super) from_start: bool,
    pub(super) storage: Storage,
    pub(super) reads: Arc<Semaphore>,
    pub(super) share: DatabaseShare,
    pub(super) after: i64,
    pub(super) pair: Option<PartyPair>,
    /// The number the page in hand covers through (its events may be
    /// fewer: other pairs').
    pub(super) through: i64,
    pub(super) wake: watch::Receiver<u64>,
}

impl PageSource for EventPages {
    type Row = EventRow;
    type Item = pb::WatchMeetingsResponse;

    async fn next_page(&mut self) -> Result<Option<Vec<EventRow>>> {
        loop {
            // The page is delivered: go on after all it covered.
            self.after = self.after.max(self.through);
            // Mark the current wake-up as seen before reading, so one that
            // arrives during the read is not missed.
            self.wake.borrow_and_update();
            let (storage, after, pair) = (self.storage.clone(), self.after, self.pair);
            let (page, expired) = read_page(
                &self.reads,
                &self.share,
                self.storage.answering(async move {
                    let page = storage.events_after(after, pair, EVENT_PAGE).await?;
                    // Read after the page: a drop that emptied part of it
                    // raised the mark first.
                    let expired = storage.expired_through().await?;
                    Ok((page, expired))
                }),
            )
            .await?;
            if after < expired {
                if self.from_start {
                    self.through = expired;
                    continue;
                }
                // Events after the position expired while the watcher was
                // connected (it fell behind the retention): it would miss
                // them, so it ends as a new watch would.
                return Err(Error::EventsExpired { through: expired });
            }
            if page.through > self.after {
                self.through = page.through;
                return Ok(Some(page.events));
            }
            if self.wake.changed().await.is_err() {
                // Nothing wakes watchers any more: the server is stopping,
                // and the stream ends on its shutdown.
                std::future::pending::<()>().await;
            }
        }
    }

    fn item(&mut self, row: EventRow) -> Result<Self::Item> {
        self.after = row.sequence;
        self.from_start = false;
        event_to_pb(row)
    }
}

fn event_to_pb(row: EventRow) -> Result<pb::WatchMeetingsResponse> {
    let meeting = match &row.record {
        Some(record) => decode_record(record)?,
        None => {
            let (country_codes, organization_codes) = split_party_keys(&row.country_codes);
            pb::Meeting {
                id: row.meeting_id.to_string(),
                country_codes,
                organization_codes,
                ..Default::default()
            }
        }
    };
    Ok(pb::WatchMeetingsResponse {
        event: Some(pb::MeetingEvent {
            sequence: u64::try_from(row.sequence).unwrap_or(0),
            kind: i32::from(row.kind),
            meeting: Some(meeting),
            event_time: Some(timestamp(row.event_time)),
            merged_into: row.merged_into.map(|id| id.to_string()).unwrap_or_default(),
        }),
    })
}
