//! MergeMeetings: stored meetings merged by hand into one.

use chrono::{SubsecRound, Utc};
use prost::Message;
use uuid::Uuid;

use super::request::{decode_record, parse_id};
use super::{MeetingsApi, stored_record, without_output_fields};
use crate::domain::{NewMeeting, RawMeeting, Violations, merge};
use crate::error::{Error, Result};
use crate::pb;
use crate::storage::{Tx, UpdatedRow};

/// Most meetings one call merges into its target.
const MAX_SOURCES: usize = 100;

impl MeetingsApi {
    pub(super) async fn merge_meetings(
        &self,
        req: pb::MergeMeetingsRequest,
    ) -> Result<pb::Meeting> {
        let (asked_target, asked_sources) = parse_merge(&req).map_err(Error::invalid_request)?;
        // A meeting asked for may be merged by another call between the
        // lookups of merged ids and the locks: then look again.
        let mut attempt = 0;
        let (mut tx, target, sources, locked) = loop {
            attempt += 1;
            match self.lock_merge(asked_target, &asked_sources).await? {
                Some(locked) => break locked,
                None if attempt < 3 => continue,
                None => {
                    return Err(Error::internal(anyhow::anyhow!(
                        "the meetings of a merge kept being merged elsewhere"
                    )));
                }
            }
        };
        if sources.is_empty() {
            // Everything asked is merged already: the survivor as it is.
            return decode_record(&locked[&target].record);
        }
        let current = &locked[&target];
        let stored = decode_record(&current.record)?;
        let mut merged_ids = stored.merged_ids.clone();
        let mut raw = RawMeeting::from(without_output_fields(stored));
        for id in &sources {
            let source = decode_record(&locked[id].record)?;
            merged_ids.push(id.to_string());
            merged_ids.extend(source.merged_ids.iter().cloned());
            raw = merge(raw, RawMeeting::from(without_output_fields(source)));
        }
        let meeting = NewMeeting::parse(raw, "meeting", Utc::now().date_naive()).map_err(|v| {
            // The request names no meeting: the merged record of the
            // meetings it names would break the rules.
            let mut named = Violations::new();
            for violation in v.iter() {
                named.add(
                    "source_ids",
                    format!(
                        "cannot be merged into the target: the merged meeting's {} {}",
                        violation.field, violation.description
                    ),
                );
            }
            Error::invalid_request(named)
        })?;
        let version = current.version + 1;
        let now = Utc::now().trunc_subsecs(6);
        let mut record = stored_record(&meeting, target, current.create_time, now, version);
        record.merged_ids = merged_ids;
        tx.replace_meeting(UpdatedRow {
            id: target,
            meeting,
            update_time: now,
            version,
            record: record.encode_to_vec(),
        })
        .await?;
        for id in sources {
            tx.absorb_meeting(id, target).await?;
        }
        tx.commit().await?;
        Ok(record)
    }
}

/// A merge's meetings locked: its transaction, the target (a merged one's
/// survivor), the sources still to merge, and each one's stored row.
type LockedMerge = (
    Tx,
    Uuid,
    Vec<Uuid>,
    std::collections::HashMap<Uuid, crate::storage::LockedMeeting>,
);

impl MeetingsApi {
    /// Resolves and locks a merge's meetings; None if one was merged
    /// elsewhere between the lookup and its lock (look again).
    async fn lock_merge(&self, target: Uuid, sources: &[Uuid]) -> Result<Option<LockedMerge>> {
        let mut tx = self.storage.begin().await?;
        // A target merged since is its survivor, as GetMeeting reads it. A
        // source merged into the target already is done (a retried call);
        // one merged elsewhere is not here to merge.
        let target = tx.redirect(target).await?.unwrap_or(target);
        let mut pending = Vec::with_capacity(sources.len());
        for &id in sources {
            match tx.redirect(id).await? {
                Some(into) if into == target => {}
                Some(into) => return Err(Error::MeetingMerged { id, into }),
                None if id == target => {}
                None => pending.push(id),
            }
        }
        // Locks in id order, as MERGE batches lock the meetings they merge
        // into, so that the two never wait on each other in a cycle.
        let mut ids: Vec<Uuid> = pending.iter().copied().chain([target]).collect();
        ids.sort_unstable();
        let mut locked = std::collections::HashMap::with_capacity(ids.len());
        for id in ids {
            match tx.lock_meeting(id).await? {
                Some(meeting) => {
                    locked.insert(id, meeting);
                }
                None if tx.redirect(id).await?.is_some() => return Ok(None),
                None => return Err(Error::MeetingNotFound(id)),
            }
        }
        Ok(Some((tx, target, pending, locked)))
    }
}

/// The target and the sources: valid ids, 1 to `MAX_SOURCES` sources,
/// distinct, none the target.
fn parse_merge(req: &pb::MergeMeetingsRequest) -> Result<(Uuid, Vec<Uuid>), Violations> {
    let mut v = Violations::new();
    let target = parse_id("target_id", &req.target_id)
        .map_err(|e| v.extend(e))
        .ok();
    let n = req.source_ids.len();
    if !(1..=MAX_SOURCES).contains(&n) {
        v.add(
            "source_ids",
            format!("must list 1 to {MAX_SOURCES} meetings, has {n}"),
        );
        return Err(v);
    }
    let mut sources: Vec<Uuid> = Vec::with_capacity(n);
    // Each valid source with its index in the request.
    let mut seen: Vec<(usize, Uuid)> = Vec::with_capacity(n);
    for (i, raw) in req.source_ids.iter().enumerate() {
        let field = format!("source_ids[{i}]");
        let Ok(id) = parse_id(&field, raw).map_err(|e| v.extend(e)) else {
            continue;
        };
        if Some(id) == target {
            v.add(field, "is the target: a meeting is not merged into itself");
        } else if let Some(&(first, _)) = seen.iter().find(|(_, s)| *s == id) {
            v.add(field, format!("repeats source_ids[{first}]"));
        } else {
            seen.push((i, id));
            sources.push(id);
        }
    }
    match target {
        Some(target) if v.is_empty() => Ok((target, sources)),
        _ => Err(v),
    }
}
