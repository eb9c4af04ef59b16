//! The wire layer: the tonic service. Each RPC parses its request into
//! domain values, calls storage, and maps results back to wire types.

mod changes;
mod coalesce;
mod convert;
mod edge;
mod encoded;
mod limits;
mod watch;

pub use edge::{EdgeLayer, code_name};
pub use encoded::MeetingServiceRouter;
pub use limits::{DatabaseShare, Limits, Origin};
pub use watch::{run_listener, run_poller, run_sequencer};

use chrono::{NaiveDate, SubsecRound, Utc};
use prost::Message;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::Semaphore;

use tokio_stream::Stream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};
use tracing::Instrument;
use uuid::Uuid;

pub use convert::{etag, meeting_to_pb, stored_record, timestamp, without_output_fields};

use crate::domain::{CountryCode, CountryPair, NewMeeting, RequestId, Violations, parse_date};
use crate::error::{Error, ImportStop, Result};
use crate::pb::{self, meeting_service_server::MeetingService};
use crate::storage::{Asked, Cursor, Inserted, NewRow, PairQuery, RecordRow, Storage};
use coalesce::Coalescer;
use sha2::Digest;
use std::collections::HashMap;

/// Rows in the first page of a stream: small, so the first record leaves
/// quickly.
const FIRST_PAGE: u32 = 32;
/// Rows in every later page: large enough to amortise a query, small enough
/// that a page in memory stays well under a few MiB.
const PAGE: u32 = 512;

/// Open ends of a date range, within what PostgreSQL's `date` holds.
const EARLIEST: NaiveDate = NaiveDate::from_ymd_opt(1, 1, 1).expect("valid date");
const LATEST: NaiveDate = NaiveDate::from_ymd_opt(9999, 12, 31).expect("valid date");

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
    /// Concurrent CreateMeeting calls, one statement (one commit) per batch.
    creates: Coalescer<NewRow, Result<(NewRow, Inserted)>>,
    /// Page reads of streams (pair streams and watchers) running at once:
    /// at most half the pool, so that streams, however many, leave
    /// connections for every other call.
    page_reads: Arc<Semaphore>,
}

/// Most calls one coalesced statement serves.
const MAX_COALESCED: usize = 64;
/// Creates of meetings with more countries than this are not coalesced.
const COALESCE_MAX_COUNTRIES: usize = 8;
/// Lookup statements running at once. A lookup statement takes well under
/// a millisecond, so one or two keep up with any load; the fewer run, the
/// more calls each serves.
const LOOKUPS_IN_FLIGHT: usize = 1;
/// Create statements running at once. Each waits for its commit to reach
/// the disk; PostgreSQL flushes the commits of concurrent statements
/// together, so several in flight share each flush.
const CREATES_IN_FLIGHT: usize = 4;

