//! UpdateMeeting and DeleteMeeting: a read-modify-write of one meeting
//! under its row lock, guarded by its etag.

use chrono::{SubsecRound, Utc};
use prost::Message;
use uuid::Uuid;

use super::request::{decode_record, parse_id};
use super::{MeetingsApi, etag, stored_record};
use crate::domain::{NewMeeting, Violations};
use crate::error::{Error, Result};
use crate::pb;
use crate::storage::UpdatedRow;

/// Fields UpdateMeeting can replace.
const UPDATABLE: [&str; 9] = [
    "date",
    "end_date",
    "format",
    "location",
    "participants",
    "anniversary",
    "topics",
    "summary",
    "sources",
];

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
        let merged_ids = std::mem::take(&mut merged.merged_ids);
        let meeting = NewMeeting::parse(merged, "meeting", Utc::now().date_naive())
            .map_err(Error::invalid_meeting)?;
        let version = current.version + 1;
        let now = Utc::now().trunc_subsecs(6);
        let mut record = stored_record(&meeting, id, current.create_time, now, version);
        record.merged_ids = merged_ids;
        tx.replace_meeting(UpdatedRow {
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
        // Fields added to the contract later are replaced only when set: a
        // client built before they existed drops them on decoding, and its
        // "*" must not clear them.
        return UPDATABLE
            .into_iter()
            .filter(|f| match *f {
                "end_date" => !patch.end_date.is_empty(),
                "format" => patch.format != 0,
                _ => true,
            })
            .collect();
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
        "end_date" => target.end_date.clone_from(&patch.end_date),
        "format" => target.format = patch.format,
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
