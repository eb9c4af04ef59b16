//! CreateMeeting and ImportMeetings: validated meetings stored with their
//! keys, one statement for concurrent creates, batches for an import.

use chrono::{SubsecRound, Utc};
use prost::Message;
use sha2::Digest;
use tokio::sync::OwnedSemaphorePermit;
use tonic::{Status, Streaming};
use tracing::Instrument;
use uuid::Uuid;

use super::duplicates::{Matched, OnMatch, store_matching};
use super::edge;
use super::request::{decode_record, parse_new};
use super::{DatabaseShare, MeetingsApi, meeting_to_pb, stored_record, without_output_fields};
use crate::domain::{NewMeeting, RequestId, Violations};
use crate::error::{Error, ImportStop, Result};
use crate::pb;
use crate::storage::{Asked, Inserted, NewRow, Storage};

/// Creates of meetings with more countries than this are not coalesced.
const COALESCE_MAX_COUNTRIES: usize = 8;

impl MeetingsApi {
    /// The stored meeting, and the id of the meeting it was merged into
    /// (empty when stored as new).
    pub(super) async fn create(
        &self,
        req: pb::CreateMeetingRequest,
    ) -> Result<(pb::Meeting, String)> {
        let on_match = OnMatch::parse(req.duplicates).map_err(|e| {
            let mut v = Violations::new();
            v.add("duplicates", e);
            Error::invalid_request(v)
        })?;
        let (meeting, request_id) =
            parse_new(req.meeting, &req.request_id).map_err(Error::invalid_meeting)?;
        let (row, record) = new_row(meeting, request_id);
        if let Some(on_match) = on_match {
            let meeting = row.meeting.clone();
            let matched = store_matching(&self.storage, vec![(row, on_match)], None)
                .await?
                .pop()
                .ok_or_else(|| Error::internal(anyhow::anyhow!("no outcome for the meeting")))?;
            return match matched {
                Matched::Created(record) => Ok((record, String::new())),
                Matched::Merged(record) => {
                    let id = record.id.clone();
                    Ok((record, id))
                }
                Matched::Existing(outcome) => existing(outcome, &meeting, &req.request_id),
                Matched::Rejected(id) => Err(Error::DuplicateMeeting(id)),
            };
        }
        // A meeting of many countries writes many pair rows: it goes in a
        // statement of its own rather than hold up a batch of small ones.
        let (row, outcome) = if row.meeting.parties().len() > COALESCE_MAX_COUNTRIES {
            let outcome = self
                .storage
                .insert_meetings(std::slice::from_ref(&row))
                .await?;
            let outcome = outcome
                .into_iter()
                .next()
                .ok_or_else(|| Error::internal(anyhow::anyhow!("insert returned no outcome")))?;
            (row, outcome)
        } else {
            self.creates.call(row).await??
        };
        match outcome {
            Inserted::Created => Ok((record, String::new())),
            existing_key => existing(existing_key, &row.meeting, &req.request_id),
        }
    }