impl MeetingsApi {
    /// `shutdown` ends open streams when cancelled.
    /// `events` is bumped whenever change-feed events were numbered.
    pub fn new(
        storage: Storage,
        shutdown: CancellationToken,
        events: tokio::sync::watch::Receiver<u64>,
        limits: Limits,
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
                            .get_meetings(&ids)
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
                move |rows: Vec<NewRow>| insert_coalesced(storage.clone(), rows),
            )
        };
        let pool_size = storage.pool().options().get_max_connections() as usize;
        Self {
            storage,
            shutdown,
            events,
            limits,
            lookups,
            creates,
            page_reads: Arc::new(Semaphore::new((pool_size / 2).max(1))),
        }
    }

    async fn create(&self, req: pb::CreateMeetingRequest) -> Result<pb::Meeting> {
        let (meeting, request_id) =
            parse_new(req.meeting, &req.request_id).map_err(Error::invalid_meeting)?;
        let (row, record) = new_row(meeting, request_id);
        // A meeting of many countries writes many pair rows: it goes in a
        // statement of its own rather than hold up a batch of small ones.
        let (row, outcome) = if row.meeting.country_codes().len() > COALESCE_MAX_COUNTRIES {
            let outcome = self
                .storage
                .insert_meetings(std::slice::from_ref(&row))
                .await?;
            let outcome = outcome
                .into_iter()
                .next()
                .ok_or_else(|| Error::internal(anyhow::anyhow!("insert returned no outcome")))?;
            (row, outcome)
        } else {
            self.creates.call(row).await??
        };
        match outcome {
            Inserted::Created => Ok(record),
            Inserted::Existing {
                meeting_id,
                record,
                asked,
            } => {
                let reused = || Error::RequestIdReused {
                    request_id: req.request_id.clone(),
                };
                // The retry of what the key was used for gets the meeting as
                // it is now, or NOT_FOUND once deleted: never a second one.
                let stored = match (asked, record) {
                    (Asked::Other, _) => return Err(reused()),
                    (Asked::Same | Asked::Unknown, None) => {
                        return Err(Error::MeetingNotFound(meeting_id));
                    }
                    (Asked::Same, Some(bytes)) => decode_record(&bytes)?,
                    (Asked::Unknown, Some(bytes)) => {
                        same_meeting(&bytes, &row.meeting)?.ok_or_else(reused)?
                    }
                };
                tracing::debug!(id = %stored.id, "request_id retried: returning the stored meeting");
                Ok(stored)
            }
        }
    }

    async fn import(
        &self,
        mut requests: Streaming<pb::ImportMeetingsRequest>,
        share: &DatabaseShare,
    ) -> Result<pb::ImportMeetingsResponse, Status> {
        let mut report = ImportReport::default();
        let mut batch = ImportBatch::default();
        // Up to IMPORT_IN_FLIGHT batches commit while the next is read and
        // validated; outcomes are counted in stream order.
        let mut committing: std::collections::VecDeque<Committing> = Default::default();
        let mut index = 0u64;
        loop {
            // On shutdown the import stops reading, as at a bad message.
            let received = tokio::select! {
                biased;
                () = self.shutdown.cancelled() => Err(None),
                message = requests.message() => message.map_err(Some),
            };
            let item = match received {
                Ok(Some(item)) => item,
                Ok(None) => break,
                Err(status) => {
                    // The stream breaks here. Batches already committing
                    // finish and are counted; the unfinished batch is not
                    // stored, and the caller learns where to resume.
                    let resume_index = batch.origins.first().map_or(index, |(i, _)| *i);
                    while let Some(oldest) = committing.pop_front() {
                        account(oldest, &mut report).await?;
                    }
                    let cause = match &status {
                        None => ImportStop::ShuttingDown,
                        Some(s)
                            if s.code() == tonic::Code::Aborted
                                && s.message() == edge::CLIENT_RESET =>
                        {
                            // Cancelled by the client, who hears nothing more.
                            tracing::info!(
                                index,
                                resume_index,
                                created = report.counts.created_count,
                                "import cancelled by the client; its unfinished batch is not stored"
                            );
                            return Err(Status::cancelled("the import was cancelled"));
                        }
                        Some(s)
                            if matches!(
                                s.code(),
                                tonic::Code::OutOfRange | tonic::Code::ResourceExhausted
                            ) =>
                        {
                            ImportStop::TooLarge
                        }
                        Some(_) => ImportStop::Malformed,
                    };
                    tracing::info!(
                        index,
                        resume_index,
                        created = report.counts.created_count,
                        ?cause,
                        "import stopped before the end of its stream"
                    );
                    return Err(Error::ImportStopped {
                        index,
                        resume_index,
                        cause,
                        created: report.counts.created_count,
                        duplicates: report.counts.duplicate_count,
                        rejected: report.counts.rejected_count,
                    }
                    .into());
                }
            };
            match parse_new(item.meeting, &item.request_id) {
                Ok((meeting, request_id)) => {
                    let countries = meeting.country_codes().len();
                    batch.pairs += countries * countries.saturating_sub(1) / 2;
                    batch.rows.push(new_row(meeting, request_id).0);
                    batch.origins.push((index, item.request_id));
                }
                Err(violations) => reject(&mut report, index, item.request_id, violations),
            }
            index += 1;
            if batch.rows.len() == IMPORT_BATCH || batch.pairs >= IMPORT_BATCH_PAIRS {
                if committing.len() == IMPORT_IN_FLIGHT
                    && let Some(oldest) = committing.pop_front()
                {
                    account(oldest, &mut report).await?;
                }
                committing.push_back(self.commit(std::mem::take(&mut batch), share));
            }
        }
        if !batch.rows.is_empty() {
            committing.push_back(self.commit(batch, share));
        }
        while let Some(oldest) = committing.pop_front() {
            account(oldest, &mut report).await?;
        }
        tracing::info!(
            received = index,
            created = report.counts.created_count,
            duplicates = report.counts.duplicate_count,
            rejected = report.counts.rejected_count,
            "import finished"
        );
        Ok(report.counts)
    }

    /// Starts committing a batch. The task finishes even if the client goes
    /// away: what it stores is complete meetings, and request_ids make a
    /// retried import safe.
    fn commit(&self, batch: ImportBatch, share: &DatabaseShare) -> Committing {
        let storage = self.storage.clone();
        let share = share.clone();
        tokio::spawn(
            async move {
                let outcomes = match share.acquire().await {
                    Ok(_database) => storage.insert_meetings(&batch.rows).await,
                    Err(e) => Err(e),
                };
                (batch, outcomes)
            }
            .in_current_span(),
        )
    }

    /// The stored record of the meeting a GetMeeting asks for.
    async fn get_record(&self, req: pb::GetMeetingRequest) -> Result<Vec<u8>> {
        let id = parse_id("id", &req.id).map_err(Error::invalid_request)?;
        self.lookups
            .call(id)
            .await?
            .ok_or(Error::MeetingNotFound(id))
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
            .within_deadline(call(request.into_inner()))
            .await
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
            .within_deadline(async {
                let _database = admission.database().acquire().await?;
                call(message).await
            })
            .await
    }

    /// GetMeeting as served: the stored record forwarded as it is.
    async fn get_meeting_encoded(
        &self,
        request: Request<pb::GetMeetingRequest>,
    ) -> Result<Response<encoded::EncodedGetMeetingResponse>, Status> {
        let record = self.unary(request, |req| self.get_record(req)).await?;
        Ok(Response::new(
            encoded::EncodedGetMeetingResponse::from_record(&record),
        ))
    }

    /// Parses the request and finds where the stream starts.
    async fn stream_start(
        &self,
        req: &pb::StreamMeetingsByCountryPairRequest,
    ) -> Result<PairQuery> {
        let mut v = Violations::new();
        let pair = parse_pair(&req.country_a, &req.country_b, &mut v);
        let mut optional_date = |field: &str, raw: &str| match raw {
            "" => None,
            raw => parse_date(raw).map_err(|e| v.add(field, e)).ok(),
        };
        let from = optional_date("from_date", &req.from_date);
        let to = optional_date("to_date", &req.to_date);
        if let (Some(from), Some(to)) = (from, to)
            && from > to
        {
            v.add("to_date", format!("{to} is before from_date {from}"));
        }
        let start_after = match req.start_after_id.as_str() {
            "" => None,
            raw => parse_id("start_after_id", raw)
                .map_err(|e| v.extend(e))
                .ok(),
        };
        let Some(pair) = pair.filter(|_| v.is_empty()) else {
            return Err(Error::invalid_request(v));
        };

        let (mut after, bound) = PairQuery::start(
            from.unwrap_or(EARLIEST),
            to.unwrap_or(LATEST),
            req.newest_first,
        );
        if let Some(id) = start_after {
            let row = self
                .storage
                .get_meeting(id)
                .await?
                .ok_or(Error::MeetingNotFound(id))?;
            let resume = Cursor { date: row.date, id };
            // Keep whichever of the date bound and the resume point lies
            // further along the stream.
            after = if req.newest_first {
                after.min(resume)
            } else {
                after.max(resume)
            };
        }
        Ok(PairQuery {
            pair,
            after,
            bound,
            newest_first: req.newest_first,
            limit: FIRST_PAGE,
        })
    }
}

