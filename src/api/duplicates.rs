//! Reports of one meeting: CreateMeeting and ImportMeetings under
//! DUPLICATE_POLICY_MERGE or _REJECT, and FindDuplicateMeetings.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, SubsecRound, Utc};
use prost::Message;
use uuid::Uuid;

use super::request::decode_record;
use super::{MeetingsApi, meeting_to_pb, stored_record, without_output_fields};
use crate::domain::{
    CountryCode, NAME_TOKEN_VERSION, NameMatch, NewMeeting, OrganizationCode, Party, RawMeeting,
    Report, RequestId, merge, same_meeting,
};
use crate::error::{Error, Result};
use crate::pb;
use crate::storage::{Asked, Candidate, IdRecord, Inserted, NewRow, Storage, Tx};

/// What a policy other than KEEP does with a match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OnMatch {
    Merge,
    Reject,
}

impl OnMatch {
    /// None for KEEP (and UNSPECIFIED, which clients that do not know the
    /// field send). A number the enum does not name (a policy of a newer
    /// contract, or a client's bug) is refused rather than read as KEEP,
    /// which would store the duplicates the caller asked to avoid.
    pub(super) fn parse(policy: i32) -> Result<Option<Self>, String> {
        match pb::DuplicatePolicy::try_from(policy) {
            Ok(pb::DuplicatePolicy::Merge) => Ok(Some(Self::Merge)),
            Ok(pb::DuplicatePolicy::Reject) => Ok(Some(Self::Reject)),
            Ok(pb::DuplicatePolicy::Keep | pb::DuplicatePolicy::Unspecified) => Ok(None),
            Err(_) => Err(format!(
                "{policy} is not a DuplicatePolicy (0 UNSPECIFIED, 1 KEEP, 2 MERGE, 3 REJECT)"
            )),
        }
    }
}

/// What became of a meeting stored under MERGE or REJECT.
pub(super) enum Matched {
    /// Stored as a new meeting (nothing matched); its record.
    Created(pb::Meeting),
    /// Merged into the stored meeting with this record.
    Merged(pb::Meeting),
    /// Its request_id was already used: what create does with that.
    Existing(Inserted),
    /// REJECT, and it matches this meeting.
    Rejected(Uuid),
}

/// What became of a report, by the id of the meeting it went to (records
/// are known once the batch is done).
enum Outcome {
    Created(Uuid),
    Merged(Uuid),
    Existing(Inserted),
    Rejected(Uuid),
}

/// A meeting that reports of a batch may merge into: stored (and locked),
/// or stored by an earlier report of the batch.
struct Target {
    id: Uuid,
    /// As validated: a meeting new in the batch, or one a report changed
    /// (a stored meeting is not validated again unless it changes).
    meeting: Option<NewMeeting>,
    report: Report,
    record: pb::Meeting,
    create_time: DateTime<Utc>,
    /// As its record says.
    update_time: DateTime<Utc>,
    /// Stored: its version as read. None for a meeting new in the batch.
    version: Option<i64>,
    /// New in the batch: the key and digest of the report that made it.
    made_by: Option<(Option<RequestId>, Option<[u8; 32]>)>,
    changed: bool,
}

/// A stored meeting that a report matches.
struct Found {
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
        let Some(stored) = stored_report(&record) else {
            continue;
        };
        if let Some(names) = same_meeting(report, &stored) {
            found.push(Found { record, names });
        }
    }
    Ok(found)
}

/// What matching reads of a stored record, without validating it again (it
/// was validated when stored): None if its dates or codes no longer read.
fn stored_report(record: &pb::Meeting) -> Option<Report> {
    let first: NaiveDate = record.date.parse().ok()?;
    let last = match record.end_date.as_str() {
        "" => first,
        end => end.parse().ok()?,
    };
    let mut parties = Vec::with_capacity(record.participants.len());
    let mut people = Vec::with_capacity(record.participants.len());
    for p in &record.participants {
        let party = match p.organization_code.as_str() {
            "" => Party::Country(CountryCode::parse(&p.country_code).ok()?),
            code => Party::Organization(OrganizationCode::parse(code).ok()?),
        };
        parties.push(party);
        let names = std::iter::once(&p.name)
            .chain(&p.aliases)
            .cloned()
            .collect();
        people.push((party, names));
    }
    Some(Report::from_parts(parties, first, last, people))
}