    pub(super) async fn import(
        &self,
        mut requests: Streaming<pb::ImportMeetingsRequest>,
        share: &DatabaseShare,
    ) -> Result<pb::ImportMeetingsResponse, Status> {
        let mut report = ImportReport::default();
        let mut batch = ImportBatch::default();
        // Meetings under MERGE or REJECT waiting for their transaction (a
        // stream has either these or `batch` pending, never both).
        let mut matching = MatchingBatch::default();
        // Batches of them committing, up to IMPORT_IN_FLIGHT, each started
        // once the one before holds its locks (so it sees that one's
        // meetings); and when the newest holds them.
        let mut matching_committing: std::collections::VecDeque<CommittingMatching> =
            Default::default();
        let mut newest_locked: Option<tokio::sync::oneshot::Receiver<()>> = None;
        // Up to IMPORT_IN_FLIGHT batches commit while the next is read and
        // validated; outcomes are counted in stream order.
        let mut committing: std::collections::VecDeque<Committing> = Default::default();
        let mut index = 0u64;
        // Commits the batches this import is gathering and waits for every
        // batch it has committing, counting them: afterwards it holds none
        // of the import memory budget.
        macro_rules! commit_and_count_held {
            () => {
                if !batch.rows.is_empty() {
                    committing.push_back(self.commit(std::mem::take(&mut batch), share));
                }
                if !matching.rows.is_empty() {
                    let (started, _) = self.commit_matching(
                        std::mem::take(&mut matching),
                        share,
                        newest_locked.take(),
                    );
                    matching_committing.push_back(started);
                }
                while let Some(oldest) = committing.pop_front() {
                    account(oldest, &mut report).await?;
                }
                while let Some(oldest) = matching_committing.pop_front() {
                    account_matching(oldest, &mut report).await?;
                }
                drop(newest_locked.take());
            };
        }
        loop {
            // On shutdown the import stops reading, as at a bad message.
            // While another import waits for the memory budget, one whose
            // client sends nothing for IMPORT_IDLE commits what it holds:
            // imports sharing an HTTP/2 connection with a waiting one get no
            // data (the waiting one stops reading, which holds the
            // connection's window), and would otherwise hold their share
            // until their clients' next records, which cannot come.
            let received = loop {
                let holding = !batch.rows.is_empty()
                    || !matching.rows.is_empty()
                    || !committing.is_empty()
                    || !matching_committing.is_empty();
                tokio::select! {
                    biased;
                    () = self.shutdown.cancelled() => break Err(None),
                    message = requests.message() => break message.map_err(Some),
                    () = self.limits.import_pressure(IMPORT_IDLE), if holding => {
                        commit_and_count_held!();
                    }
                }
            };
            let item = match received {
                Ok(Some(item)) => item,
                Ok(None) => break,
                Err(status) => {
                    // The stream breaks here. Batches already committing
                    // finish and are counted; the unfinished batch is not
                    // stored, and the caller learns where to resume.
                    let resume_index = matching
                        .origins
                        .first()
                        .or(batch.origins.first())
                        .map_or(index, |(i, _)| *i);
                    while let Some(oldest) = committing.pop_front() {
                        account(oldest, &mut report).await?;
                    }
                    while let Some(oldest) = matching_committing.pop_front() {
                        account_matching(oldest, &mut report).await?;
                    }
                    let cause = match &status {
                        None => ImportStop::ShuttingDown,
                        Some(s)
                            if s.code() == tonic::Code::Aborted
                                && s.message() == edge::CLIENT_RESET =>
                        {
                            // Cancelled by the client, who hears nothing more.
                            tracing::info!(
                                index,
                                resume_index,
                                created = report.counts.created_count,
                                "import cancelled by the client; its unfinished batch is not stored"
                            );
                            return Err(Status::cancelled("the import was cancelled"));
                        }
                        Some(s)
                            if matches!(
                                s.code(),
                                tonic::Code::OutOfRange | tonic::Code::ResourceExhausted
                            ) =>
                        {
                            ImportStop::TooLarge
                        }
                        Some(_) => ImportStop::Malformed,
                    };
                    tracing::info!(
                        index,
                        resume_index,
                        created = report.counts.created_count,
                        ?cause,
                        "import stopped before the end of its stream"
                    );
                    return Err(Error::ImportStopped {
                        index,
                        resume_index,
                        cause,
                        created: report.counts.created_count,
                        merged: report.counts.merged_count,
                        duplicates: report.counts.duplicate_count,
                        rejected: report.counts.rejected_count,
                    }
                    .into());
                }
            };
            // The record's share of the memory all imports may hold, kept
            // until its batch is committed and counted.
            let size = item.encoded_len();
            let held = match self.limits.try_hold_import(size) {
                Some(held) => held,
                None => {
                    // Imports hold the whole budget. What this one holds
                    // is committed and counted first (which gives its share
                    // back), so that an import waiting here holds nothing.
                    commit_and_count_held!();
                    self.metrics.import_waited();
                    tokio::select! {
                        biased;
                        () = self.shutdown.cancelled() => {
                            // Everything before this record is stored and
                            // counted: the import resumes at it.
                            return Err(Error::ImportStopped {
                                index,
                                resume_index: index,
                                cause: ImportStop::ShuttingDown,
                                created: report.counts.created_count,
                                merged: report.counts.merged_count,
                                duplicates: report.counts.duplicate_count,
                                rejected: report.counts.rejected_count,
                            }
                            .into());
                        }
                        held = self.limits.hold_import(size) => held,
                    }
                }
            };
            let on_match = OnMatch::parse(item.duplicates);
            let parsed = match &on_match {
                Ok(_) => parse_new(item.meeting, &item.request_id),
                Err(e) => {
                    let mut v = Violations::new();
                    v.add("duplicates", e.clone());
                    Err(v)
                }
            };
            match parsed {
                Ok((meeting, request_id)) if matches!(on_match, Ok(Some(_))) => {
                    // Earlier meetings of the stream are stored first, so
                    // that this one can match them.
                    if !batch.rows.is_empty() {
                        committing.push_back(self.commit(std::mem::take(&mut batch), share));
                    }
                    while let Some(oldest) = committing.pop_front() {
                        account(oldest, &mut report).await?;
                    }
                    let on_match = on_match.ok().flatten().unwrap_or(OnMatch::Merge);
                    matching.pairs += meeting.pair_count();
                    let row = new_row(meeting, request_id).0;
                    matching.meetings.push(row.meeting.clone());
                    matching.rows.push((row, on_match));
                    matching.origins.push((index, item.request_id));
                    hold(&mut matching.held, held);
                    if matching.rows.len() == IMPORT_BATCH
                        || matching.pairs >= IMPORT_BATCH_PAIRS
                        || held_kib(&matching.held) >= IMPORT_BATCH_KIB
                    {
                        if matching_committing.len() == IMPORT_IN_FLIGHT
                            && let Some(oldest) = matching_committing.pop_front()
                        {
                            account_matching(oldest, &mut report).await?;
                        }
                        let (started, locked) = self.commit_matching(
                            std::mem::take(&mut matching),
                            share,
                            newest_locked.take(),
                        );
                        matching_committing.push_back(started);
                        newest_locked = Some(locked);
                    }
                }
                Ok((meeting, request_id))
                    if !matching.rows.is_empty() || !matching_committing.is_empty() =>
                {
                    // Meetings under MERGE before this one are stored first
                    // (no plain batch is pending beside them).
                    commit_and_count_held!();
                    batch.pairs += meeting.pair_count();
                    batch.rows.push(new_row(meeting, request_id).0);
                    batch.origins.push((index, item.request_id));
                    hold(&mut batch.held, held);
                }
                Ok((meeting, request_id)) => {
                    batch.pairs += meeting.pair_count();
                    batch.rows.push(new_row(meeting, request_id).0);
                    batch.origins.push((index, item.request_id));
                    hold(&mut batch.held, held);
                }
                Err(violations) => reject(&mut report, index, item.request_id, violations),
            }
            index += 1;
            if batch.rows.len() == IMPORT_BATCH
                || batch.pairs >= IMPORT_BATCH_PAIRS
                || held_kib(&batch.held) >= IMPORT_BATCH_KIB
            {
                if committing.len() == IMPORT_IN_FLIGHT
                    && let Some(oldest) = committing.pop_front()
                {
                    account(oldest, &mut report).await?;
                }
                committing.push_back(self.commit(std::mem::take(&mut batch), share));
            }
        }
        // The stream ended: what it holds is stored and counted.
        commit_and_count_held!();
        tracing::info!(
            received = index,
            created = report.counts.created_count,
            duplicates = report.counts.duplicate_count,
            rejected = report.counts.rejected_count,
            "import finished"
        );
        Ok(report.counts)
    }

