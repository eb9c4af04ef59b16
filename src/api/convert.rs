//! Conversions between the domain and the wire, both ways: a sent
//! `pb::Meeting` into the domain's `RawMeeting` for validation, and a
//! validated meeting into the wire form and the stored record.

use chrono::{DateTime, Utc};
use pbjson_types::Timestamp;
use uuid::Uuid;

use crate::domain::{
    NewMeeting, Party, RawAnniversary, RawLocation, RawMeeting, RawParticipant, RawSource,
};
use crate::pb;

/// The wire form of a validated meeting, without output-only fields.
pub fn meeting_to_pb(m: &NewMeeting) -> pb::Meeting {
    pb::Meeting {
        id: String::new(),
        date: m.date().format("%Y-%m-%d").to_string(),
        end_date: m
            .end_date()
            .map(|d| d.format("%Y-%m-%d").to_string())
            .unwrap_or_default(),
        format: m.format().number(),
        location: m.location().map(|l| pb::Location {
            city: l.city().to_owned(),
            country_code: l.country_code().map(|c| c.to_string()).unwrap_or_default(),
        }),
        participants: m
            .participants()
            .iter()
            .map(|p| {
                let (country_code, organization_code) = match p.party() {
                    Party::Country(c) => (c.to_string(), String::new()),
                    Party::Organization(o) => (String::new(), o.to_string()),
                };
                pb::Participant {
                    name: p.name().to_owned(),
                    title: p.title().to_owned(),
                    country_code,
                    organization_code,
                    aliases: p.aliases().to_vec(),
                }
            })
            .collect(),
        anniversary: m.anniversary().map(|a| pb::Anniversary {
            years: a.years(),
            occasion: a.occasion().to_owned(),
        }),
        topics: m.topics().to_vec(),
        summary: m.summary().to_owned(),
        sources: m
            .sources()
            .iter()
            .map(|s| pb::Source {
                name: s.name().to_owned(),
                url: s.url().to_owned(),
            })
            .collect(),
        country_codes: Vec::new(),
        organization_codes: Vec::new(),
        merged_ids: Vec::new(),
        create_time: None,
        update_time: None,
        etag: String::new(),
    }
}

/// The record stored for a meeting: the wire form with the output-only
/// fields the service assigns.
pub fn stored_record(
    m: &NewMeeting,
    id: Uuid,
    create_time: DateTime<Utc>,
    update_time: DateTime<Utc>,
    version: i64,
) -> pb::Meeting {
    pb::Meeting {
        id: id.to_string(),
        country_codes: m.country_codes().map(|c| c.to_string()).collect(),
        organization_codes: m.organization_codes().map(|o| o.to_string()).collect(),
        create_time: Some(timestamp(create_time)),
        update_time: Some(timestamp(update_time)),
        etag: etag(version),
        ..meeting_to_pb(m)
    }
}

/// The etag of a meeting version (AIP-154): opaque to callers.
pub fn etag(version: i64) -> String {
    format!("v{version}")
}

/// Clears the output-only fields, leaving what a caller sent (normalised).
pub fn without_output_fields(mut m: pb::Meeting) -> pb::Meeting {
    m.id.clear();
    m.country_codes.clear();
    m.organization_codes.clear();
    m.merged_ids.clear();
    m.create_time = None;
    m.update_time = None;
    m.etag.clear();
    m
}

pub fn timestamp(t: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: t.timestamp(),
        nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// A meeting as sent, for validation: its input fields (output-only fields
/// are not read).
impl From<pb::Meeting> for RawMeeting {
    fn from(m: pb::Meeting) -> Self {
        Self {
            date: m.date,
            end_date: m.end_date,
            format: m.format,
            location: m.location.map(|l| RawLocation {
                city: l.city,
                country_code: l.country_code,
            }),
            participants: m
                .participants
                .into_iter()
                .map(|p| RawParticipant {
                    name: p.name,
                    title: p.title,
                    country_code: p.country_code,
                    organization_code: p.organization_code,
                    aliases: p.aliases,
                })
                .collect(),
            anniversary: m.anniversary.map(|a| RawAnniversary {
                years: a.years,
                occasion: a.occasion,
            }),
            topics: m.topics,
            summary: m.summary,
            sources: m
                .sources
                .into_iter()
                .map(|s| RawSource {
                    name: s.name,
                    url: s.url,
                })
                .collect(),
        }
    }
}
