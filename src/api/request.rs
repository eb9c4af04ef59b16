//! Request parsing shared by the RPCs: ids, country pairs, new meetings,
//! stored records.

use chrono::Utc;
use prost::Message;
use uuid::Uuid;

use crate::domain::{CountryCode, CountryPair, NewMeeting, RequestId, Violations};
use crate::error::{Error, Result};
use crate::pb;

/// Two distinct country codes, as an unordered pair.
pub(super) fn parse_pair(a: &str, b: &str, v: &mut Violations) -> Option<CountryPair> {
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
pub(super) fn parse_new(
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

pub(super) fn parse_id(field: &str, raw: &str) -> Result<Uuid, Violations> {
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

pub(super) fn decode_record(bytes: &[u8]) -> Result<pb::Meeting> {
    pb::Meeting::decode(bytes).map_err(|e| {
        Error::internal(anyhow::Error::new(e).context("stored record does not decode"))
    })
}