/// Where a pair stream is: the page in hand and the query for the next one.
struct PairStream {
    storage: Storage,
    reads: Arc<Semaphore>,
    share: DatabaseShare,
    query: PairQuery,
    page: std::vec::IntoIter<RecordRow>,
    /// The last page read was the last one.
    exhausted: bool,
    /// An error was sent: nothing follows it.
    failed: bool,
    shutdown: CancellationToken,
}

/// The meetings of a pair, read page by page as the client consumes them.
///
/// The stream is polled by the connection's own task, so records go from
/// the page straight to HTTP/2 frames with no channel in between. It holds
/// one page at a time, whatever the result size, and a pool connection only
/// while a page is read (see `read_page`); a client that goes away drops
/// it, which ends the work at once. On shutdown it ends with UNAVAILABLE.
fn pair_stream(
    storage: Storage,
    reads: Arc<Semaphore>,
    share: DatabaseShare,
    query: PairQuery,
    shutdown: CancellationToken,
) -> impl Stream<Item = Result<pb::StreamMeetingsByCountryPairResponse, Status>> + Send {
    let state = PairStream {
        storage,
        reads,
        share,
        query,
        page: Vec::new().into_iter(),
        exhausted: false,
        failed: false,
        shutdown,
    };
    let span = tracing::Span::current();
    futures_util::stream::unfold(state, move |mut st| {
        async move {
            loop {
                if st.failed {
                    return None;
                }
                if st.shutdown.is_cancelled() {
                    st.failed = true;
                    return Some((Err(Error::ShuttingDown.into()), st));
                }
                if let Some(row) = st.page.next() {
                    st.query.after = Cursor {
                        date: row.date,
                        id: row.id,
                    };
                    let item = decode_record(&row.record)
                        .map(|m| pb::StreamMeetingsByCountryPairResponse { meeting: Some(m) })
                        .map_err(Status::from);
                    st.failed = item.is_err();
                    return Some((item, st));
                }
                if st.exhausted {
                    return None;
                }
                let (storage, query) = (st.storage.clone(), st.query);
                let read = read_page(&st.reads, &st.share, async move {
                    storage.pair_page(&query).await
                });
                let page = tokio::select! {
                    () = st.shutdown.cancelled() => Err(Error::ShuttingDown),
                    page = read => page,
                };
                match page {
                    Ok(page) => {
                        st.exhausted = !page.more;
                        st.query.limit = PAGE;
                        st.page = page.rows.into_iter();
                    }
                    Err(e) => {
                        st.failed = true;
                        return Some((Err(e.into()), st));
                    }
                }
            }
        }
        .instrument(span.clone())
    })
}

