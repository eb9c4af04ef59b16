//! ListMeetings: newest first, filtered, a signed page token at a time.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use uuid::Uuid;

use super::MeetingsApi;
use super::request::decode_record;
use crate::domain::limits::MAX_SHORT_TEXT;
use crate::domain::{
    CountryCode, NameKey, OrganizationCode, Violations, parse_date, parse_text, topic_key,
};
use crate::error::{Error, Result};
use crate::pb;
use crate::storage::{Cursor, ListFilter, Lsn};

const DEFAULT_PAGE_SIZE: u32 = 50;
/// Longest full-text `query`, in characters.
const MAX_QUERY: usize = 1_000;
const MAX_PAGE_SIZE: u32 = 1_000;

impl MeetingsApi {
    pub(super) async fn list(
        &self,
        req: pb::ListMeetingsRequest,
        at: Option<Lsn>,
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
        let organization_code = match req.organization_code.trim() {
            "" => None,
            raw => OrganizationCode::parse(raw)
                .map_err(|e| v.add("organization_code", e))
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
        let participant = text("participant", req.participant, MAX_SHORT_TEXT).and_then(|name| {
            let key = NameKey::new(&name);
            if key.tokens().is_empty() {
                v.add("participant", "has no letters or digits to look for");
                None
            } else {
                Some(key)
            }
        });
        let filter = ListFilter {
            country_code,
            organization_code,
            from,
            to,
            topic,
            query,
            participant: participant.as_ref().map(|k| k.tokens().to_vec()),
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
            .read_at(at, |s| {
                let filter = &filter;
                async move { s.list_meetings(filter, after, page_size + 1, budget).await }
            })
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
        let mut meetings: Vec<pb::Meeting> = rows
            .iter()
            .map(|r| decode_record(&r.record))
            .collect::<Result<_>>()?;
        // The index found meetings sharing a word with the name; keep those
        // with a participant whose name or alias matches it by the rules of
        // duplicate matching. The token still follows the last row read, so
        // a page may hold fewer meetings than asked for.
        if let Some(wanted) = &participant {
            meetings.retain(|m| {
                m.participants.iter().any(|p| {
                    std::iter::once(&p.name)
                        .chain(&p.aliases)
                        .any(|n| NameKey::new(n).matches(wanted))
                })
            });
        }
        Ok(pb::ListMeetingsResponse {
            meetings,
            next_page_token,
        })
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
    let mut text = format!(
        "{:?}|{:?}|{:?}|{:?}|{:?}",
        filter.country_code.map(|c| c.to_string()),
        filter.from,
        filter.to,
        filter.topic,
        filter.query
    );
    // Appended only when set, so that tokens issued before the filter
    // existed stay valid.
    if let Some(o) = filter.organization_code {
        text.push_str(&format!("|org:{o}"));
    }
    if let Some(words) = &filter.participant {
        text.push_str(&format!("|participant:{}", words.join(" ")));
    }
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