    /// Starts committing a batch of meetings under MERGE or REJECT in its
    /// own task, once the batch before holds its locks (`after`); returns
    /// the task and when this batch holds its own.
    fn commit_matching(
        &self,
        mut batch: MatchingBatch,
        share: &DatabaseShare,
        after: Option<tokio::sync::oneshot::Receiver<()>>,
    ) -> (CommittingMatching, tokio::sync::oneshot::Receiver<()>) {
        let storage = self.storage.clone();
        let share = share.clone();
        let limits = self.limits.clone();
        let (locked, holds) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(
            async move {
                if let Some(after) = after {
                    // An error before it locked drops its sender: go on.
                    let _ = after.await;
                }
                let _turn = limits.import_commit_turn().await;
                let rows = std::mem::take(&mut batch.rows);
                let outcomes = storage
                    .answering(store_in_groups(&storage, &share, rows, locked))
                    .await;
                (batch, outcomes)
            }
            .in_current_span(),
        );
        (task, holds)
    }
}

/// Transactions a batch of meetings under MERGE or REJECT is stored in at
/// once, at most.
const MATCHING_GROUPS: u64 = 4;

/// Stores a batch under MERGE or REJECT as up to `MATCHING_GROUPS`
/// transactions at once, each for the reports of some of its party sets
/// (in stream order within each). Reports of different party sets never
/// match, so this stores what one transaction would, while batches of
/// other parties do not wait for each other's party locks. `locked` hears
/// when every group holds its locks. A failed group fails the batch; the
/// groups committed before stay, and sending the batch again merges its
/// reports into them (a report merged twice changes nothing).
async fn store_in_groups(
    storage: &Storage,
    share: &DatabaseShare,
    rows: Vec<(NewRow, OnMatch)>,
    locked: tokio::sync::oneshot::Sender<()>,
) -> Result<Vec<Matched>> {
    let count = rows.len();
    // Group → the group's reports, each with its position in the batch.
    type Positioned = Vec<(usize, (NewRow, OnMatch))>;
    let mut groups: std::collections::BTreeMap<u64, Positioned> = Default::default();
    for (position, row) in rows.into_iter().enumerate() {
        let group = party_set_hash(row.0.meeting.parties()) % MATCHING_GROUPS;
        groups.entry(group).or_default().push((position, row));
    }
    let mut held = Vec::with_capacity(groups.len());
    let stores: Vec<_> = groups
        .into_values()
        .map(|group| {
            let (holds, hears) = tokio::sync::oneshot::channel();
            held.push(hears);
            async move {
                let (positions, rows): (Vec<usize>, Vec<_>) = group.into_iter().unzip();
                let _database = share.acquire().await?;
                let outcomes = store_matching(storage, rows, Some(holds)).await?;
                Ok::<_, Error>(positions.into_iter().zip(outcomes).collect::<Vec<_>>())
            }
        })
        .collect();
    let all_held = async move {
        for hears in held {
            // A group that failed before it locked: the batch fails.
            if hears.await.is_err() {
                return;
            }
        }
        let _ = locked.send(());
    };
    let (stored, ()) = tokio::join!(futures_util::future::join_all(stores), all_held);
    let mut outcomes: Vec<Option<Matched>> = (0..count).map(|_| None).collect();
    for group in stored {
        for (position, matched) in group? {
            if let Some(slot) = outcomes.get_mut(position) {
                *slot = Some(matched);
            }
        }
    }
    outcomes
        .into_iter()
        .map(|o| {
            o.ok_or_else(|| {
                Error::internal(anyhow::anyhow!("a report of the batch has no outcome"))
            })
        })
        .collect()
}

