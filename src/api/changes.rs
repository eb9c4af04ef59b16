//! UpdateMeeting, DeleteMeeting, ListMeetings and GetCountryPairSummary.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{SubsecRound, Utc};
use hmac::{Hmac, KeyInit, Mac};
use prost::Message;
use sha2::Sha256;
use uuid::Uuid;

use super::{MeetingsApi, decode_record, etag, parse_id, parse_pair, stored_record};
use crate::domain::limits::MAX_SHORT_TEXT;
use crate::domain::{CountryCode, NewMeeting, Violations, parse_date, parse_text, topic_key};
use crate::error::{Error, Result};
use crate::pb;
use crate::storage::{Cursor, ListFilter, UpdatedRow};

/// Fields UpdateMeeting can replace.
const UPDATABLE: [&str; 7] = [
    "date",
    "location",
    "participants",
    "anniversary",
    "topics",
    "summary",
    "sources",
];

const DEFAULT_PAGE_SIZE: u32 = 50;
/// Longest full-text `query`, in characters.
const MAX_QUERY: usize = 1_000;
const MAX_PAGE_SIZE: u32 = 1_000;
const DEFAULT_TOP_TOPICS: u32 = 10;
const MAX_TOP_TOPICS: u32 = 100;

impl MeetingsApi {
    pub(super) async fn update(&self, req: pb::UpdateMeetingRequest) -> Result<pb::Meeting> {
        let mut v = Violations::new();
        let Some(patch) = req.meeting else {
            v.add("meeting", "is required");
            return Err(Error::invalid_request(v));
        };
        let id = parse_id("meeting.id", &patch.id)
            .map_err(|e| v.extend(e))
            .ok();
        let paths = update_paths(&patch, req.update_mask.as_ref(), &mut v);
        let Some(id) = id.filter(|_| v.is_empty()) else {
            return Err(Error::invalid_request(v));
        };

        let mut tx = self.storage.begin().await?;
        let current = tx
            .lock_meeting(id)
            .await?
            .ok_or(Error::MeetingNotFound(id))?;
        check_etag(&patch.etag, current.version, id)?;
        let mut merged = decode_record(&current.record)?;
        for path in &paths {
            apply(&mut merged, &patch, path);
        }
        let meeting = NewMeeting::parse(merged, "meeting", Utc::now().date_naive())
            .map_err(Error::invalid_meeting)?;
        let version = current.version + 1;
        let now = Utc::now().trunc_subsecs(6);
        let record = stored_record(&meeting, id, current.create_time, now, version);
        tx.replace_meeting(&UpdatedRow {
            id,
            meeting,
            update_time: now,
            version,
            record: record.encode_to_vec(),
        })
        .await?;
        tx.commit().await?;
        Ok(record)
    }

    pub(super) async fn delete(&self, req: pb::DeleteMeetingRequest) -> Result<()> {
        let id = parse_id("id", &req.id).map_err(Error::invalid_request)?;
        let mut tx = self.storage.begin().await?;
        let current = tx
            .lock_meeting(id)
            .await?
            .ok_or(Error::MeetingNotFound(id))?;
        check_etag(&req.etag, current.version, id)?;
        tx.delete_meeting(id).await?;
        tx.commit().await
    }

