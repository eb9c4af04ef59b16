//! The wire layer: the tonic service. Each RPC parses its request into
//! domain values, calls storage, and maps results back to wire types.
//!
//! One file per RPC or close group: `create` (CreateMeeting and
//! ImportMeetings), `get`, `stream` (StreamMeetingsByCountryPair), `list`,
//! `update` (UpdateMeeting and DeleteMeeting), `summary`, `watch`. Shared:
//! `request` (parsing), `convert` (domain <-> wire), `limits` (call slots,
//! database shares, deadlines), `edge` (the layer around every call),
//! `coalesce` (concurrent calls in one statement), `encoded` (GetMeeting
//! from stored bytes). This file holds the service, its admission wrappers
//! and the trait's delegations.

mod coalesce;
mod convert;
mod create;
mod duplicates;
mod edge;
mod encoded;
mod get;
mod limits;
mod list;
mod merge;
mod paged;
mod request;
mod stream;
mod summary;
mod update;
mod watch;

pub use create::IMPORT_BATCH;
pub use duplicates::fill_match_keys;
pub use edge::{EdgeLayer, code_name};
pub use encoded::{COMPRESSION, MeetingServiceRouter};
pub use limits::{DatabaseShare, Limits, Origin};

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio_stream::Stream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};
use tracing::Instrument;
use uuid::Uuid;

pub use convert::{etag, meeting_to_pb, stored_record, timestamp, without_output_fields};

use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::pb::{self, meeting_service_server::MeetingService};
use crate::storage::{Inserted, Lsn, NewRow, Storage};
use coalesce::Coalescer;

/// Implementation of `meetings.v1.MeetingService`.
#[derive(Clone)]
pub struct MeetingsApi {
    storage: Storage,
    shutdown: CancellationToken,
    /// Bumped whenever events were numbered; wakes watchers.
    events: tokio::sync::watch::Receiver<u64>,
    limits: Limits,
    /// Concurrent GetMeeting calls, one statement per batch.
    lookups: Coalescer<Uuid, Option<Vec<u8>>>,
    /// WAL positions for write responses: one statement for concurrent
    /// writes (any position read after a commit is at or past it).
    positions: Coalescer<(), Lsn>,
    /// Concurrent CreateMeeting calls, one statement (one commit) per batch.
    creates: Coalescer<NewRow, Result<(NewRow, Inserted)>>,
    metrics: Metrics,
    /// Page reads of streams (pair streams and watchers) running at once:
    /// at most half the pool, so that streams, however many, leave
    /// connections for every other call.
    page_reads: Arc<Semaphore>,
}

/// Most calls one coalesced statement serves.
const MAX_COALESCED: usize = 64;
/// Lookup statements running at once. A lookup statement takes well under
/// a millisecond, so one or two keep up with any load; the fewer run, the
/// more calls each serves.
const LOOKUPS_IN_FLIGHT: usize = 1;
/// Create statements running at once. Each waits for its commit to reach
/// the disk; PostgreSQL flushes the commits of concurrent statements
/// together, so several in flight share each flush.
const CREATES_IN_FLIGHT: usize = 4;

/// Response metadata of every successful write when replicas are
/// configured: the primary's WAL position after its commit.
pub const WRITE_POSITION: &str = "x-meetings-lsn";
/// Longest wait for a write's position; past it the response goes
/// without one.
const POSITION_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(250);
/// Request metadata of a read: a position from `WRITE_POSITION` that the
/// database serving the read must have replayed (read-your-writes).
pub const MIN_POSITION: &str = "x-meetings-min-lsn";

