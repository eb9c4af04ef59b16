//! GetMeeting: one meeting by id, its stored record forwarded as it is.

use tonic::{Request, Response, Status};

use super::request::parse_id;
use super::{MeetingsApi, encoded};
use crate::error::{Error, Result};
use crate::pb;

impl MeetingsApi {
    /// The stored record of the meeting a GetMeeting asks for.
    pub(super) async fn get_record(&self, req: pb::GetMeetingRequest) -> Result<Vec<u8>> {
        let id = parse_id("id", &req.id).map_err(Error::invalid_request)?;
        if let Some(record) = self.lookups.call(id).await? {
            return Ok(record);
        }
        // An id merged into another meeting names that meeting.
        let into = self
            .storage
            .redirect(id)
            .await?
            .ok_or(Error::MeetingNotFound(id))?;
        self.lookups
            .call(into)
            .await?
            .ok_or(Error::MeetingNotFound(id))
    }

    /// GetMeeting as served: the stored record forwarded as it is.
    pub(super) async fn get_meeting_encoded(
        &self,
        request: Request<pb::GetMeetingRequest>,
    ) -> Result<Response<encoded::EncodedGetMeetingResponse>, Status> {
        let record = self.unary(request, |req| self.get_record(req)).await?;
        Ok(Response::new(
            encoded::EncodedGetMeetingResponse::from_record(&record),
        ))
    }
}
