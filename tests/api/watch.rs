//! WatchMeetings: order, filtering, resuming, several instances, lost
//! notifications, expiry.

use std::time::Duration;

use meetings::pb;
use meetings::pb::MeetingEventKind as Kind;
use tonic::Code;
use tonic::codec::Streaming;

use crate::helpers::{TestApp, assert_error, meeting, spawn_app};

async fn watch(
    app: &TestApp,
    req: pb::WatchMeetingsRequest,
) -> Streaming<pb::WatchMeetingsResponse> {
    app.client
        .clone()
        .watch_meetings(req)
        .await
        .expect("watch starts")
        .into_inner()
}

/// The next `n` events, failing the test if they take more than 10 s.
async fn next_events(
    stream: &mut Streaming<pb::WatchMeetingsResponse>,
    n: usize,
) -> Vec<pb::MeetingEvent> {
    let mut out = Vec::new();
    while out.len() < n {
        let item = tokio::time::timeout(Duration::from_secs(10), stream.message())
            .await
            .expect("an event arrives in time")
            .expect("the stream is healthy")
            .expect("the stream is open");
        out.push(item.event.expect("a message carries an event"));
    }
    out
}

/// Checks that watching after `expired` (a deleted event) fails with
/// OUT_OF_RANGE, then resumes after `last_expired` (the newest deleted
/// event, so nothing retained is skipped) and returns the next `n` events.
async fn resume_after_expiry(
    app: &TestApp,
    expired: u64,
    last_expired: u64,
    n: usize,
) -> Vec<pb::MeetingEvent> {
    let status = app
        .client
        .clone()
        .watch_meetings(pb::WatchMeetingsRequest {
            after_sequence: expired,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_error(&status, Code::OutOfRange, "EVENTS_EXPIRED");
    let mut resumed = watch(
        app,
        pb::WatchMeetingsRequest {
            after_sequence: last_expired,
            ..Default::default()
        },
    )
    .await;
    next_events(&mut resumed, n).await
}

/// Sets the summary of the meeting `id` (no mask: only the fields set in the
/// message change), returning the meeting as stored.
async fn set_summary(app: &TestApp, id: &str, summary: &str) -> pb::Meeting {
    app.client
        .clone()
        .update_meeting(pb::UpdateMeetingRequest {
            meeting: Some(pb::Meeting {
                id: id.to_owned(),
                summary: summary.to_owned(),
                ..Default::default()
            }),
            update_mask: None,
        })
        .await
        .expect("update succeeds")
        .into_inner()
        .meeting
        .expect("an update returns the meeting")
}

fn kinds(events: &[pb::MeetingEvent]) -> Vec<(Kind, String)> {
    events
        .iter()
        .map(|e| {
            (
                Kind::try_from(e.kind).unwrap(),
                e.meeting.as_ref().unwrap().id.clone(),
            )
        })
        .collect()
}

#[tokio::test]
async fn changes_arrive_in_order_and_the_pair_filter_applies() {
    let app = spawn_app().await;
    let mut all = watch(&app, pb::WatchMeetingsRequest::default()).await;
    let mut az_jp = watch(
        &app,
        pb::WatchMeetingsRequest {
            country_a: "jp".into(),
            country_b: "az".into(),
            after_sequence: 0,
            ..Default::default()
        },
    )
    .await;

    let m = app.create(meeting("2022-05-05", &["AZ", "JP"])).await;
    let other = app.create(meeting("2022-05-06", &["FR", "DE"])).await;
    let updated = set_summary(&app, &m.id, "updated").await;
    app.delete(&m.id).await;

    let events = next_events(&mut all, 4).await;
    assert_eq!(
        kinds(&events),
        [
            (Kind::Created, m.id.clone()),
            (Kind::Created, other.id.clone()),
            (Kind::Updated, m.id.clone()),
            (Kind::Deleted, m.id.clone()),
        ]
    );
    assert!(events.windows(2).all(|w| w[0].sequence < w[1].sequence));
    assert_eq!(
        events[0].meeting.as_ref(),
        Some(&m),
        "a creation carries the meeting"
    );
    assert_eq!(events[2].meeting.as_ref(), Some(&updated));
    let deleted = events[3].meeting.as_ref().unwrap();
    assert_eq!(
        (deleted.country_codes.clone(), deleted.topics.len()),
        (vec!["AZ".to_owned(), "JP".to_owned()], 0)
    );

    let pair_events = next_events(&mut az_jp, 3).await;
    assert_eq!(
        kinds(&pair_events),
        [
            (Kind::Created, m.id.clone()),
            (Kind::Updated, m.id.clone()),
            (Kind::Deleted, m.id.clone())
        ]
    );
}

#[tokio::test]
async fn a_watcher_that_reconnects_gets_what_it_missed_exactly_once() {
    let app = spawn_app().await;
    let mut stream = watch(&app, pb::WatchMeetingsRequest::default()).await;
    let first = app.create(meeting("2022-01-01", &["AZ", "JP"])).await;
    let seen = next_events(&mut stream, 1).await;
    assert_eq!(kinds(&seen), [(Kind::Created, first.id.clone())]);
    drop(stream);

    // Changes while the watcher is away.
    let mut missed = Vec::new();
    for day in 2..=6 {
        missed.push(
            app.create(meeting(&format!("2022-01-0{day}"), &["AZ", "JP"]))
                .await
                .id,
        );
    }
    let mut resumed = watch(
        &app,
        pb::WatchMeetingsRequest {
            after_sequence: seen[0].sequence,
            ..Default::default()
        },
    )
    .await;
    let later = app.create(meeting("2022-02-01", &["AZ", "JP"])).await;
    let events = next_events(&mut resumed, 6).await;
    let ids: Vec<_> = kinds(&events).into_iter().map(|(_, id)| id).collect();
    missed.push(later.id);
    assert_eq!(
        ids, missed,
        "everything missed, then the new one, each once"
    );
    // Nothing else follows.
    assert!(
        tokio::time::timeout(Duration::from_millis(1500), resumed.message())
            .await
            .is_err(),
        "no duplicate arrives"
    );
}

#[tokio::test]
async fn two_instances_on_one_database_see_each_others_changes() {
    let a = spawn_app().await;
    let b = a.second_instance().await;
    let mut on_b = watch(&b, pb::WatchMeetingsRequest::default()).await;
    let mut on_a = watch(&a, pb::WatchMeetingsRequest::default()).await;
    let mut created = Vec::new();
    for i in 0..10 {
        let app = if i % 2 == 0 { &a } else { &b };
        created.push(
            app.create(meeting(&format!("2022-03-{:02}", i + 1), &["AZ", "JP"]))
                .await
                .id,
        );
    }
    for stream in [&mut on_a, &mut on_b] {
        let events = next_events(stream, 10).await;
        let mut ids: Vec<_> = kinds(&events).into_iter().map(|(_, id)| id).collect();
        assert!(events.windows(2).all(|w| w[0].sequence < w[1].sequence));
        ids.sort();
        let mut expected = created.clone();
        expected.sort();
        assert_eq!(ids, expected);
    }
}

#[tokio::test]
async fn an_event_whose_notification_never_arrives_is_still_delivered() {
    let app = spawn_app().await;
    let mut stream = watch(&app, pb::WatchMeetingsRequest::default()).await;
    // The watcher is caught up and waiting.
    let m = app.create(meeting("2022-01-01", &["AZ", "JP"])).await;
    assert_eq!(
        kinds(&next_events(&mut stream, 1).await),
        [(Kind::Created, m.id)]
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Another writer's event, numbered without any NOTIFY (as when a
    // notification is lost): the watcher must find it by itself.
    let id = uuid::Uuid::now_v7();
    sqlx::query(
        "INSERT INTO meeting_events (kind, meeting_ids, meeting_codes, event_count, \
         sequence, numbered_at) VALUES (3, ARRAY[$1::uuid], ARRAY['AZ,JP'], 1, \
         nextval('meeting_event_sequence'), now())",
    )
    .bind(id)
    .execute(&app.pool)
    .await
    .unwrap();
    let events = next_events(&mut stream, 1).await;
    assert_eq!(kinds(&events), [(Kind::Deleted, id.to_string())]);
}

#[tokio::test]
async fn a_position_older_than_the_retained_events_is_out_of_range() {
    let app = spawn_app().await;
    let mut stream = watch(&app, pb::WatchMeetingsRequest::default()).await;
    for day in 1..=3 {
        app.create(meeting(&format!("2022-01-0{day}"), &["AZ", "JP"]))
            .await;
    }
    let events = next_events(&mut stream, 3).await;
    // Expired as a partition drop expires them: the rows go and the mark
    // rises, together.
    sqlx::query(
        "WITH gone AS (DELETE FROM meeting_events WHERE sequence <= $1) \
         UPDATE meeting_event_expiry SET expired_through = $1",
    )
    .bind(events[1].sequence as i64)
    .execute(&app.pool)
    .await
    .unwrap();
    let next = resume_after_expiry(&app, events[0].sequence, events[1].sequence, 1).await;
    assert_eq!(next[0].sequence, events[2].sequence);

    let status = app
        .client
        .clone()
        .watch_meetings(pb::WatchMeetingsRequest {
            country_a: "AZ".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_error(&status, Code::InvalidArgument, "INVALID_REQUEST");
}

/// A watcher that starts after the changes replays each event with the
/// meeting as it was then: a creation shows the first version even after
/// the meeting was updated or deleted (a CREATED event's record is kept
/// only once the meeting is first rewritten).
#[tokio::test]
async fn a_replay_shows_each_meeting_as_it_was_at_each_event() {
    let app = spawn_app().await;
    let updated_later = app.create(meeting("2022-05-05", &["AZ", "JP"])).await;
    let unchanged = app.create(meeting("2022-05-06", &["AZ", "JP"])).await;
    let deleted_later = app.create(meeting("2022-05-07", &["FR", "DE"])).await;
    set_summary(&app, &updated_later.id, "second version").await;
    let updated = set_summary(&app, &updated_later.id, "third version").await;
    app.delete(&deleted_later.id).await;

    let mut replay = watch(&app, pb::WatchMeetingsRequest::default()).await;
    let events = next_events(&mut replay, 6).await;
    assert_eq!(
        kinds(&events),
        [
            (Kind::Created, updated_later.id.clone()),
            (Kind::Created, unchanged.id.clone()),
            (Kind::Created, deleted_later.id.clone()),
            (Kind::Updated, updated_later.id.clone()),
            (Kind::Updated, updated_later.id.clone()),
            (Kind::Deleted, deleted_later.id.clone()),
        ]
    );
    assert_eq!(events[0].meeting.as_ref(), Some(&updated_later));
    assert_eq!(events[1].meeting.as_ref(), Some(&unchanged));
    assert_eq!(events[2].meeting.as_ref(), Some(&deleted_later));
    assert_eq!(
        events[3].meeting.as_ref().map(|m| m.summary.as_str()),
        Some("second version")
    );
    assert_eq!(events[4].meeting.as_ref(), Some(&updated));
}

/// Expiry drops whole partitions (never deletes rows): events numbered
/// longer ago than the retention go with their partition, and so do their
/// stored records (an update's, and a CREATED event's copied by the
/// update) once every event they belong to is gone; newer events and their
/// records stay, numbered one after another. Records in the DEFAULT
/// partition are deleted once their event is gone. The server's own
/// maintenance, with a retention of 3 s (partitions of 1 s).
#[tokio::test]
async fn expiry_drops_partitions_of_events_and_their_records() {
    let app = crate::helpers::spawn_app_with(crate::helpers::Settings {
        event_retention_hours: 3.0 / 3600.0,
        ..Default::default()
    })
    .await;
    let a = app.create(meeting("2022-01-01", &["AZ", "JP"])).await;
    set_summary(&app, &a.id, "second version").await;
    let b = app.create(meeting("2022-01-02", &["AZ", "JP"])).await;
    let mut all = watch(&app, pb::WatchMeetingsRequest::default()).await;
    let events = next_events(&mut all, 3).await;
    assert_eq!(
        kinds(&events),
        [
            (Kind::Created, a.id.clone()),
            (Kind::Updated, a.id.clone()),
            (Kind::Created, b.id.clone()),
        ]
    );
    let sequences: Vec<i64> = events.iter().map(|e| e.sequence as i64).collect();
    let (event_ids, mut partitions): (Vec<i64>, Vec<String>) = sqlx::query_as::<_, (i64, String)>(
        "SELECT event_id, tableoid::regclass::text FROM meeting_events \
         WHERE sequence = ANY($1) ORDER BY sequence",
    )
    .bind(&sequences)
    .fetch_all(&app.pool)
    .await
    .unwrap()
    .into_iter()
    .unzip();
    let records: Vec<(i64, String)> = sqlx::query_as(
        "SELECT event_id, tableoid::regclass::text FROM meeting_event_records \
         WHERE event_id = ANY($1) ORDER BY event_id",
    )
    .bind(&event_ids)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        records.iter().map(|r| r.0).collect::<Vec<_>>(),
        [event_ids[0], event_ids[1]],
        "a's first version (copied by the update) and its update"
    );
    for partition in &partitions {
        assert!(
            partition.starts_with("meeting_events_p"),
            "numbered events are in time partitions: {partition}"
        );
    }
    // Records are in the partition of their time, or, had it not been
    // made yet on a slow machine, in the DEFAULT partition until it is.
    partitions.extend(
        records
            .into_iter()
            .map(|r| r.1)
            .filter(|p| p != "meeting_event_records_default"),
    );
    // A record without an event, at a time no partition covers yet.
    sqlx::query(
        "INSERT INTO meeting_event_records (event_id, meeting_id, record, written_at) \
         VALUES (0, gen_random_uuid(), '', now() + interval '1 day')",
    )
    .execute(&app.pool)
    .await
    .unwrap();

    // Past the retention and a partition's span: new events, and the old
    // ones expire.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let c = app.create(meeting("2022-01-03", &["AZ", "JP"])).await;
    let c2 = set_summary(&app, &c.id, "second version of c").await;
    // Partitions still there, and the oldest retained number.
    let state = || {
        let pool = app.pool.clone();
        let partitions = partitions.clone();
        async move {
            let kept: Vec<String> = sqlx::query_scalar(
                "SELECT p FROM unnest($1::text[]) AS p WHERE to_regclass(p) IS NOT NULL",
            )
            .bind(&partitions)
            .fetch_all(&pool)
            .await
            .unwrap();
            let oldest: Option<i64> =
                sqlx::query_scalar("SELECT min(sequence) FROM meeting_events")
                    .fetch_one(&pool)
                    .await
                    .unwrap();
            (kept, oldest)
        }
    };
    let mut now = state().await;
    for _ in 0..100 {
        if now.0.is_empty() && now.1.is_some_and(|s| s > sequences[2]) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        now = state().await;
    }
    let (kept, oldest) = now;
    assert_eq!(
        kept,
        Vec::<String>::new(),
        "the old partitions were dropped"
    );
    assert!(
        oldest.is_some_and(|s| s > sequences[2]),
        "the old events expired"
    );
    let records: Vec<i64> = sqlx::query_scalar(
        "SELECT event_id FROM meeting_event_records WHERE event_id = ANY($1) OR event_id = 0",
    )
    .bind(&event_ids)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        records,
        Vec::<i64>::new(),
        "the records went with their events"
    );

    // The newer events are all there, numbered on from the expired ones,
    // and the update's event still has its record.
    let replayed = resume_after_expiry(&app, events[0].sequence, events[2].sequence, 2).await;
    assert_eq!(
        kinds(&replayed),
        [(Kind::Created, c.id.clone()), (Kind::Updated, c.id.clone())]
    );
    assert_eq!(replayed[1].sequence, replayed[0].sequence + 1);
    assert_eq!(replayed[0].meeting.as_ref(), Some(&c));
    assert_eq!(replayed[1].meeting.as_ref(), Some(&c2));
}

/// An import stores its records in batches, each written with one
/// change-feed row; watchers still get one event per meeting, numbered one
/// after another in import order, filtered per meeting, and can resume in
/// the middle of a batch. A later update keeps each creation's first
/// version in the replay.
#[tokio::test]
async fn an_imported_batch_is_one_event_per_meeting_in_import_order() {
    let app = spawn_app().await;
    let pairs = [["AZ", "JP"], ["FR", "DE"]];
    let dates: Vec<String> = (1..=6).map(|d| format!("2021-06-0{d}")).collect();
    let requests = dates
        .iter()
        .enumerate()
        .map(|(i, date)| pb::ImportMeetingsRequest {
            meeting: Some(meeting(date, &pairs[i % 2])),
            request_id: String::new(),
            ..Default::default()
        });
    let report = app.import(requests.collect()).await;
    assert_eq!(report.created_count, 6);
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM meeting_events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(rows, 1, "one change-feed row for the batch");

    let date_of = |e: &pb::MeetingEvent| e.meeting.as_ref().unwrap().date.clone();
    let mut all = watch(&app, pb::WatchMeetingsRequest::default()).await;
    let events = next_events(&mut all, 6).await;
    assert!(events.iter().all(|e| e.kind == Kind::Created as i32));
    assert_eq!(events.iter().map(date_of).collect::<Vec<_>>(), dates);
    assert!(
        events
            .windows(2)
            .all(|w| w[1].sequence == w[0].sequence + 1),
        "consecutive numbers: {:?}",
        events.iter().map(|e| e.sequence).collect::<Vec<_>>()
    );

    let mut fr_de = watch(
        &app,
        pb::WatchMeetingsRequest {
            country_a: "DE".into(),
            country_b: "FR".into(),
            after_sequence: 0,
            ..Default::default()
        },
    )
    .await;
    let pair_events = next_events(&mut fr_de, 3).await;
    assert_eq!(
        pair_events.iter().map(date_of).collect::<Vec<_>>(),
        [dates[1].clone(), dates[3].clone(), dates[5].clone()]
    );
    assert_eq!(pair_events[0].sequence, events[1].sequence);

    // Resume after the third: the rest of the batch, each once.
    let mut resumed = watch(
        &app,
        pb::WatchMeetingsRequest {
            after_sequence: events[2].sequence,
            ..Default::default()
        },
    )
    .await;
    let rest = next_events(&mut resumed, 3).await;
    assert_eq!(
        rest.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        events[3..].iter().map(|e| e.sequence).collect::<Vec<_>>()
    );

    // An update of one imported meeting: its creation still replays its
    // first version, and its neighbours in the batch are unaffected.
    let updated = set_summary(&app, &events[4].meeting.as_ref().unwrap().id, "later").await;
    let mut replay = watch(&app, pb::WatchMeetingsRequest::default()).await;
    let replayed = next_events(&mut replay, 7).await;
    assert_eq!(replayed[..6], events[..]);
    assert_eq!(kinds(&replayed[6..]), [(Kind::Updated, updated.id.clone())]);
    assert_eq!(replayed[6].meeting.as_ref(), Some(&updated));
}

/// A pair's watcher reads past pages holding only other pairs' events (two
/// import batches here, more than a page of numbers) to reach its own.
#[tokio::test]
async fn a_pair_watcher_reads_past_pages_of_other_pairs() {
    let app = spawn_app().await;
    let requests: Vec<_> = (0..700)
        .map(|i| pb::ImportMeetingsRequest {
            meeting: Some(meeting(&format!("19{:02}-01-01", i % 100), &["FR", "DE"])),
            request_id: String::new(),
            ..Default::default()
        })
        .collect();
    let report = app.import(requests).await;
    assert_eq!(report.created_count, 700);
    let m = app.create(meeting("2022-05-05", &["AZ", "JP"])).await;
    let mut az_jp = watch(
        &app,
        pb::WatchMeetingsRequest {
            country_a: "AZ".into(),
            country_b: "JP".into(),
            after_sequence: 0,
            ..Default::default()
        },
    )
    .await;
    let events = next_events(&mut az_jp, 1).await;
    assert_eq!(kinds(&events), [(Kind::Created, m.id.clone())]);
    assert_eq!(events[0].sequence, 701);
}

#[tokio::test]
async fn a_position_beyond_the_newest_event_is_out_of_range() {
    let app = spawn_app().await;
    app.create(meeting("2022-05-05", &["AZ", "JP"])).await;
    let mut stream = watch(&app, pb::WatchMeetingsRequest::default()).await;
    let newest = next_events(&mut stream, 1).await[0].sequence;
    // At the newest: a watcher waits for what comes next.
    let mut at_newest = watch(
        &app,
        pb::WatchMeetingsRequest {
            after_sequence: newest,
            ..Default::default()
        },
    )
    .await;
    app.create(meeting("2022-05-06", &["AZ", "JP"])).await;
    assert_eq!(next_events(&mut at_newest, 1).await[0].sequence, newest + 1);
    // Beyond it (a position kept across a restore of the database).
    let status = app
        .client
        .clone()
        .watch_meetings(pb::WatchMeetingsRequest {
            after_sequence: newest + 100,
            ..Default::default()
        })
        .await
        .map(|_| ())
        .unwrap_err();
    let details = assert_error(&status, Code::OutOfRange, "SEQUENCE_AHEAD");
    assert_eq!(
        details.error_info().unwrap().metadata["newest_sequence"],
        (newest + 1).to_string()
    );
    // Past the largest number PostgreSQL can hold: the same answer.
    let status = app
        .client
        .clone()
        .watch_meetings(pb::WatchMeetingsRequest {
            after_sequence: u64::MAX,
            ..Default::default()
        })
        .await
        .map(|_| ())
        .unwrap_err();
    assert_error(&status, Code::OutOfRange, "SEQUENCE_AHEAD");
}

/// A watcher that falls behind the retention while connected ends with
/// OUT_OF_RANGE, as a new watch from its position would, instead of
/// skipping what expired. The expiry here is the server's own timer, with
/// a retention of 2 s set by the flag.
#[tokio::test]
async fn a_connected_watcher_behind_the_retention_ends_out_of_range() {
    let app = crate::helpers::spawn_app_with(crate::helpers::Settings {
        event_retention_hours: 2.0 / 3600.0,
        ..Default::default()
    })
    .await;
    app.create(meeting("2022-05-05", &["AZ", "JP"])).await;
    let mut stream = watch(&app, pb::WatchMeetingsRequest::default()).await;
    let first = next_events(&mut stream, 1).await[0].sequence as i64;
    // More events than HTTP/2 windows and one page hold, which the watcher
    // does not read while they expire.
    let report = app
        .import(
            crate::helpers::many(1_000)
                .into_iter()
                .map(|mut m| {
                    m.summary = "A long report of the talks. ".repeat(200);
                    pb::ImportMeetingsRequest {
                        meeting: Some(m),
                        request_id: String::new(),
                        ..Default::default()
                    }
                })
                .collect(),
        )
        .await;
    assert_eq!(report.created_count, 1_000);
    tokio::time::sleep(Duration::from_secs(5)).await;
    // One event after the expiry, so that some are retained.
    app.create(meeting("2022-05-06", &["AZ", "JP"])).await;
    // The drop of the imported events' partition, as the server records it.
    let mut expired = 0;
    for _ in 0..100 {
        expired = sqlx::query_scalar("SELECT expired_through FROM meeting_event_expiry")
            .fetch_one(&app.pool)
            .await
            .unwrap();
        if expired >= first + 1_000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(expired >= first + 1_000, "the imported events expired");
    let mut received = 0;
    let status = loop {
        match tokio::time::timeout(Duration::from_secs(10), stream.message())
            .await
            .expect("the watcher is answered")
        {
            Ok(Some(_)) => received += 1,
            Ok(None) => panic!("the stream ended without an error after {received} events"),
            Err(status) => break status,
        }
    };
    assert!(received < 1_000, "it did not get every event ({received})");
    let details = assert_error(&status, Code::OutOfRange, "EVENTS_EXPIRED");
    assert_eq!(
        details.error_info().unwrap().metadata["oldest_sequence"],
        (expired + 1).to_string()
    );
    // The mark covers no kept event.
    let kept: Option<i64> = sqlx::query_scalar(
        "SELECT min(sequence - event_count + 1) FROM meeting_events WHERE sequence IS NOT NULL",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(kept.is_none_or(|kept| kept > expired), "{kept:?} kept");
    // A new watch from the start of the feed begins after what expired.
    let created = app.create(meeting("2022-05-07", &["AZ", "JP"])).await;
    let mut from_start = watch(&app, pb::WatchMeetingsRequest::default()).await;
    let event = loop {
        let event = next_events(&mut from_start, 1).await.remove(0);
        assert!(
            event.sequence as i64 > expired,
            "{} expired",
            event.sequence
        );
        if event.meeting.as_ref().unwrap().id == created.id {
            break event;
        }
    };
    assert_eq!(event.kind, pb::MeetingEventKind::Created as i32);
}

/// Numbers the sequencer reserved and never used (a numbering step that
/// failed: a PostgreSQL sequence does not give them back) are skipped, not
/// taken for expired events: a watcher from the start of the feed, or from
/// inside the unused numbers, gets every event.
#[tokio::test]
async fn unused_numbers_before_the_first_event_are_not_expired_events() {
    let app = spawn_app().await;
    sqlx::query("SELECT setval('meeting_event_sequence', 10)")
        .execute(&app.pool)
        .await
        .unwrap();
    let created = app.create(meeting("2022-05-05", &["AZ", "JP"])).await;
    for after in [0, 4] {
        let mut stream = watch(
            &app,
            pb::WatchMeetingsRequest {
                after_sequence: after,
                ..Default::default()
            },
        )
        .await;
        let events = next_events(&mut stream, 1).await;
        assert_eq!(events[0].sequence, 11, "from {after}");
        assert_eq!(events[0].meeting.as_ref().unwrap().id, created.id);
    }
}

/// A pair's watcher sees every change to a meeting that was in the pair
/// before or after it: a mirror of the pair learns that a meeting left.
#[tokio::test]
async fn a_pair_watcher_sees_a_meeting_leave_the_pair() {
    let app = spawn_app().await;
    let mut stream = watch(
        &app,
        pb::WatchMeetingsRequest {
            country_a: "AZ".into(),
            country_b: "JP".into(),
            ..Default::default()
        },
    )
    .await;
    let created = app.create(meeting("2022-05-05", &["AZ", "JP"])).await;
    let moved = pb::Meeting {
        id: created.id.clone(),
        participants: meeting("2022-05-05", &["AZ", "FR"]).participants,
        ..Default::default()
    };
    app.client
        .clone()
        .update_meeting(pb::UpdateMeetingRequest {
            meeting: Some(moved),
            update_mask: Some(pbjson_types::FieldMask {
                paths: vec!["participants".into()],
            }),
        })
        .await
        .unwrap();
    // A change of a meeting never in the pair is not delivered.
    let other = app.create(meeting("2022-05-06", &["DE", "FR"])).await;
    app.delete(&other.id).await;
    let marker = app.create(meeting("2022-05-07", &["AZ", "JP"])).await;
    let events = next_events(&mut stream, 3).await;
    assert_eq!(
        kinds(&events),
        [
            (Kind::Created, created.id.clone()),
            (Kind::Updated, created.id.clone()),
            (Kind::Created, marker.id.clone()),
        ]
    );
    assert_eq!(
        events[1].meeting.as_ref().unwrap().country_codes,
        ["AZ", "FR"],
        "the update shows the meeting where it went"
    );
}

/// Several writers on two instances of one database at once: each
/// instance's watcher from the start gets consecutive numbers, every
/// created meeting once, nothing missing.
#[tokio::test]
async fn watchers_of_two_instances_under_concurrent_writers_miss_nothing() {
    let app = spawn_app().await;
    let other = app.second_instance().await;
    // Connected before the writes: they read while the writes go on.
    let mut watchers = vec![
        watch(&app, pb::WatchMeetingsRequest::default()).await,
        watch(&other, pb::WatchMeetingsRequest::default()).await,
    ];
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let mut client = if w % 2 == 0 {
                app.client.clone()
            } else {
                other.client.clone()
            };
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for i in 0..40 {
                    let m = meeting(&format!("2022-05-{:02}", 1 + i % 28), &["AZ", "JP"]);
                    let created = client
                        .create_meeting(pb::CreateMeetingRequest {
                            meeting: Some(m),
                            request_id: format!("w{w}-{i}"),
                            ..Default::default()
                        })
                        .await
                        .unwrap()
                        .into_inner()
                        .meeting
                        .unwrap();
                    ids.push(created.id);
                }
                ids
            })
        })
        .collect();
    let mut created = std::collections::HashSet::new();
    for w in writers {
        created.extend(w.await.unwrap());
    }
    assert_eq!(created.len(), 320);
    for stream in &mut watchers {
        let events = next_events(stream, 320).await;
        let sequences: Vec<u64> = events.iter().map(|e| e.sequence).collect();
        assert!(
            sequences.windows(2).all(|w| w[1] == w[0] + 1),
            "consecutive numbers"
        );
        let seen: std::collections::HashSet<String> = events
            .iter()
            .map(|e| e.meeting.as_ref().unwrap().id.clone())
            .collect();
        assert_eq!(seen.len(), 320, "no meeting twice");
        assert_eq!(seen, created, "nothing missing");
    }
}