impl MeetingsApi {
    /// `shutdown` ends open streams when cancelled.
    /// `events` is bumped whenever change-feed events were numbered.
    pub fn new(
        storage: Storage,
        shutdown: CancellationToken,
        events: tokio::sync::watch::Receiver<u64>,
        limits: Limits,
        metrics: Metrics,
    ) -> Self {
        let lookups = {
            let storage = storage.clone();
            Coalescer::new(
                "get_meeting",
                MAX_COALESCED,
                LOOKUPS_IN_FLIGHT,
                move |ids: Vec<Uuid>| {
                    let storage = storage.clone();
                    async move {
                        let found: HashMap<Uuid, Vec<u8>> = storage
                            .read_at(None, |s| {
                                let ids = &ids;
                                async move { s.get_meetings(ids).await }
                            })
                            .await?
                            .into_iter()
                            .map(|r| (r.id, r.record))
                            .collect();
                        Ok(ids.iter().map(|id| found.get(id).cloned()).collect())
                    }
                },
            )
        };
        let creates = {
            let storage = storage.clone();
            Coalescer::new(
                "create_meeting",
                MAX_COALESCED,
                CREATES_IN_FLIGHT,
                move |rows: Vec<NewRow>| create::insert_coalesced(storage.clone(), rows),
            )
        };
        let positions = {
            let storage = storage.clone();
            Coalescer::new("write_position", MAX_COALESCED, 1, move |calls: Vec<()>| {
                let storage = storage.clone();
                async move { Ok(vec![storage.write_position().await?; calls.len()]) }
            })
        };
        let pool_size = storage.pool().options().get_max_connections() as usize;
        Self {
            storage,
            shutdown,
            events,
            limits,
            lookups,
            positions,
            creates,
            metrics,
            page_reads: Arc::new(Semaphore::new((pool_size / 2).max(1))),
        }
    }

    /// A unary call within the server's limits: a concurrent-call slot of
    /// the server and of its connection's and caller's shares, then `call`
    /// on the request's message within its deadline. For calls whose
    /// statements are coalesced (GetMeeting, CreateMeeting), which use a
    /// few pool connections for all callers together.
    async fn unary<M, T, F>(&self, request: Request<M>, call: impl FnOnce(M) -> F) -> Result<T>
    where
        F: std::future::Future<Output = Result<T>>,
    {
        let _admission = self.limits.admit(&Origin::of(&request))?;
        self.limits
            .within_deadline(self.storage.answering(call(request.into_inner())))
            .await
    }

    /// `response` with the WAL position of the write it answers. A write
    /// that committed is not failed for want of its position: it then
    /// answers `Lsn::PRIMARY`, which sends the caller's reads at it to the
    /// primary. Sent only with replicas configured: without them every read
    /// is the primary's, and the query would cost each write a round trip
    /// for nothing (a fifth of a one-client CreateMeeting's rate, measured
    /// in docs/scaling.md).
    async fn with_position<T>(&self, mut response: Response<T>) -> Response<T> {
        if let Some(position) = self.write_position().await {
            response.metadata_mut().insert(WRITE_POSITION, position);
        }
        response
    }

    /// The value of `WRITE_POSITION` for a write that committed; None
    /// without replicas.
    async fn write_position(&self) -> Option<tonic::metadata::AsciiMetadataValue> {
        self.storage.replicas()?;
        // Bounded: a committed write must not miss its deadline waiting
        // for its position.
        let position = tokio::time::timeout(POSITION_TIMEOUT, self.positions.call(())).await;
        let lsn = match position.unwrap_or(Err(Error::DeadlineExceeded)) {
            Ok(lsn) => lsn,
            Err(e) => {
                tracing::warn!(error = %e, "no WAL position for a write response; its reads go to the primary");
                Lsn::PRIMARY
            }
        };
        lsn.to_string().parse().ok()
    }

    /// `unary` for a call that holds a pool connection of its own: it also
    /// waits for a database slot of its connection's and caller's shares.
    async fn unary_with_database<M, T, F>(
        &self,
        request: Request<M>,
        call: impl FnOnce(M) -> F,
    ) -> Result<T>
    where
        F: std::future::Future<Output = Result<T>>,
    {
        let admission = self.limits.admit(&Origin::of(&request))?;
        let message = request.into_inner();
        self.limits
            .within_deadline(self.storage.answering(async {
                let _database = admission.database().acquire().await?;
                call(message).await
            }))
            .await
    }
}

#[tonic::async_trait]
impl MeetingService for MeetingsApi {
    async fn create_meeting(
        &self,
        request: Request<pb::CreateMeetingRequest>,
    ) -> Result<Response<pb::CreateMeetingResponse>, Status> {
        let (meeting, merged_into) = self.unary(request, |req| self.create(req)).await?;
        if merged_into.is_empty() {
            tracing::info!(id = %meeting.id, "meeting stored");
        } else {
            tracing::info!(id = %meeting.id, "report merged into a stored meeting");
        }
        Ok(self
            .with_position(Response::new(pb::CreateMeetingResponse {
                meeting: Some(meeting),
                merged_into,
            }))
            .await)
    }