/// Stores reports under MERGE or REJECT, in order, in one transaction:
/// each merged into the stored meeting it matches (or one stored by an
/// earlier report of the batch), refused, or stored as new. The batch
/// holds the locks of its reports' party sets from the search to the
/// commit, so that concurrent reports of one meeting are merged one
/// after the other; meetings are written in one insert and one rewrite
/// for the whole batch. `locked` hears when the locks are held: a batch
/// started after that sees this one's meetings.
pub(super) async fn store_matching(
    storage: &Storage,
    rows: Vec<(NewRow, OnMatch)>,
    locked: Option<tokio::sync::oneshot::Sender<()>>,
) -> Result<Vec<Matched>> {
    let reports: Vec<Report> = rows.iter().map(|(r, _)| Report::of(&r.meeting)).collect();
    let mut tx = storage.begin().await?;
    tx.lock_reports(&reports.iter().collect::<Vec<_>>()).await?;
    if let Some(locked) = locked {
        // The importer may have gone; nothing to tell then.
        let _ = locked.send(());
    }
    let keys: Vec<&RequestId> = rows
        .iter()
        .filter_map(|(r, _)| r.request_id.as_ref())
        .collect();
    let stored_keys = if keys.is_empty() {
        HashMap::new()
    } else {
        tx.request_keys(&keys).await?
    };
    let (mut targets, per_report) = lock_targets(&mut tx, &reports).await?;
    let mut index: HashMap<Uuid, usize> = targets
        .iter()
        .enumerate()
        .map(|(t, target)| (target.id, t))
        .collect();

    let today = Utc::now().date_naive();
    let now = Utc::now().trunc_subsecs(6);
    // Keys answered in this batch: key → (meeting, digest asked, merged).
    let mut batch_keys: HashMap<String, (Uuid, Option<[u8; 32]>, bool)> = HashMap::new();
    let mut merged_keys: Vec<(RequestId, Uuid, Option<[u8; 32]>)> = Vec::new();
    let mut outcomes = Vec::with_capacity(rows.len());
    for (i, ((row, on_match), report)) in rows.into_iter().zip(&reports).enumerate() {
        if let Some(key) = &row.request_id {
            let digest = row.request_digest.as_ref().map(|d| d.as_slice());
            if let Some(stored) = stored_keys.get(key.as_str()) {
                outcomes.push(Outcome::Existing(Inserted::Existing {
                    meeting_id: stored.meeting_id,
                    record: stored.record.clone(),
                    asked: Asked::of(stored.digest.as_deref(), digest),
                    merged: stored.merged,
                }));
                continue;
            }
            if let Some((meeting_id, asked, merged)) = batch_keys.get(key.as_str()) {
                let record = index
                    .get(meeting_id)
                    .map(|&t| targets[t].record.encode_to_vec());
                outcomes.push(Outcome::Existing(Inserted::Existing {
                    meeting_id: *meeting_id,
                    record,
                    asked: Asked::of(asked.as_ref().map(|d| d.as_slice()), digest),
                    merged: *merged,
                }));
                continue;
            }
        }
        // Stored meetings first (oldest first), then those made by
        // earlier reports of the batch.
        let earlier_in_batch = targets
            .iter()
            .enumerate()
            .filter(|(_, t)| t.made_by.is_some())
            .map(|(t, _)| t);
        let order: Vec<usize> = per_report[i]
            .iter()
            .copied()
            .chain(earlier_in_batch)
            .collect();
        // The first match, for REJECT; for MERGE the first whose merged
        // record keeps every rule of a meeting (limits on topics, sources
        // and participants; a match never spans more than MAX_SPAN_DAYS).
        let mut found = None;
        for t in order {
            if same_meeting(report, &targets[t].report).is_none() {
                continue;
            }
            if on_match == OnMatch::Reject {
                found = Some((t, None));
                break;
            }
            let merged = merge(
                RawMeeting::from(without_output_fields(targets[t].record.clone())),
                RawMeeting::from(meeting_to_pb(&row.meeting)),
            );
            if let Ok(meeting) = NewMeeting::parse(merged, "meeting", today) {
                found = Some((t, Some(meeting)));
                break;
            }
        }
        match found {
            Some((t, None)) => outcomes.push(Outcome::Rejected(targets[t].id)),
            Some((t, Some(meeting))) => {
                let target = &mut targets[t];
                if meeting_to_pb(&meeting) != without_output_fields(target.record.clone()) {
                    let version = target.version.map_or(1, |v| v + 1);
                    // A meeting made by this batch is still at its first
                    // version: its update time is its creation time.
                    let updated = if target.version.is_some() {
                        now
                    } else {
                        target.create_time
                    };
                    let mut record =
                        stored_record(&meeting, target.id, target.create_time, updated, version);
                    record.merged_ids = target.record.merged_ids.clone();
                    target.record = record;
                    target.update_time = updated;
                    target.report = Report::of(&meeting);
                    target.meeting = Some(meeting);
                    target.changed = true;
                }
                if let Some(key) = row.request_id {
                    batch_keys.insert(
                        key.as_str().to_owned(),
                        (target.id, row.request_digest, true),
                    );
                    merged_keys.push((key, target.id, row.request_digest));
                }
                outcomes.push(Outcome::Merged(target.id));
            }
            None => {
                if let Some(key) = &row.request_id {
                    batch_keys.insert(key.as_str().to_owned(), (row.id, row.request_digest, false));
                }
                index.insert(row.id, targets.len());
                targets.push(Target {
                    id: row.id,
                    report: report.clone(),
                    record: decode_record(&row.record)?,
                    create_time: row.create_time,
                    update_time: row.update_time,
                    meeting: Some(row.meeting),
                    version: None,
                    made_by: Some((row.request_id, row.request_digest)),
                    changed: false,
                });
                outcomes.push(Outcome::Created(row.id));
            }
        }
    }

    let new_rows: Vec<NewRow> = targets
        .iter_mut()
        .filter_map(|t| {
            let (request_id, request_digest) = t.made_by.take()?;
            Some(NewRow {
                id: t.id,
                meeting: t.meeting.clone()?,
                create_time: t.create_time,
                update_time: t.update_time,
                version: 1,
                record: t.record.encode_to_vec(),
                request_id,
                request_digest,
            })
        })
        .collect();
    // In key order, as `Storage::insert_meetings` inserts, so that writers
    // of the same keys wait on each other in one order.
    let mut ordered: Vec<&NewRow> = new_rows.iter().collect();
    ordered.sort_by(|a, b| a.request_id.cmp(&b.request_id));
    let created = tx.insert_rows(&ordered).await?;
    if created.len() != new_rows.len() {
        // A key was stored by a writer of other parties meanwhile:
        // nothing of the batch is kept, and the caller may retry.
        return Err(Error::internal(anyhow::anyhow!(
            "a request_id of the batch was stored during its insert"
        )));
    }
    let rewritten: Vec<NewRow> = targets
        .iter()
        .filter(|t| t.changed && t.version.is_some())
        .filter_map(|t| {
            Some(NewRow {
                id: t.id,
                meeting: t.meeting.clone()?,
                create_time: t.create_time,
                update_time: now,
                version: t.version.map_or(1, |v| v + 1),
                record: t.record.encode_to_vec(),
                request_id: None,
                request_digest: None,
            })
        })
        .collect();
    tx.rewrite_meetings(&rewritten.iter().collect::<Vec<_>>())
        .await?;
    let keys: Vec<(&RequestId, Uuid, Option<[u8; 32]>)> =
        merged_keys.iter().map(|(k, id, d)| (k, *id, *d)).collect();
    tx.store_request_keys(&keys).await?;
    tx.commit().await?;

    let record = |id: Uuid| {
        index
            .get(&id)
            .map(|&t| targets[t].record.clone())
            .ok_or_else(|| Error::internal(anyhow::anyhow!("no target {id}")))
    };
    outcomes
        .into_iter()
        .map(|o| {
            Ok(match o {
                Outcome::Created(id) => Matched::Created(record(id)?),
                Outcome::Merged(id) => Matched::Merged(record(id)?),
                Outcome::Existing(e) => Matched::Existing(e),
                Outcome::Rejected(id) => Matched::Rejected(id),
            })
        })
        .collect()
}