/// Stores the rows of concurrent CreateMeeting calls in one statement. The
/// rows are valid, so a statement fails for the database's sake, not a row's;
/// if one fails otherwise, each row is tried alone so that a row the database
/// refuses fails its own call only.
async fn insert_coalesced(
    storage: Storage,
    rows: Vec<NewRow>,
) -> Result<Vec<Result<(NewRow, Inserted)>>> {
    match storage.insert_meetings(&rows).await {
        Ok(outcomes) => Ok(rows.into_iter().zip(outcomes).map(Ok).collect()),
        Err(e) if rows.len() == 1 || matches!(e, Error::Unavailable(_)) => Err(e),
        Err(e) => {
            tracing::warn!(error = %e, rows = rows.len(), "batched create failed; trying each row alone");
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(
                    storage
                        .insert_meetings(std::slice::from_ref(&row))
                        .await
                        .and_then(|o| {
                            o.into_iter().next().ok_or_else(|| {
                                Error::internal(anyhow::anyhow!("insert returned no outcome"))
                            })
                        })
                        .map(|outcome| (row, outcome)),
                );
            }
            Ok(out)
        }
    }
}

/// Valid rows of an import waiting for their transaction, and where each
/// came from (stream index, request_id as sent).
#[derive(Default)]
struct ImportBatch {
    rows: Vec<NewRow>,
    origins: Vec<(u64, String)>,
    /// Pair rows the batch writes.
    pairs: usize,
}