    async fn get_meeting(
        &self,
        request: Request<pb::GetMeetingRequest>,
    ) -> Result<Response<pb::GetMeetingResponse>, Status> {
        // Served by MeetingServiceRouter from the stored bytes; this decoded
        // form answers only if the generated server is used on its own.
        let at = request::read_position(&request)?;
        let record = self.unary(request, |req| self.get_record(req, at)).await?;
        Ok(Response::new(pb::GetMeetingResponse {
            meeting: Some(request::decode_record(&record)?),
        }))
    }

    async fn import_meetings(
        &self,
        request: Request<Streaming<pb::ImportMeetingsRequest>>,
    ) -> Result<Response<pb::ImportMeetingsResponse>, Status> {
        let admission = self.limits.admit(&Origin::of(&request))?;
        match self
            .import(request.into_inner(), admission.database())
            .await
        {
            Ok(response) => {
                self.count_imported(|outcome| match outcome {
                    "created" => response.created_count,
                    "merged" => response.merged_count,
                    "existing" => response.duplicate_count,
                    _ => response.rejected_count,
                });
                Ok(self.with_position(Response::new(response)).await)
            }
            Err(mut status) => {
                // An import that stopped part-way (its ErrorInfo says where
                // to resume) stored what came before: its position lets the
                // caller read that.
                let details = tonic_types::StatusExt::get_error_details(&status);
                let info = details.error_info();
                if let Some(info) = info {
                    self.count_imported(|outcome| {
                        let key = match outcome {
                            "created" => "created_count",
                            "merged" => "merged_count",
                            "existing" => "duplicate_count",
                            _ => "rejected_count",
                        };
                        info.metadata
                            .get(key)
                            .and_then(|n| n.parse().ok())
                            .unwrap_or(0)
                    });
                }
                let stopped = info.is_some_and(|info| info.metadata.contains_key("resume_index"));
                if stopped && let Some(position) = self.write_position().await {
                    status.metadata_mut().insert(WRITE_POSITION, position);
                }
                Err(status)
            }
        }
    }

    async fn list_meetings(
        &self,
        request: Request<pb::ListMeetingsRequest>,
    ) -> Result<Response<pb::ListMeetingsResponse>, Status> {
        let at = request::read_position(&request)?;
        Ok(Response::new(
            self.unary_with_database(request, |req| self.list(req, at))
                .await?,
        ))
    }

    async fn update_meeting(
        &self,
        request: Request<pb::UpdateMeetingRequest>,
    ) -> Result<Response<pb::UpdateMeetingResponse>, Status> {
        let meeting = self
            .unary_with_database(request, |req| self.update(req))
            .await?;
        tracing::info!(id = %meeting.id, etag = %meeting.etag, "meeting updated");
        Ok(self
            .with_position(Response::new(pb::UpdateMeetingResponse {
                meeting: Some(meeting),
            }))
            .await)
    }

    async fn delete_meeting(
        &self,
        request: Request<pb::DeleteMeetingRequest>,
    ) -> Result<Response<pb::DeleteMeetingResponse>, Status> {
        let id = request.get_ref().id.clone();
        self.unary_with_database(request, |req| self.delete(req))
            .await?;
        tracing::info!(id = %id, "meeting deleted");
        Ok(self
            .with_position(Response::new(pb::DeleteMeetingResponse {}))
            .await)
    }

    type WatchMeetingsStream =
        Pin<Box<dyn Stream<Item = Result<pb::WatchMeetingsResponse, Status>> + Send>>;

    async fn watch_meetings(
        &self,
        request: Request<pb::WatchMeetingsRequest>,
    ) -> Result<Response<Self::WatchMeetingsStream>, Status> {
        let watcher = Watcher::new(self.metrics.clone());
        let stream = counted(
            self.watch(request).await?,
            self.metrics.clone(),
            "WatchMeetings",
        );
        Ok(Response::new(Box::pin(tokio_stream::StreamExt::map(
            stream,
            move |item| {
                let _connected = &watcher;
                item
            },
        ))))
    }