/// A hash of a party set, the same for the same set (within a process).
fn party_set_hash(parties: &[crate::domain::Party]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    parties.hash(&mut hasher);
    hasher.finish()
}

/// Waits for a batch of meetings under MERGE or REJECT and counts what
/// became of each.
async fn account_matching(committing: CommittingMatching, report: &mut ImportReport) -> Result<()> {
    let (batch, outcomes) = committing.await.map_err(Error::internal)?;
    for ((matched, (index, request_id)), meeting) in outcomes?
        .into_iter()
        .zip(batch.origins)
        .zip(&batch.meetings)
    {
        match matched {
            Matched::Created(_) => report.counts.created_count += 1,
            Matched::Merged(_) => report.counts.merged_count += 1,
            Matched::Existing(outcome) => match existing(outcome, meeting, &request_id) {
                Ok(_) => report.counts.duplicate_count += 1,
                Err(Error::RequestIdReused { .. }) => {
                    let mut v = Violations::new();
                    v.add("request_id", "was already used for a different meeting");
                    reject(report, index, request_id, v);
                }
                // The key's meeting was deleted: the retry stores nothing.
                Err(Error::MeetingNotFound(_)) => report.counts.duplicate_count += 1,
                Err(e) => return Err(e),
            },
            Matched::Rejected(id) => {
                let mut v = Violations::new();
                v.add(
                    "meeting",
                    format!("matches stored meeting {id} (DUPLICATE_POLICY_REJECT)"),
                );
                reject(report, index, request_id, v);
            } // The merged record would break a rule (more than 20
              // sources, say).
        }
    }
    Ok(())
}