    pub(super) async fn list(
        &self,
        req: pb::ListMeetingsRequest,
    ) -> Result<pb::ListMeetingsResponse> {
        let mut v = Violations::new();
        let page_size = match req.page_size {
            0 => DEFAULT_PAGE_SIZE,
            n if n < 0 => {
                v.add("page_size", format!("must not be negative, is {n}"));
                DEFAULT_PAGE_SIZE
            }
            n => u32::try_from(n).unwrap_or(MAX_PAGE_SIZE).min(MAX_PAGE_SIZE),
        };
        let mut optional_date = |field: &str, raw: &str| match raw {
            "" => None,
            raw => parse_date(raw).map_err(|e| v.add(field, e)).ok(),
        };
        let from = optional_date("from_date", &req.from_date);
        let to = optional_date("to_date", &req.to_date);
        let country_code = match req.country_code.trim() {
            "" => None,
            raw => CountryCode::parse(raw)
                .map_err(|e| v.add("country_code", e))
                .ok(),
        };
        if let (Some(from), Some(to)) = (from, to)
            && from > to
        {
            v.add("to_date", format!("{to} is before from_date {from}"));
        }
        // Text filters follow the rules of stored text: a value PostgreSQL
        // cannot take (a NUL) or no meeting could match is refused here.
        let mut text = |field: &str, raw: String, max: usize| {
            parse_text(raw, 0, max, false)
                .map_err(|e| v.add(field, e))
                .ok()
                .filter(|t| !t.is_empty())
        };
        let topic = text("topic", req.topic, MAX_SHORT_TEXT).map(|t| topic_key(&t));
        let query = text("query", req.query, MAX_QUERY);
        let filter = ListFilter {
            country_code,
            from,
            to,
            topic,
            query,
        };
        let after = match req.page_token.as_str() {
            "" => None,
            token => decode_page_token(token, &filter, self.storage.page_token_key())
                .map_err(|e| v.add("page_token", e))
                .ok(),
        };
        if !v.is_empty() {
            return Err(Error::invalid_request(v));
        }
        // One more than asked tells whether another page follows. A page
        // also ends before its meetings pass the response budget (at least
        // one meeting a page: a meeting is far smaller than the budget).
        let budget = self.limits.page_bytes();
        let mut rows = self
            .storage
            .list_meetings(&filter, after, page_size + 1, budget)
            .await?;
        let mut keep = rows.len().min(page_size as usize);
        let mut bytes = 0;
        for (i, row) in rows.iter().enumerate().take(keep) {
            // Each meeting costs its record and a few bytes of framing.
            bytes += row.record.len() + 8;
            if bytes > budget && i > 0 {
                keep = i;
                break;
            }
        }
        let more = rows.len() > keep;
        rows.truncate(keep);
        let next_page_token = match rows.last() {
            Some(last) if more => encode_page_token(
                Cursor {
                    date: last.date,
                    id: last.id,
                },
                &filter,
                self.storage.page_token_key(),
            ),
            _ => String::new(),
        };
        Ok(pb::ListMeetingsResponse {
            meetings: rows
                .iter()
                .map(|r| decode_record(&r.record))
                .collect::<Result<_>>()?,
            next_page_token,
        })
    }

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

/// The fields an update replaces: the mask's paths, "*" for all, or with an
/// empty mask every field set in the patch (AIP-134).
fn update_paths(
    patch: &pb::Meeting,
    mask: Option<&pbjson_types::FieldMask>,
    v: &mut Violations,
) -> Vec<&'static str> {
    let paths: Vec<&str> = mask
        .map(|m| m.paths.iter().map(String::as_str).collect())
        .unwrap_or_default();
    if paths.is_empty() {
        let empty = pb::Meeting::default();
        let set: Vec<&'static str> = UPDATABLE
            .into_iter()
            .filter(|field| {
                let mut only = pb::Meeting::default();
                apply(&mut only, patch, field);
                only != empty
            })
            .collect();
        if set.is_empty() {
            v.add(
                "update_mask",
                "names no field to change: set fields of meeting, or list them in \
                 update_mask.paths (\"*\" for all)",
            );
        }
        return set;
    }
    if paths == ["*"] {
        return UPDATABLE.to_vec();
    }
    let mut out = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        match UPDATABLE.iter().find(|f| **f == *path) {
            Some(f) => out.push(*f),
            None if *path == "*" => v.add(
                format!("update_mask.paths[{i}]"),
                "\"*\" (every field) must be the mask's only path",
            ),
            None => v.add(
                format!("update_mask.paths[{i}]"),
                format!(
                    "{} is not an updatable field (one of {}, or \"*\")",
                    crate::domain::quote(path),
                    UPDATABLE.join(", ")
                ),
            ),
        }
    }
    out
}

/// Copies one top-level field from `patch` into `target`.
fn apply(target: &mut pb::Meeting, patch: &pb::Meeting, field: &str) {
    match field {
        "date" => target.date.clone_from(&patch.date),
        "location" => target.location.clone_from(&patch.location),
        "participants" => target.participants.clone_from(&patch.participants),
        "anniversary" => target.anniversary.clone_from(&patch.anniversary),
        "topics" => target.topics.clone_from(&patch.topics),
        "summary" => target.summary.clone_from(&patch.summary),
        "sources" => target.sources.clone_from(&patch.sources),
        _ => {}
    }
}

fn check_etag(sent: &str, version: i64, id: Uuid) -> Result<()> {
    if sent.is_empty() || sent == etag(version) {
        Ok(())
    } else {
        Err(Error::EtagMismatch(id))
    }
}

/// A page token: the last meeting's position and a digest of the filters,
/// so a token is only accepted with the filters that produced it, signed
/// with the deployment's key (HMAC-SHA256, cut to 128 bits), so that a
/// token cannot be altered to start elsewhere.
fn encode_page_token(after: Cursor, filter: &ListFilter, key: &[u8]) -> String {
    let body = format!(
        "2|{}|{}|{:016x}",
        after.date,
        after.id,
        filter_digest(filter)
    );
    let mac = hex::encode(&token_mac(key, &body).finalize().into_bytes()[..16]);
    URL_SAFE_NO_PAD.encode(format!("{body}|{mac}"))
}

fn token_mac(key: &[u8], body: &str) -> Hmac<Sha256> {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(body.as_bytes());
    mac
}

fn decode_page_token(token: &str, filter: &ListFilter, key: &[u8]) -> Result<Cursor, String> {
    let invalid = || "is not a page token of this service".to_owned();
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (body, mac) = text.rsplit_once('|').ok_or_else(invalid)?;
    let mac = hex::decode(mac).map_err(|_| invalid())?;
    if mac.len() != 16 || token_mac(key, body).verify_truncated_left(&mac).is_err() {
        return Err(invalid());
    }
    let mut parts = body.split('|');
    let (Some("2"), Some(date), Some(id), Some(digest), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(invalid());
    };
    let cursor = Cursor {
        date: parse_date(date).map_err(|_| invalid())?,
        id: Uuid::try_parse(id).map_err(|_| invalid())?,
    };
    if digest != format!("{:016x}", filter_digest(filter)) {
        return Err(
            "was issued for other filters: repeat the request's filters with its token".into(),
        );
    }
    Ok(cursor)
}

/// A digest of the filters that is stable across processes and versions
/// (FNV-1a over their text), unlike std's randomly seeded hasher.
fn filter_digest(filter: &ListFilter) -> u64 {
    let text = format!(
        "{:?}|{:?}|{:?}|{:?}|{:?}",
        filter.country_code.map(|c| c.to_string()),
        filter.from,
        filter.to,
        filter.topic,
        filter.query
    );
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