/// A batch being committed by its own task.
type Committing = tokio::task::JoinHandle<(ImportBatch, Result<Vec<Inserted>>)>;

/// Waits for a batch's commit and counts what happened to each row.
async fn account(committing: Committing, report: &mut ImportReport) -> Result<()> {
    let (batch, outcomes) = committing.await.map_err(Error::internal)?;
    for ((row, (index, request_id)), outcome) in batch.rows.iter().zip(batch.origins).zip(outcomes?)
    {
        match outcome {
            Inserted::Created => report.counts.created_count += 1,
            Inserted::Existing { record, asked, .. } => {
                let same = match (asked, record) {
                    (Asked::Same, _) | (Asked::Unknown, None) => true,
                    (Asked::Other, _) => false,
                    (Asked::Unknown, Some(bytes)) => same_meeting(&bytes, &row.meeting)?.is_some(),
                };
                if same {
                    report.counts.duplicate_count += 1;
                } else {
                    let mut v = Violations::new();
                    v.add("request_id", "was already used for a different meeting");
                    reject(report, index, request_id, v);
                }
            }
        }
    }
    Ok(())
}

/// Two distinct country codes, as an unordered pair.
fn parse_pair(a: &str, b: &str, v: &mut Violations) -> Option<CountryPair> {
    let a = CountryCode::parse(a)
        .map_err(|e| v.add("country_a", e))
        .ok();
    let b = CountryCode::parse(b)
        .map_err(|e| v.add("country_b", e))
        .ok();
    let (a, b) = (a?, b?);
    CountryPair::new(a, b).or_else(|| {
        v.add(
            "country_b",
            format!("must differ from country_a (both are {a})"),
        );
        None
    })
}

/// Validates a meeting and its idempotency key as CreateMeeting and
/// ImportMeetings receive them.
fn parse_new(
    meeting: Option<pb::Meeting>,
    request_id: &str,
) -> Result<(NewMeeting, Option<RequestId>), Violations> {
    let mut violations = Violations::new();
    let request_id = RequestId::parse(request_id)
        .map_err(|e| violations.add("request_id", e))
        .ok()
        .flatten();
    let meeting = match meeting {
        None => {
            violations.add("meeting", "is required");
            None
        }
        Some(m) => NewMeeting::parse(m, "meeting", Utc::now().date_naive())
            .map_err(|v| violations.extend(v))
            .ok(),
    };
    match meeting {
        Some(m) if violations.is_empty() => Ok((m, request_id)),
        _ => Err(violations),
    }
}

/// Gives a new meeting its id and time, and builds its stored record.
fn new_row(meeting: NewMeeting, request_id: Option<RequestId>) -> (NewRow, pb::Meeting) {
    let id = Uuid::now_v7();
    // PostgreSQL keeps microseconds: the record must say what the row says.
    let now = Utc::now().trunc_subsecs(6);
    let record = stored_record(&meeting, id, now, now, 1);
    // What a key remembers of its request: the meeting as asked, normalised.
    let request_digest = request_id
        .as_ref()
        .map(|_| sha2::Sha256::digest(meeting_to_pb(&meeting).encode_to_vec()).into());
    let row = NewRow {
        id,
        meeting,
        create_time: now,
        update_time: now,
        version: 1,
        record: record.encode_to_vec(),
        request_id,
        request_digest,
    };
    (row, record)
}