impl MeetingsApi {
    /// Starts committing a batch. The task finishes even if the client goes
    /// away: what it stores is complete meetings, and request_ids make a
    /// retried import safe.
    fn commit(&self, batch: ImportBatch, share: &DatabaseShare) -> Committing {
        let storage = self.storage.clone();
        let share = share.clone();
        let limits = self.limits.clone();
        tokio::spawn(
            async move {
                let _turn = limits.import_commit_turn().await;
                let outcomes = match share.acquire().await {
                    Ok(_database) => {
                        storage
                            .answering(storage.insert_meetings(&batch.rows))
                            .await
                    }
                    Err(e) => Err(e),
                };
                (batch, outcomes)
            }
            .in_current_span(),
        )
    }
}

/// Stores the rows of concurrent CreateMeeting calls in one statement. The
/// rows are valid, so a statement fails for the database's sake, not a row's;
/// if one fails otherwise, each row is tried alone so that a row the database
/// refuses fails its own call only.
pub(super) async fn insert_coalesced(
    storage: Storage,
    rows: Vec<NewRow>,
) -> Result<Vec<Result<(NewRow, Inserted)>>> {
    match storage.insert_meetings(&rows).await {
        Ok(outcomes) => Ok(rows.into_iter().zip(outcomes).map(Ok).collect()),
        Err(e) if rows.len() == 1 || matches!(e, Error::Unavailable(_)) => Err(e),
        Err(e) => {
            tracing::warn!(error = %e, rows = rows.len(), "batched create failed; trying each row alone");
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(
                    storage
                        .insert_meetings(std::slice::from_ref(&row))
                        .await
                        .and_then(|o| {
                            o.into_iter().next().ok_or_else(|| {
                                Error::internal(anyhow::anyhow!("insert returned no outcome"))
                            })
                        })
                        .map(|outcome| (row, outcome)),
                );
            }
            Ok(out)
        }
    }
}

/// Valid rows of an import waiting for their transaction, and where each
/// came from (stream index, request_id as sent).
#[derive(Default)]
struct ImportBatch {
    rows: Vec<NewRow>,
    origins: Vec<(u64, String)>,
    /// Pair rows the batch writes.
    pairs: usize,
    /// The batch's share of the import memory budget.
    held: Option<OwnedSemaphorePermit>,
}

