//! StreamMeetingsByCountryPair: the meetings of a pair, page by page.

use std::sync::Arc;

use tokio::sync::Semaphore;

use tokio_stream::Stream;
use tonic::{Request, Status};

use super::paged::{PageSource, paged};
use super::request::{PairFields, decode_record, parse_id, parse_pair, read_position};
use super::{DatabaseShare, MeetingsApi, read_page};
use super::{Origin, holding};
use crate::domain::{Violations, parse_date};
use crate::error::{Error, Result};
use crate::pb;
use crate::storage::{Cursor, Lsn, PairQuery, RecordRow, Storage};

/// Rows in the first page of a stream: small, so the first record leaves
/// quickly.
const FIRST_PAGE: u32 = 32;
/// Rows in every later page: large enough to amortise a query, small enough
/// that a page in memory stays well under a few MiB.
const PAGE: u32 = 512;

impl MeetingsApi {
    /// A pair stream as served: its slots, its start, then its pages.
    pub(super) async fn pair_stream(
        &self,
        request: Request<pb::StreamMeetingsByCountryPairRequest>,
    ) -> Result<
        impl Stream<Item = Result<pb::StreamMeetingsByCountryPairResponse, Status>> + Send + use<>,
        Status,
    > {
        let admission = self.limits.admit(&Origin::of(&request))?;
        let at = read_position(&request)?;
        let query = self.stream_start(request.get_ref(), at).await?;
        let pages = PairPages {
            storage: self.storage.clone(),
            at,
            reads: self.page_reads.clone(),
            share: admission.database().clone(),
            query,
            exhausted: false,
        };
        Ok(holding(paged(pages, self.shutdown.clone()), admission))
    }

    /// Parses the request and finds where the stream starts.
    async fn stream_start(
        &self,
        req: &pb::StreamMeetingsByCountryPairRequest,
        at: Option<Lsn>,
    ) -> Result<PairQuery> {
        let mut v = Violations::new();
        let pair = parse_pair(
            &PairFields {
                country_a: &req.country_a,
                country_b: &req.country_b,
                organization_a: &req.organization_a,
                organization_b: &req.organization_b,
            },
            &mut v,
        );
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

        let mut query = PairQuery::new(pair, from, to, req.newest_first, FIRST_PAGE);
        if let Some(id) = start_after {
            let row = self
                .storage
                .read_at(at, |s| async move { s.get_meeting(id).await })
                .await?
                .ok_or(Error::MeetingNotFound(id))?;
            let resume = Cursor { date: row.date, id };
            // Keep whichever of the date bound and the resume point lies
            // further along the stream.
            query.after = if req.newest_first {
                query.after.min(resume)
            } else {
                query.after.max(resume)
            };
        }
        Ok(query)
    }
}

/// The pages of a pair: the query for the next one, moved past each row
/// sent.
pub(super) struct PairPages {
    pub(super) storage: Storage,
    /// The WAL position every page's database must have replayed.
    pub(super) at: Option<Lsn>,
    pub(super) reads: Arc<Semaphore>,
    pub(super) share: DatabaseShare,
    pub(super) query: PairQuery,
    /// The last page read was the last one.
    pub(super) exhausted: bool,
}

/// The meetings of a pair, read page by page as the client consumes them:
/// the stream holds one page at a time, whatever the result size, and a
/// pool connection only while a page is read (see `read_page`); a client
/// that goes away drops it, which ends the work at once.
impl PageSource for PairPages {
    type Row = RecordRow;
    type Item = pb::StreamMeetingsByCountryPairResponse;

    async fn next_page(&mut self) -> Result<Option<Vec<RecordRow>>> {
        if self.exhausted {
            return Ok(None);
        }
        let (storage, query, at) = (self.storage.clone(), self.query, self.at);
        let page = read_page(
            &self.reads,
            &self.share,
            self.storage.answering(async move {
                storage
                    .read_at(at, |s| async move { s.pair_page(&query).await })
                    .await
            }),
        )
        .await?;
        self.exhausted = !page.more;
        self.query.limit = PAGE;
        Ok(Some(page.rows))
    }

    fn item(&mut self, row: RecordRow) -> Result<Self::Item> {
        self.query.after = Cursor {
            date: row.date,
            id: row.id,
        };
        let meeting = decode_record(&row.record)?;
        Ok(pb::StreamMeetingsByCountryPairResponse {
            meeting: Some(meeting),
        })
    }
}
