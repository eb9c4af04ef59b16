//! GetMeeting: one meeting by id, its stored record forwarded as it is.

use tonic::{Request, Response, Status};

use uuid::Uuid;

use super::request::{parse_id, read_position};
use super::{MeetingsApi, encoded};
use crate::error::{Error, Result};
use crate::pb;
use crate::storage::Lsn;

impl MeetingsApi {
    /// The stored record of the meeting a GetMeeting asks for.
    /// `at`: the WAL position the database serving it must have replayed.
    pub(super) async fn get_record(
        &self,
        req: pb::GetMeetingRequest,
        at: Option<Lsn>,
    ) -> Result<Vec<u8>> {
        let id = parse_id("id", &req.id).map_err(Error::invalid_request)?;
        if let Some(record) = self.lookup(id, at).await? {
            return Ok(record);
        }
        // An id merged into another meeting names that meeting.
        let into = self
            .storage
            .read_at(at, |s| async move { s.redirect(id).await })
            .await?
            .ok_or(Error::MeetingNotFound(id))?;
        self.lookup(into, at)
            .await?
            .ok_or(Error::MeetingNotFound(id))
    }

    /// The record of `id`: in a batch with concurrent lookups, or, for a
    /// read at a position, on its own (a batch's calls share one replica).
    async fn lookup(&self, id: Uuid, at: Option<Lsn>) -> Result<Option<Vec<u8>>> {
        if at.is_none() {
            return self.lookups.call(id).await;
        }
        let found = self
            .storage
            .read_at(at, |s| async move { s.get_meetings(&[id]).await })
            .await?;
        Ok(found.into_iter().next().map(|r| r.record))
    }

    /// GetMeeting as served: the stored record forwarded as it is.
    pub(super) async fn get_meeting_encoded(
        &self,
        request: Request<pb::GetMeetingRequest>,
    ) -> Result<Response<encoded::EncodedGetMeetingResponse>, Status> {
        let at = read_position(&request)?;
        let record = self.unary(request, |req| self.get_record(req, at)).await?;
        Ok(Response::new(
            encoded::EncodedGetMeetingResponse::from_record(&record),
        ))
    }
}