/// Meetings of an import under MERGE or REJECT waiting for their
/// transaction, where each came from, and each meeting (for the answer to a
/// reused request_id).
#[derive(Default)]
struct MatchingBatch {
    rows: Vec<(NewRow, OnMatch)>,
    origins: Vec<(u64, String)>,
    meetings: Vec<NewMeeting>,
    pairs: usize,
    /// The batch's share of the import memory budget.
    held: Option<OwnedSemaphorePermit>,
}

/// Adds a record's share of the import memory budget to its batch's.
fn hold(batch: &mut Option<OwnedSemaphorePermit>, record: OwnedSemaphorePermit) {
    match batch {
        Some(held) => held.merge(record),
        None => *batch = Some(record),
    }
}

/// KiB of the import memory budget a batch holds.
fn held_kib(batch: &Option<OwnedSemaphorePermit>) -> usize {
    batch.as_ref().map_or(0, OwnedSemaphorePermit::num_permits)
}

/// A batch of meetings under MERGE or REJECT being committed by its own
/// task.
type CommittingMatching = tokio::task::JoinHandle<(MatchingBatch, Result<Vec<Matched>>)>;

/// A batch being committed by its own task.
type Committing = tokio::task::JoinHandle<(ImportBatch, Result<Vec<Inserted>>)>;

/// Waits for a batch's commit and counts what happened to each row.
async fn account(committing: Committing, report: &mut ImportReport) -> Result<()> {
    let (batch, outcomes) = committing.await.map_err(Error::internal)?;
    for ((row, (index, request_id)), outcome) in batch.rows.iter().zip(batch.origins).zip(outcomes?)
    {
        match outcome {
            Inserted::Created => report.counts.created_count += 1,
            Inserted::Existing { record, asked, .. } => {
                let same = match (asked, record) {
                    (Asked::Same, _) | (Asked::Unknown, None) => true,
                    (Asked::Other, _) => false,
                    (Asked::Unknown, Some(bytes)) => same_meeting(&bytes, &row.meeting)?.is_some(),
                };
                if same {
                    report.counts.duplicate_count += 1;
                } else {
                    let mut v = Violations::new();
                    v.add("request_id", "was already used for a different meeting");
                    reject(report, index, request_id, v);
                }
            }
        }
    }
    Ok(())
}

/// Gives a new meeting its id and time, and builds its stored record.
fn new_row(meeting: NewMeeting, request_id: Option<RequestId>) -> (NewRow, pb::Meeting) {
    let id = Uuid::now_v7();
    // PostgreSQL keeps microseconds: the record must say what the row says.
    let now = Utc::now().trunc_subsecs(6);
    let record = stored_record(&meeting, id, now, now, 1);
    // What a key remembers of its request: the meeting as asked, normalised.
    let request_digest = request_id
        .as_ref()
        .map(|_| sha2::Sha256::digest(meeting_to_pb(&meeting).encode_to_vec()).into());
    let row = NewRow {
        id,
        meeting,
        create_time: now,
        update_time: now,
        version: 1,
        record: record.encode_to_vec(),
        request_id,
        request_digest,
    };
    (row, record)
}

/// What a create whose request_id is already used answers: the retry of
/// what the key was used for gets the meeting as it is now (with its id
/// as `merged_into` if the report was merged into it), or NOT_FOUND once
/// deleted; never a second one. A key used for another meeting is
/// REQUEST_ID_REUSED.
fn existing(
    outcome: Inserted,
    meeting: &NewMeeting,
    request_id: &str,
) -> Result<(pb::Meeting, String)> {
    let Inserted::Existing {
        meeting_id,
        record,
        asked,
        merged,
    } = outcome
    else {
        return Err(Error::internal(anyhow::anyhow!(
            "a created meeting is not an existing key"
        )));
    };
    let reused = || Error::RequestIdReused {
        request_id: request_id.to_owned(),
    };
    let stored = match (asked, record) {
        (Asked::Other, _) => return Err(reused()),
        (Asked::Same | Asked::Unknown, None) => return Err(Error::MeetingNotFound(meeting_id)),
        (Asked::Same, Some(bytes)) => decode_record(&bytes)?,
        (Asked::Unknown, Some(bytes)) => same_meeting(&bytes, meeting)?.ok_or_else(reused)?,
    };
    tracing::debug!(id = %stored.id, "request_id retried: returning the stored meeting");
    let merged_into = if merged {
        stored.id.clone()
    } else {
        String::new()
    };
    Ok((stored, merged_into))
}