/// The stored meeting, if it is the same meeting as `meeting` (the retry of
/// an idempotent create); None if the request_id was used for another one.
fn same_meeting(stored: &[u8], meeting: &NewMeeting) -> Result<Option<pb::Meeting>> {
    let stored = decode_record(stored)?;
    Ok((without_output_fields(stored.clone()) == meeting_to_pb(meeting)).then_some(stored))
}

/// Most rejected meetings an import reports in detail; it counts them all.
const MAX_REJECTED_DETAILS: usize = 1_000;
/// Most bytes of rejected meetings' details in one import's response.
const MAX_REJECTED_BYTES: usize = 1024 * 1024;
/// Field violations listed for one rejected meeting (as in a status).
const MAX_VIOLATIONS_PER_REJECTED: usize = crate::error::MAX_VIOLATIONS_IN_STATUS;
/// Valid meetings an import commits per transaction.
const IMPORT_BATCH: usize = 500;
/// Pair rows an import batch writes, at most (a few more when its last
/// meeting has many countries): a batch of meetings of many countries is
/// committed early, so that no statement runs for long.
const IMPORT_BATCH_PAIRS: usize = 20_000;
/// Batches of one import committing at once. PostgreSQL runs a statement on
/// one core, and a statement also waits for its WAL writes and commit; four
/// keep both cores of a small machine busy (bench, alternating runs of
/// 100,000 records: three 8.5k-10.3k records/s, four 10.1k-10.3k, five
/// 10.1k-10.9k, eight 10.1k-10.5k). Each takes a pool connection.
const IMPORT_IN_FLIGHT: usize = 4;

/// What an import has done so far: the response, and the bytes its
/// rejected meetings' details take.
#[derive(Default)]
struct ImportReport {
    counts: pb::ImportMeetingsResponse,
    detail_bytes: usize,
}

fn reject(report: &mut ImportReport, index: u64, request_id: String, violations: Violations) {
    report.counts.rejected_count += 1;
    if report.counts.rejected.len() >= MAX_REJECTED_DETAILS
        || report.detail_bytes >= MAX_REJECTED_BYTES
    {
        return;
    }
    // A request_id too long to be valid is sent back cut to the longest
    // valid length: the index says which meeting it was.
    let request_id = match request_id
        .char_indices()
        .nth(crate::domain::limits::MAX_REQUEST_ID)
    {
        Some((end, _)) => request_id[..end].to_owned(),
        None => request_id,
    };
    let rejected = pb::RejectedMeeting {
        index,
        request_id,
        violations: violations
            .reported(MAX_VIOLATIONS_PER_REJECTED)
            .into_iter()
            .map(|v| pb::FieldViolation {
                field: v.field,
                description: v.description,
            })
            .collect(),
    };
    // Each detail costs its encoding and a few bytes of framing.
    let size = rejected.encoded_len() + 4;
    if report.detail_bytes + size <= MAX_REJECTED_BYTES {
        report.detail_bytes += size;
        report.counts.rejected.push(rejected);
    } else {
        // Full: later rejections are counted only.
        report.detail_bytes = MAX_REJECTED_BYTES;
    }
}

fn parse_id(field: &str, raw: &str) -> Result<Uuid, Violations> {
    Uuid::try_parse(raw).map_err(|_| {
        let mut v = Violations::new();
        let what = if raw.is_empty() {
            "is required".to_owned()
        } else {
            format!("{} is not a UUID", crate::domain::quote(raw))
        };
        v.add(field, what);
        v
    })
}

fn decode_record(bytes: &[u8]) -> Result<pb::Meeting> {
    pb::Meeting::decode(bytes).map_err(|e| {
        Error::internal(anyhow::Error::new(e).context("stored record does not decode"))
    })
}

