//! StreamMeetingsByCountryPair: the meetings of a pair, page by page.

use std::sync::Arc;

use chrono::NaiveDate;
use tokio::sync::Semaphore;
use tokio_stream::Stream;
use tokio_util::sync::CancellationToken;
use tonic::Status;
use tracing::Instrument;

use super::request::{decode_record, parse_id, parse_pair};
use super::{DatabaseShare, MeetingsApi, read_page};
use crate::domain::{Violations, parse_date};
use crate::error::{Error, Result};
use crate::pb;
use crate::storage::{Cursor, PairQuery, RecordRow, Storage};

/// Rows in the first page of a stream: small, so the first record leaves
/// quickly.
const FIRST_PAGE: u32 = 32;
/// Rows in every later page: large enough to amortise a query, small enough
/// that a page in memory stays well under a few MiB.
const PAGE: u32 = 512;

/// Open ends of a date range, within what PostgreSQL's `date` holds.
const EARLIEST: NaiveDate = NaiveDate::from_ymd_opt(1, 1, 1).expect("valid date");
const LATEST: NaiveDate = NaiveDate::from_ymd_opt(9999, 12, 31).expect("valid date");

impl MeetingsApi {
    /// Parses the request and finds where the stream starts.
    pub(super) async fn stream_start(
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
pub(super) fn pair_stream(
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