/// A stored meeting as matching first reads it (`Candidate`).
struct Light {
    id: Uuid,
    version: i64,
    date: NaiveDate,
    report: Report,
}

/// What matching reads of a candidate: its stored match keys, or its
/// record where those are not computed yet. None if neither reads.
fn light(c: Candidate) -> Result<Option<Light>> {
    let report = match (&c.match_keys, &c.record) {
        (Some(keys), _) => {
            let parties: Option<Vec<Party>> =
                c.country_codes.iter().map(|k| Party::from_key(k)).collect();
            let last = c.end_date.unwrap_or(c.date);
            parties.and_then(|p| Report::from_match_keys(p, c.date, last, keys))
        }
        (None, Some(record)) => stored_report(&decode_record(record)?),
        (None, None) => None,
    };
    Ok(report.map(|report| Light {
        id: c.id,
        version: c.version,
        date: c.date,
        report,
    }))
}

/// Searches at most this many times for the stored meetings a batch may
/// merge into, when writers that take no party locks (UpdateMeeting,
/// MergeMeetings, DeleteMeeting) change them between a search and their
/// lock; each search locks what it found, so this takes a storm of
/// updates to the same meetings.
const MAX_SEARCHES: usize = 8;

/// The stored meetings that reports of a batch may merge into, locked and
/// read under the lock, and for each report the targets it may match in
/// the order it tries them (its search's, oldest first, then those that
/// earlier reports of the batch widened). Candidates are matched first
/// on their match keys, without their records and without locks, each
/// widened by every report that matches it (`Report::absorb`): that finds
/// every stored meeting the reports can match one after the other, as
/// merging only adds to what matches. Only those are locked and read.
async fn lock_targets(tx: &mut Tx, reports: &[Report]) -> Result<(Vec<Target>, Vec<Vec<usize>>)> {
    let all: Vec<&Report> = reports.iter().collect();
    for _ in 0..MAX_SEARCHES {
        let mut lights: Vec<Light> = Vec::new();
        let mut by_id: HashMap<Uuid, usize> = HashMap::new();
        let mut per_report: Vec<Vec<usize>> = vec![Vec::new(); reports.len()];
        for (i, c) in tx.duplicate_candidates_many(&all).await? {
            let l = match by_id.get(&c.id) {
                Some(&l) => l,
                None => {
                    let Some(found) = light(c)? else { continue };
                    by_id.insert(found.id, lights.len());
                    lights.push(found);
                    lights.len() - 1
                }
            };
            if let Some(list) = per_report.get_mut(i) {
                list.push(l);
            }
        }
        // A candidate widened by a report may match a later report that
        // the search did not give it (a later day than its stored span).
        let mut needed = vec![false; lights.len()];
        let mut widened: Vec<usize> = Vec::new();
        for (report, list) in reports.iter().zip(&mut per_report) {
            list.sort_by_key(|&l| (lights[l].date, lights[l].id));
            let others: Vec<usize> = widened
                .iter()
                .filter(|l| !list.contains(l))
                .copied()
                .collect();
            list.extend(others);
            list.retain(|&l| {
                let matches = same_meeting(report, &lights[l].report).is_some();
                if matches {
                    if !needed[l] {
                        widened.push(l);
                    }
                    needed[l] = true;
                    lights[l].report.absorb(report);
                }
                matches
            });
        }
        let ids: Vec<Uuid> = lights
            .iter()
            .zip(&needed)
            .filter(|(_, n)| **n)
            .map(|(l, _)| l.id)
            .collect();
        let locked = tx.lock_meetings(&ids).await?;
        let unchanged = locked.len() == ids.len()
            && locked.iter().all(|c| {
                by_id
                    .get(&c.id)
                    .is_some_and(|&l| lights[l].version == c.version)
            });
        if !unchanged {
            // Changed or gone between the search and the lock: search
            // again (what this search locked stays locked).
            continue;
        }
        let mut targets = Vec::with_capacity(locked.len());
        let mut target_of: HashMap<usize, usize> = HashMap::new();
        for c in locked {
            let record = decode_record(&c.record)?;
            let Some(report) = stored_report(&record) else {
                continue;
            };
            if let Some(&l) = by_id.get(&c.id) {
                target_of.insert(l, targets.len());
            }
            targets.push(Target {
                id: c.id,
                report,
                meeting: None,
                record,
                create_time: c.create_time,
                update_time: c.create_time,
                version: Some(c.version),
                made_by: None,
                changed: false,
            });
        }
        let per_report = per_report
            .into_iter()
            .map(|list| {
                list.iter()
                    .filter_map(|l| target_of.get(l).copied())
                    .collect()
            })
            .collect();
        return Ok((targets, per_report));
    }
    Err(Error::internal(anyhow::anyhow!(
        "the stored meetings of a batch changed during {MAX_SEARCHES} searches"
    )))
}

