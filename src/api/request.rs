//! Request parsing shared by the RPCs: ids, country pairs, new meetings,
//! stored records.

use chrono::Utc;
use prost::Message;
use uuid::Uuid;

use crate::domain::{
    CountryCode, NewMeeting, OrganizationCode, Party, PartyPair, RequestId, Violations,
};
use crate::error::{Error, Result};
use crate::pb;
use crate::storage::Lsn;

/// The fields of a request that name a pair: each side a country or an
/// organisation.
pub(super) struct PairFields<'a> {
    pub country_a: &'a str,
    pub country_b: &'a str,
    pub organization_a: &'a str,
    pub organization_b: &'a str,
}

impl PairFields<'_> {
    /// Whether any of the fields is set.
    pub(super) fn any(&self) -> bool {
        [
            self.country_a,
            self.country_b,
            self.organization_a,
            self.organization_b,
        ]
        .iter()
        .any(|f| !f.trim().is_empty())
    }
}

/// One side of a pair: exactly one of its country field and organisation
/// field (`country_<side>`, `organization_<side>`).
fn parse_side(country: &str, organization: &str, side: char, v: &mut Violations) -> Option<Party> {
    match (country.trim().is_empty(), organization.trim().is_empty()) {
        (true, true) => {
            v.add(
                format!("country_{side}"),
                format!("is required: a country code such as \"AZ\", or else organization_{side}"),
            );
            None
        }
        (false, false) => {
            v.add(
                format!("organization_{side}"),
                format!("must not be set together with country_{side}: a side is one party"),
            );
            None
        }
        (false, true) => CountryCode::parse(country)
            .map(Party::Country)
            .map_err(|e| v.add(format!("country_{side}"), e))
            .ok(),
        (true, false) => OrganizationCode::parse(organization)
            .map(Party::Organization)
            .map_err(|e| v.add(format!("organization_{side}"), e))
            .ok(),
    }
}

/// Two distinct parties, as an unordered pair.
pub(super) fn parse_pair(f: &PairFields<'_>, v: &mut Violations) -> Option<PartyPair> {
    let a = parse_side(f.country_a, f.organization_a, 'a', v);
    let b = parse_side(f.country_b, f.organization_b, 'b', v);
    let (a, b) = (a?, b?);
    PartyPair::new(a, b).or_else(|| {
        let field = match b {
            Party::Country(_) => "country_b",
            Party::Organization(_) => "organization_b",
        };
        v.add(
            field,
            format!("must differ from the first side (both are {})", a.code()),
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

/// The WAL position a read's request metadata asks its database to have
/// replayed (`x-meetings-min-lsn`, from a write's `x-meetings-lsn`).
pub(super) fn read_position<M>(request: &tonic::Request<M>) -> Result<Option<Lsn>> {
    let Some(value) = request.metadata().get(super::MIN_POSITION) else {
        return Ok(None);
    };
    let mut v = Violations::new();
    match value.to_str().map_err(|_| "is not text".to_owned()) {
        Ok(raw) => match raw.parse::<Lsn>() {
            Ok(lsn) => return Ok(Some(lsn)),
            Err(e) => v.add(super::MIN_POSITION, e),
        },
        Err(e) => v.add(super::MIN_POSITION, e),
    }
    Err(Error::invalid_request(v))
}
