//! GetCountryPairSummary: counts, dates, top topics, meetings per year and
//! per format, and anniversaries of a pair.

use super::MeetingsApi;
use super::request::{PairFields, parse_pair};
use crate::domain::{Party, Violations};
use crate::error::{Error, Result};
use crate::pb;
use crate::storage::Lsn;

const DEFAULT_TOP_TOPICS: u32 = 10;
const MAX_TOP_TOPICS: u32 = 100;

impl MeetingsApi {
    pub(super) async fn summary(
        &self,
        req: pb::GetCountryPairSummaryRequest,
        at: Option<Lsn>,
    ) -> Result<pb::GetCountryPairSummaryResponse> {
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
        if req.top_topics > MAX_TOP_TOPICS {
            v.add(
                "top_topics",
                format!("must be at most {MAX_TOP_TOPICS}, is {}", req.top_topics),
            );
        }
        let Some(pair) = pair.filter(|_| v.is_empty()) else {
            return Err(Error::invalid_request(v));
        };
        let top = if req.top_topics == 0 {
            DEFAULT_TOP_TOPICS
        } else {
            req.top_topics
        };
        let s = self
            .storage
            .read_at(at, |s| async move { s.pair_summary(pair, top).await })
            .await?;
        // Each side in its country or organisation field.
        let side = |p: Party| match p {
            Party::Country(c) => (c.to_string(), String::new()),
            Party::Organization(o) => (String::new(), o.to_string()),
        };
        let (country_a, organization_a) = side(pair.low());
        let (country_b, organization_b) = side(pair.high());
        Ok(pb::GetCountryPairSummaryResponse {
            country_a,
            country_b,
            organization_a,
            organization_b,
            meetings_by_year: s
                .years
                .into_iter()
                .map(|y| pb::YearCount {
                    year: y.year,
                    meeting_count: u64::try_from(y.meetings).unwrap_or(0),
                })
                .collect(),
            meetings_by_format: s
                .formats
                .into_iter()
                .map(|f| pb::FormatCount {
                    format: i32::from(f.format),
                    meeting_count: u64::try_from(f.meetings).unwrap_or(0),
                })
                .collect(),
            meeting_count: u64::try_from(s.counts.count).unwrap_or(0),
            first_meeting_date: s.counts.first.map(|d| d.to_string()).unwrap_or_default(),
            last_meeting_date: s.counts.last.map(|d| d.to_string()).unwrap_or_default(),
            top_topics: s
                .topics
                .into_iter()
                .map(|t| pb::TopicCount {
                    topic: t.topic,
                    meeting_count: u64::try_from(t.meetings).unwrap_or(0),
                })
                .collect(),
            anniversaries: s
                .anniversaries
                .into_iter()
                .map(|a| pb::AnniversaryInference {
                    occasion: a.occasion,
                    since_year: a.since_year,
                    meeting_count: u64::try_from(a.meetings).unwrap_or(0),
                    meeting_id: a.meeting_id.to_string(),
                })
                .collect(),
        })
    }
}