/// Computes the stored match keys from the records where they are missing
/// (meetings stored before keys were) or made by an earlier name rule
/// (`NAME_TOKEN_VERSION`), in pages by id, then records the rule's
/// version. Runs at start, before serving; idempotent, so an interrupted
/// run is finished by the next. How many meetings got keys.
pub async fn fill_match_keys(storage: &Storage) -> anyhow::Result<u64> {
    const NAME: &str = "match_keys";
    const PAGE: i64 = 1_000;
    if storage
        .derived_version(NAME)
        .await?
        .is_some_and(|v| v >= NAME_TOKEN_VERSION)
    {
        return Ok(0);
    }
    tracing::info!(to = NAME_TOKEN_VERSION, "computing the stored match keys");
    let mut after = Uuid::nil();
    let mut stored = 0;
    loop {
        let page = storage.match_keys_page(after, PAGE).await?;
        let Some(&(last, ..)) = page.last() else {
            break;
        };
        after = last;
        let mut rows = Vec::new();
        for (id, version, record, keys) in page {
            // A record that no longer reads keeps none: matching reads its
            // record, and skips it, as it would with keys.
            let Ok(record) = decode_record(&record) else {
                continue;
            };
            if let Some(report) = stored_report(&record) {
                let computed = report.match_keys();
                if keys.as_ref() != Some(&computed) {
                    rows.push((id, version, computed));
                }
            }
        }
        if !rows.is_empty() {
            stored += storage.store_match_keys(&rows).await?;
        }
    }
    storage
        .record_derived_version(NAME, NAME_TOKEN_VERSION)
        .await?;
    Ok(stored)
}

impl MeetingsApi {
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