#[tonic::async_trait]
impl MeetingService for MeetingsApi {
    async fn create_meeting(
        &self,
        request: Request<pb::CreateMeetingRequest>,
    ) -> Result<Response<pb::CreateMeetingResponse>, Status> {
        let meeting = self.unary(request, |req| self.create(req)).await?;
        tracing::info!(id = %meeting.id, "meeting stored");
        Ok(Response::new(pb::CreateMeetingResponse {
            meeting: Some(meeting),
        }))
    }

    async fn get_meeting(
        &self,
        request: Request<pb::GetMeetingRequest>,
    ) -> Result<Response<pb::GetMeetingResponse>, Status> {
        // Served by MeetingServiceRouter from the stored bytes; this decoded
        // form answers only if the generated server is used on its own.
        let record = self.unary(request, |req| self.get_record(req)).await?;
        Ok(Response::new(pb::GetMeetingResponse {
            meeting: Some(decode_record(&record)?),
        }))
    }

    async fn import_meetings(
        &self,
        request: Request<Streaming<pb::ImportMeetingsRequest>>,
    ) -> Result<Response<pb::ImportMeetingsResponse>, Status> {
        let admission = self.limits.admit(&Origin::of(&request))?;
        Ok(Response::new(
            self.import(request.into_inner(), admission.database())
                .await?,
        ))
    }

    async fn list_meetings(
        &self,
        request: Request<pb::ListMeetingsRequest>,
    ) -> Result<Response<pb::ListMeetingsResponse>, Status> {
        Ok(Response::new(
            self.unary_with_database(request, |req| self.list(req))
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
        Ok(Response::new(pb::UpdateMeetingResponse {
            meeting: Some(meeting),
        }))
    }

    async fn delete_meeting(
        &self,
        request: Request<pb::DeleteMeetingRequest>,
    ) -> Result<Response<pb::DeleteMeetingResponse>, Status> {
        let id = request.get_ref().id.clone();
        self.unary_with_database(request, |req| self.delete(req))
            .await?;
        tracing::info!(id = %id, "meeting deleted");
        Ok(Response::new(pb::DeleteMeetingResponse {}))
    }

    type WatchMeetingsStream =
        Pin<Box<dyn Stream<Item = Result<pb::WatchMeetingsResponse, Status>> + Send>>;

    async fn watch_meetings(
        &self,
        request: Request<pb::WatchMeetingsRequest>,
    ) -> Result<Response<Self::WatchMeetingsStream>, Status> {
        let admission = self.limits.admit(&Origin::of(&request))?;
        let (after, pair) = self.watch_start(request.get_ref()).await?;
        let stream = watch::watch_stream(
            self.storage.clone(),
            self.page_reads.clone(),
            admission.database().clone(),
            after,
            pair,
            self.events.clone(),
            self.shutdown.clone(),
        );
        Ok(Response::new(Box::pin(holding(stream, admission))))
    }

    async fn get_country_pair_summary(
        &self,
        request: Request<pb::GetCountryPairSummaryRequest>,
    ) -> Result<Response<pb::GetCountryPairSummaryResponse>, Status> {
        Ok(Response::new(
            self.unary_with_database(request, |req| self.summary(req))
                .await?,
        ))
    }

    type StreamMeetingsByCountryPairStream =
        Pin<Box<dyn Stream<Item = Result<pb::StreamMeetingsByCountryPairResponse, Status>> + Send>>;

    async fn stream_meetings_by_country_pair(
        &self,
        request: Request<pb::StreamMeetingsByCountryPairRequest>,
    ) -> Result<Response<Self::StreamMeetingsByCountryPairStream>, Status> {
        let admission = self.limits.admit(&Origin::of(&request))?;
        let query = self.stream_start(request.get_ref()).await?;
        let stream = pair_stream(
            self.storage.clone(),
            self.page_reads.clone(),
            admission.database().clone(),
            query,
            self.shutdown.clone(),
        );
        Ok(Response::new(Box::pin(holding(stream, admission))))
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