/// The stored meeting, if it is the same meeting as `meeting` (the retry of
/// an idempotent create); None if the request_id was used for another one.
fn same_meeting(stored: &[u8], meeting: &NewMeeting) -> Result<Option<pb::Meeting>> {
    let stored = decode_record(stored)?;
    Ok((without_output_fields(stored.clone()) == meeting_to_pb(meeting)).then_some(stored))
}

/// Most rejected meetings an import reports in detail; it counts them all.
const MAX_REJECTED_DETAILS: usize = 1_000;
/// Most bytes of rejected meetings' details in one import's response.
const MAX_REJECTED_BYTES: usize = 1024 * 1024;
/// Field violations listed for one rejected meeting (as in a status).
const MAX_VIOLATIONS_PER_REJECTED: usize = crate::error::MAX_VIOLATIONS_IN_STATUS;
/// How long an import's client may send nothing, while another import
/// waits for the memory budget, before the import commits what it holds.
const IMPORT_IDLE: std::time::Duration = std::time::Duration::from_millis(100);
/// Valid meetings an import commits per transaction.
pub const IMPORT_BATCH: usize = 500;
/// Pair rows an import batch writes, at most (a few more when its last
/// meeting has many countries): a batch of meetings of many countries is
/// committed early, so that no statement runs for long.
const IMPORT_BATCH_PAIRS: usize = 20_000;
/// KiB of request messages an import batch holds, at most (a batch of
/// large records is committed early, so that one import does not take the
/// memory budget for itself).
const IMPORT_BATCH_KIB: usize = 4 * 1024;
/// Batches of one import committing at once. PostgreSQL runs a statement on
/// one core, and a statement also waits for its WAL writes and commit; four
/// keep both cores of a small machine busy (bench, alternating runs of
/// 100,000 records: three 8.5k-10.3k records/s, four 10.1k-10.3k, five
/// 10.1k-10.9k, eight 10.1k-10.5k). Each takes a pool connection.
const IMPORT_IN_FLIGHT: usize = 4;

/// What an import has done so far: the response, and the bytes its
/// rejected meetings' details take.
#[derive(Default)]
struct ImportReport {
    counts: pb::ImportMeetingsResponse,
    detail_bytes: usize,
}

fn reject(report: &mut ImportReport, index: u64, request_id: String, violations: Violations) {
    report.counts.rejected_count += 1;
    if report.counts.rejected.len() >= MAX_REJECTED_DETAILS
        || report.detail_bytes >= MAX_REJECTED_BYTES
    {
        return;
    }
    // A request_id too long to be valid is sent back cut to the longest
    // valid length: the index says which meeting it was.
    let request_id = match request_id
        .char_indices()
        .nth(crate::domain::limits::MAX_REQUEST_ID)
    {
        Some((end, _)) => request_id[..end].to_owned(),
        None => request_id,
    };
    let rejected = pb::RejectedMeeting {
        index,
        request_id,
        violations: violations
            .reported(MAX_VIOLATIONS_PER_REJECTED)
            .into_iter()
            .map(|v| pb::FieldViolation {
                field: v.field,
                description: v.description,
            })
            .collect(),
    };
    // Each detail costs its encoding and a few bytes of framing.
    let size = rejected.encoded_len() + 4;
    if report.detail_bytes + size <= MAX_REJECTED_BYTES {
        report.detail_bytes += size;
        report.counts.rejected.push(rejected);
    } else {
        // Full: later rejections are counted only.
        report.detail_bytes = MAX_REJECTED_BYTES;
    }
}