    async fn get_country_pair_summary(
        &self,
        request: Request<pb::GetCountryPairSummaryRequest>,
    ) -> Result<Response<pb::GetCountryPairSummaryResponse>, Status> {
        let at = request::read_position(&request)?;
        Ok(Response::new(
            self.unary_with_database(request, |req| self.summary(req, at))
                .await?,
        ))
    }

    async fn find_duplicate_meetings(
        &self,
        request: Request<pb::FindDuplicateMeetingsRequest>,
    ) -> Result<Response<pb::FindDuplicateMeetingsResponse>, Status> {
        Ok(Response::new(
            self.unary_with_database(request, |req| self.find_duplicates(req))
                .await?,
        ))
    }

    async fn merge_meetings(
        &self,
        request: Request<pb::MergeMeetingsRequest>,
    ) -> Result<Response<pb::MergeMeetingsResponse>, Status> {
        let meeting = self
            .unary_with_database(request, |req| self.merge_meetings(req))
            .await?;
        tracing::info!(id = %meeting.id, merged = meeting.merged_ids.len(), "meetings merged");
        Ok(self
            .with_position(Response::new(pb::MergeMeetingsResponse {
                meeting: Some(meeting),
            }))
            .await)
    }

    type StreamMeetingsByCountryPairStream =
        Pin<Box<dyn Stream<Item = Result<pb::StreamMeetingsByCountryPairResponse, Status>> + Send>>;

    async fn stream_meetings_by_country_pair(
        &self,
        request: Request<pb::StreamMeetingsByCountryPairRequest>,
    ) -> Result<Response<Self::StreamMeetingsByCountryPairStream>, Status> {
        Ok(Response::new(Box::pin(counted(
            self.pair_stream(request).await?,
            self.metrics.clone(),
            "StreamMeetingsByCountryPair",
        ))))
    }
}

impl MeetingsApi {
    /// Counts an import's records by outcome (`count` gives each one's).
    fn count_imported(&self, count: impl Fn(&'static str) -> u64) {
        for outcome in ["created", "merged", "existing", "rejected"] {
            self.metrics.import_records(outcome, count(outcome));
        }
    }
}

/// A response stream whose messages are counted as sent on `method`.
fn counted<T, S>(
    stream: S,
    metrics: Metrics,
    method: &'static str,
) -> impl Stream<Item = Result<T, Status>> + Send
where
    S: Stream<Item = Result<T, Status>> + Send,
{
    tokio_stream::StreamExt::map(stream, move |item| {
        if item.is_ok() {
            metrics.stream_messages(method, 1);
        }
        item
    })
}

/// A connected watcher, counted until its stream is dropped.
struct Watcher(Metrics);

impl Watcher {
    fn new(metrics: Metrics) -> Self {
        metrics.watcher(true);
        Self(metrics)
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.0.watcher(false);
    }
}

/// A stream that keeps its call slots until it ends or is dropped.
fn holding<S: Stream + Send>(
    stream: S,
    admission: limits::Admission,
) -> impl Stream<Item = S::Item> + Send {
    tokio_stream::StreamExt::map(stream, move |item| {
        let _slots = &admission;
        item
    })
}

/// Reads one page of a stream in a task of its own, which reads the page
/// completely and gives its pool connection back whether or not the
/// stream is polled again. A response stream is polled only while the
/// client's HTTP/2 window is open: a read that ran inside it would keep its
/// connection for as long as a client chose not to read. `reads` bounds how
/// many such reads run at once, and `share` how many of the call's
/// connection and caller; dropping the returned future (the client went
/// away) aborts the read.
async fn read_page<T: Send + 'static>(
    reads: &Arc<Semaphore>,
    share: &DatabaseShare,
    read: impl Future<Output = Result<T>> + Send + 'static,
) -> Result<T> {
    let reads = reads.clone();
    let share = share.clone();
    let task = tokio_util::task::AbortOnDropHandle::new(tokio::spawn(
        async move {
            let _database = share.acquire().await?;
            let _slot = reads
                .acquire_owned()
                .await
                .map_err(|e| Error::internal(anyhow::anyhow!("page reads closed: {e}")))?;
            read.await
        }
        .in_current_span(),
    ));
    task.await.map_err(Error::internal)?
}
