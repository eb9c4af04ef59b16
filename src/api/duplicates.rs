//! Reports of one meeting: CreateMeeting and ImportMeetings under
//! DUPLICATE_POLICY_MERGE or _REJECT, and FindDuplicateMeetings.

use chrono::{NaiveDate, SubsecRound, Utc};
use prost::Message;
use uuid::Uuid;

use super::request::decode_record;
use super::{MeetingsApi, meeting_to_pb, stored_record, without_output_fields};
use crate::domain::{NameMatch, NewMeeting, Party, RawMeeting, Report, merge, same_meeting};
use crate::error::{Error, Result};
use crate::pb;
use crate::storage::{IdRecord, Inserted, NewRow, Tx, UpdatedRow};

/// What a policy other than KEEP does with a match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OnMatch {
    Merge,
    Reject,
}

impl OnMatch {
    /// None for KEEP (and UNSPECIFIED, and numbers the enum does not name,
    /// which proto3 clients of an older contract may send).
    pub(super) fn of(policy: i32) -> Option<Self> {
        match pb::DuplicatePolicy::try_from(policy) {
            Ok(pb::DuplicatePolicy::Merge) => Some(Self::Merge),
            Ok(pb::DuplicatePolicy::Reject) => Some(Self::Reject),
            _ => None,
        }
    }
}

/// What became of a meeting stored under MERGE or REJECT.
pub(super) enum Matched {
    /// Stored as a new meeting (nothing matched).
    Created(pb::Meeting),
    /// Merged into the stored meeting with this record.
    Merged(pb::Meeting),
    /// Its request_id was already used: what create does with that.
    Existing(Inserted),
}

/// A stored meeting that a report matches.
struct Found {
    id: Uuid,
    record: pb::Meeting,
    names: Vec<NameMatch>,
}

/// The stored meetings among `candidates` that `report` matches, oldest
/// first. A stored record that no longer validates (a rule added since it
/// was stored) is not a candidate.
fn matching(report: &Report, candidates: Vec<IdRecord>) -> Result<Vec<Found>> {
    let mut found = Vec::new();
    for candidate in candidates {
        let record = decode_record(&candidate.record)?;
        let Ok(stored) = NewMeeting::parse(
            without_output_fields(record.clone()),
            "meeting",
            NaiveDate::MAX,
        ) else {
            continue;
        };
        if let Some(names) = same_meeting(report, &Report::of(&stored)) {
            found.push(Found {
                id: candidate.id,
                record,
                names,
            });
        }
    }
    Ok(found)
}

impl MeetingsApi {
    /// Stores `row` unless it matches a stored meeting: then merges it or
    /// refuses it. One transaction, holding the lock of the row's parties
    /// from the search to the commit, so that concurrent reports of one
    /// meeting are merged one after the other.
    pub(super) async fn store_matching(&self, row: NewRow, on_match: OnMatch) -> Result<Matched> {
        let mut tx = self.storage.begin().await?;
        tx.lock_parties(row.meeting.parties()).await?;
        if let Some(key) = &row.request_id
            && let Some(existing) = tx.request_key(key, row.request_digest.as_ref()).await?
        {
            return Ok(Matched::Existing(existing));
        }
        let report = Report::of(&row.meeting);
        let candidates = tx.duplicate_candidates(&report).await?;
        let Some(first) = matching(&report, candidates)?.into_iter().next() else {
            if !tx.insert_meeting(&row).await? {
                // The key was stored meanwhile by a meeting of other parties.
                return Err(Error::internal(anyhow::anyhow!(
                    "request_id of meeting {} was taken during its insert",
                    row.id
                )));
            }
            tx.commit().await?;
            return Ok(Matched::Created(decode_record(&row.record)?));
        };
        if on_match == OnMatch::Reject {
            return Err(Error::DuplicateMeeting(first.id));
        }
        let merged = merge_into(&mut tx, first, &row).await?;
        if let Some(key) = &row.request_id {
            tx.store_request_key(
                key,
                merged.id.parse().map_err(Error::internal)?,
                row.request_digest.as_ref(),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(Matched::Merged(merged))
    }

    pub(super) async fn find_duplicates(
        &self,
        req: pb::FindDuplicateMeetingsRequest,
    ) -> Result<pb::FindDuplicateMeetingsResponse> {
        let (draft, _) =
            super::request::parse_new(req.meeting, "").map_err(Error::invalid_meeting)?;
        let report = Report::of(&draft);
        let candidates = self.storage.duplicate_candidates(&report).await?;
        let matches = matching(&report, candidates)?
            .into_iter()
            .map(|f| pb::DuplicateMatch {
                meeting: Some(f.record),
                names: f.names.into_iter().map(name_match_to_pb).collect(),
            })
            .collect();
        Ok(pb::FindDuplicateMeetingsResponse { matches })
    }
}

fn name_match_to_pb(m: NameMatch) -> pb::NameMatch {
    let (country_code, organization_code) = match m.party {
        Party::Country(c) => (c.to_string(), String::new()),
        Party::Organization(o) => (String::new(), o.to_string()),
    };
    pb::NameMatch {
        country_code,
        organization_code,
        name: m.name,
        matched_name: m.matched_name,
    }
}

/// Rewrites the stored meeting `found` as one record of it and `row`; an
/// unchanged record (the same report again) is left as it is.
async fn merge_into(tx: &mut Tx, found: Found, row: &NewRow) -> Result<pb::Meeting> {
    let current = tx
        .lock_meeting(found.id)
        .await?
        .ok_or(Error::MeetingNotFound(found.id))?;
    let stored = decode_record(&current.record)?;
    let merged = merge(
        RawMeeting::from(without_output_fields(stored.clone())),
        RawMeeting::from(meeting_to_pb(&row.meeting)),
    );
    let meeting = NewMeeting::parse(merged, "meeting", Utc::now().date_naive())
        .map_err(Error::invalid_meeting)?;
    if meeting_to_pb(&meeting) == without_output_fields(stored.clone()) {
        return Ok(stored);
    }
    let version = current.version + 1;
    let now = Utc::now().trunc_subsecs(6);
    let mut record = stored_record(&meeting, found.id, current.create_time, now, version);
    record.merged_ids = stored.merged_ids.clone();
    tx.replace_meeting(&UpdatedRow {
        id: found.id,
        meeting,
        update_time: now,
        version,
        record: record.encode_to_vec(),
    })
    .await?;
    Ok(record)
}
