//! GetCountryPairSummary: counts, dates, top topics and anniversaries of
//! a pair.

use super::MeetingsApi;
use super::request::parse_pair;
use crate::domain::Violations;
use crate::error::{Error, Result};
use crate::pb;

const DEFAULT_TOP_TOPICS: u32 = 10;
const MAX_TOP_TOPICS: u32 = 100;

impl MeetingsApi {
    pub(super) async fn summary(
        &self,
        req: pb::GetCountryPairSummaryRequest,
    ) -> Result<pb::GetCountryPairSummaryResponse> {
        let mut v = Violations::new();
        let pair = parse_pair(&req.country_a, &req.country_b, &mut v);
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
        let s = self.storage.pair_summary(pair, top).await?;
        Ok(pb::GetCountryPairSummaryResponse {
            country_a: pair.low().to_string(),
            country_b: pair.high().to_string(),
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
