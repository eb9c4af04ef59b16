//! What the server does with the bytes of a CreateMeetingRequest or an
//! ImportMeetingsRequest: decode them, then validate. Neither may panic.
#![no_main]

use chrono::NaiveDate;
use libfuzzer_sys::fuzz_target;
use meetings::domain::{NewMeeting, RequestId};
use meetings::pb;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let today = NaiveDate::from_ymd_opt(2026, 11, 28).expect("valid date");
    if let Ok(request) = pb::CreateMeetingRequest::decode(data) {
        let _ = RequestId::parse(&request.request_id);
        if let Some(meeting) = request.meeting {
            if let Ok(m) = NewMeeting::parse(meeting, "meeting", today) {
                // What the service stores must parse back to itself.
                let again = NewMeeting::parse(meetings::api::meeting_to_pb(&m), "meeting", today);
                assert_eq!(again.as_ref(), Ok(&m));
            }
        }
    }
});
