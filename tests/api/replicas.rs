//! Reads on a real streaming replica: a primary and a `pg_basebackup -R`
//! copy of it, each an embedded PostgreSQL server of the test's own.
//! Pausing the replica's replay makes it visibly stale, which tells which
//! server answered a read.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use meetings::embedded::EmbeddedPostgres;
use meetings::pb;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::helpers::{Settings, TestApp, assert_error, eventually, many, meeting, spawn_app_on};

struct Cluster {
    primary: EmbeddedPostgres,
    replica: EmbeddedPostgres,
    _dirs: [tempfile::TempDir; 2],
}

fn server_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    // The servers may run as another user: let them reach their directories.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// A primary with the service's database, and a hot standby following it.
async fn cluster() -> Cluster {
    let (primary_dir, replica_dir) = (server_dir(), server_dir());
    let primary = EmbeddedPostgres::start(primary_dir.path(), &[])
        .await
        .unwrap();
    primary.base_backup(replica_dir.path()).unwrap();
    let replica = EmbeddedPostgres::start(replica_dir.path(), &[])
        .await
        .unwrap();
    Cluster {
        primary,
        replica,
        _dirs: [primary_dir, replica_dir],
    }
}

fn url(server: &EmbeddedPostgres) -> String {
    server.connect_options().to_url_lossy().to_string()
}

async fn serve(cluster: &Cluster, max_lag_ms: u64) -> TestApp {
    serve_with(cluster, max_lag_ms, Settings::default()).await
}

async fn serve_with(cluster: &Cluster, max_lag_ms: u64, settings: Settings) -> TestApp {
    spawn_app_on(
        url(&cluster.primary),
        Settings {
            replica_urls: vec![url(&cluster.replica)],
            replica_max_lag_ms: max_lag_ms,
            replica_wait_ms: 100,
            ..settings
        },
    )
    .await
}

async fn replica_health(app: &TestApp) -> i32 {
    let mut health = HealthClient::new(app.channel().await);
    health
        .check(HealthCheckRequest {
            service: "replica/1".into(),
        })
        .await
        .map(|r| r.into_inner().status)
        .unwrap_or(-1)
}

async fn until_replica(app: &TestApp, status: ServingStatus) {
    assert!(
        eventually(Duration::from_secs(30), || async {
            replica_health(app).await == status as i32
        })
        .await,
        "replica/1 never became {status:?}"
    );
}

/// Pauses or resumes the replica's replay, and waits until it has.
async fn replay(replica: &EmbeddedPostgres, on: bool) {
    let mut conn = PgConnection::connect_with(&replica.connect_options())
        .await
        .unwrap();
    let call = if on {
        "SELECT pg_wal_replay_resume()"
    } else {
        "SELECT pg_wal_replay_pause()"
    };
    sqlx::query(call).execute(&mut conn).await.unwrap();
    let want = if on { "not paused" } else { "paused" };
    for _ in 0..1000 {
        let state: String = sqlx::query_scalar("SELECT pg_get_wal_replay_pause_state()")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        if state == want {
            conn.close().await.ok();
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("replay never became {want}");
}

/// The `x-meetings-lsn` of a write's response (or status).
fn position(metadata: &tonic::metadata::MetadataMap) -> String {
    metadata
        .get("x-meetings-lsn")
        .expect("a write answers with its WAL position")
        .to_str()
        .unwrap()
        .to_owned()
}

/// CreateMeeting; the meeting and the response's `x-meetings-lsn`.
async fn create(app: &TestApp, date: &str, pair: [&str; 2]) -> (pb::Meeting, String) {
    let response = app
        .client
        .clone()
        .create_meeting(pb::CreateMeetingRequest {
            meeting: Some(meeting(date, &pair)),
            ..Default::default()
        })
        .await
        .unwrap();
    let lsn = position(response.metadata());
    (response.into_inner().meeting.unwrap(), lsn)
}

fn at<T>(message: T, lsn: Option<&str>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(lsn) = lsn {
        request
            .metadata_mut()
            .insert("x-meetings-min-lsn", lsn.parse().unwrap());
    }
    request
}

/// What each of the four reads sees of one meeting of `pair`: whether
/// GetMeeting finds it, and how many meetings ListMeetings (by country),
/// the pair stream and the summary count.
async fn reads(app: &TestApp, id: &str, pair: [&str; 2], lsn: Option<&str>) -> (bool, [usize; 3]) {
    let mut client = app.client.clone();
    let found = match client
        .get_meeting(at(pb::GetMeetingRequest { id: id.into() }, lsn))
        .await
    {
        Ok(_) => true,
        Err(status) if status.code() == Code::NotFound => false,
        Err(status) => panic!("GetMeeting failed: {status:?}"),
    };
    let listed = client
        .list_meetings(at(
            pb::ListMeetingsRequest {
                country_code: pair[0].into(),
                ..Default::default()
            },
            lsn,
        ))
        .await
        .unwrap()
        .into_inner()
        .meetings
        .len();
    let mut stream = client
        .stream_meetings_by_country_pair(at(
            pb::StreamMeetingsByCountryPairRequest {
                country_a: pair[0].into(),
                country_b: pair[1].into(),
                ..Default::default()
            },
            lsn,
        ))
        .await
        .unwrap()
        .into_inner();
    let mut streamed = 0;
    while stream.message().await.unwrap().is_some() {
        streamed += 1;
    }
    let summarised = client
        .get_country_pair_summary(at(
            pb::GetCountryPairSummaryRequest {
                country_a: pair[0].into(),
                country_b: pair[1].into(),
                ..Default::default()
            },
            lsn,
        ))
        .await
        .unwrap()
        .into_inner()
        .meeting_count as usize;
    (found, [listed, streamed, summarised])
}

/// With the replica's replay paused, a new meeting of `pair` is missed by
/// every read without a position (the replica answered) and seen by every
/// read at the write's (the primary answered, after the wait). Replay is
/// left paused.
async fn a_new_meeting_is_missed_by_the_paused_replica(
    app: &TestApp,
    replica: &EmbeddedPostgres,
    date: &str,
    pair: [&str; 2],
) -> pb::Meeting {
    replay(replica, false).await;
    let (m, lsn) = create(app, date, pair).await;
    assert_eq!(reads(app, &m.id, pair, None).await, (false, [0, 0, 0]));
    assert_eq!(reads(app, &m.id, pair, Some(&lsn)).await, (true, [1, 1, 1]));
    m
}

#[tokio::test]
async fn reads_go_to_the_replica_and_see_the_callers_own_writes() {
    let mut cluster = cluster().await;
    let app = serve(&cluster, 60_000).await;
    until_replica(&app, ServingStatus::Serving).await;

    let m = a_new_meeting_is_missed_by_the_paused_replica(
        &app,
        &cluster.replica,
        "2022-05-05",
        ["AZ", "JP"],
    )
    .await;

    // Replaying again, the replica catches up and serves the meeting.
    replay(&cluster.replica, true).await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            reads(&app, &m.id, ["AZ", "JP"], None).await == (true, [1, 1, 1])
        })
        .await
    );

    // Writers that read their own writes at once, each on a pair of its own.
    let writers = ["FR", "DE", "IT", "ES"].map(|country| {
        let app = &app;
        async move {
            for n in 1..=12 {
                let (m, lsn) = create(app, &format!("2001-01-{n:02}"), ["US", country]).await;
                // ListMeetings by "US" sees every writer's meetings: only
                // the pair's own counts are exact.
                let (found, [_, streamed, summarised]) =
                    reads(app, &m.id, ["US", country], Some(&lsn)).await;
                assert_eq!(
                    (found, streamed, summarised),
                    (true, n, n),
                    "{country} #{n}"
                );
            }
        }
    });
    futures_util::future::join_all(writers).await;

    // A stopped replica: reads go on, from the primary, from the first one.
    cluster.replica.kill_immediately().await;
    let (m2, _) = create(&app, "2023-01-01", ["AZ", "TR"]).await;
    assert_eq!(
        reads(&app, &m2.id, ["AZ", "TR"], None).await,
        (true, [2, 1, 1])
    );
    until_replica(&app, ServingStatus::NotServing).await;
    assert_eq!(
        reads(&app, &m2.id, ["AZ", "TR"], None).await,
        (true, [2, 1, 1])
    );

    // Restarted, it takes reads back: paused again, it misses what is new.
    cluster.replica.restart().await.unwrap();
    until_replica(&app, ServingStatus::Serving).await;
    a_new_meeting_is_missed_by_the_paused_replica(
        &app,
        &cluster.replica,
        "2024-01-01",
        ["GE", "AM"],
    )
    .await;
    replay(&cluster.replica, true).await;
}

#[tokio::test]
async fn a_replica_that_falls_behind_is_skipped_until_it_catches_up() {
    let cluster = cluster().await;
    let app = serve(&cluster, 300).await;
    until_replica(&app, ServingStatus::Serving).await;

    replay(&cluster.replica, false).await;
    let (m, _) = create(&app, "2022-05-05", ["AZ", "JP"]).await;
    // Past the bound, the primary answers: the new meeting is seen.
    until_replica(&app, ServingStatus::NotServing).await;
    assert_eq!(
        reads(&app, &m.id, ["AZ", "JP"], None).await,
        (true, [1, 1, 1])
    );

    replay(&cluster.replica, true).await;
    until_replica(&app, ServingStatus::Serving).await;
    assert_eq!(
        reads(&app, &m.id, ["AZ", "JP"], None).await,
        (true, [1, 1, 1])
    );
}

#[tokio::test]
async fn a_malformed_read_position_is_refused_and_named() {
    let app = crate::helpers::spawn_app().await;
    let read_at = |position: String| {
        let mut client = app.client.clone();
        async move {
            client
                .get_meeting(at(
                    pb::GetMeetingRequest {
                        id: "0190c0a8-0000-7000-8000-000000000001".into(),
                    },
                    Some(&position),
                ))
                .await
                .unwrap_err()
        }
    };
    let status = read_at("yesterday".into()).await;
    let details = assert_error(&status, Code::InvalidArgument, "INVALID_REQUEST");
    assert_eq!(
        crate::helpers::violated_fields(&details),
        ["x-meetings-min-lsn"]
    );
    // A long value is quoted short: the status stays well under the 8 KiB
    // of metadata that C-core clients accept.
    let status = read_at("x".repeat(5_000)).await;
    let details = assert_error(&status, Code::InvalidArgument, "INVALID_REQUEST");
    assert!(status.message().len() < 200, "{}", status.message());
    let described = &details.bad_request().unwrap().field_violations[0].description;
    assert!(described.len() < 200, "{described}");
}

/// Every write answers with its position, and a read at that position
/// sees the write (here from the primary: the replica's replay is paused).
#[tokio::test]
async fn every_write_answers_with_its_position() {
    let cluster = cluster().await;
    let app = serve(&cluster, 60_000).await;
    until_replica(&app, ServingStatus::Serving).await;
    replay(&cluster.replica, false).await;
    let mut client = app.client.clone();
    let (a, _) = create(&app, "2022-05-05", ["AZ", "JP"]).await;
    let (b, _) = create(&app, "2022-05-06", ["AZ", "JP"]).await;

    let imported = client
        .import_meetings(tokio_stream::iter([pb::ImportMeetingsRequest {
            meeting: Some(meeting("2022-05-07", &["AZ", "JP"])),
            ..Default::default()
        }]))
        .await
        .unwrap();
    let lsn = position(imported.metadata());
    assert_eq!(
        reads(&app, &a.id, ["AZ", "JP"], Some(&lsn)).await.1,
        [3, 3, 3]
    );

    let mut changed = a.clone();
    changed.summary = "Talks on energy.".into();
    let updated = client
        .update_meeting(pb::UpdateMeetingRequest {
            meeting: Some(changed),
            update_mask: None,
        })
        .await
        .unwrap();
    let lsn = position(updated.metadata());
    let seen = client
        .get_meeting(at(pb::GetMeetingRequest { id: a.id.clone() }, Some(&lsn)))
        .await
        .unwrap()
        .into_inner()
        .meeting
        .unwrap();
    assert_eq!(seen.summary, "Talks on energy.");

    let merged = client
        .merge_meetings(pb::MergeMeetingsRequest {
            target_id: a.id.clone(),
            source_ids: vec![b.id.clone()],
        })
        .await
        .unwrap();
    let lsn = position(merged.metadata());
    assert_eq!(
        reads(&app, &a.id, ["AZ", "JP"], Some(&lsn)).await.1,
        [2, 2, 2]
    );

    let deleted = client
        .delete_meeting(pb::DeleteMeetingRequest {
            id: a.id.clone(),
            etag: String::new(),
        })
        .await
        .unwrap();
    let lsn = position(deleted.metadata());
    assert_eq!(
        reads(&app, &a.id, ["AZ", "JP"], Some(&lsn)).await,
        (false, [1, 1, 1])
    );
    replay(&cluster.replica, true).await;
}

/// A replica that stops answering without closing its connections (as
/// behind a network partition): reads are given up on it and served by the
/// primary, within a bounded time, and it serves again once it answers.
#[tokio::test]
async fn a_replica_that_stops_answering_does_not_hold_reads() {
    let cluster = cluster().await;
    let app = serve(&cluster, 60_000).await;
    until_replica(&app, ServingStatus::Serving).await;
    let (m, _) = create(&app, "2022-05-05", ["AZ", "JP"]).await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            reads(&app, &m.id, ["AZ", "JP"], None).await == (true, [1, 1, 1])
        })
        .await
    );

    cluster.replica.freeze(true);
    let mut probe = PgConnectOptions::clone(&cluster.replica.connect_options());
    probe = probe.database("postgres");
    assert!(
        tokio::time::timeout(
            Duration::from_millis(500),
            PgConnection::connect_with(&probe)
        )
        .await
        .is_err(),
        "a frozen server answered"
    );
    let started = std::time::Instant::now();
    let seen = tokio::time::timeout(
        Duration::from_secs(20),
        reads(&app, &m.id, ["AZ", "JP"], None),
    )
    .await;
    let waited = started.elapsed();
    cluster.replica.freeze(false);
    assert_eq!(
        seen.expect("reads are not held by a frozen replica"),
        (true, [1, 1, 1]),
        "answered after {waited:?}"
    );
    until_replica(&app, ServingStatus::Serving).await;
}

/// An import stopped part-way (here by a message over the size limit) has
/// stored the batches before it: its status carries the position to read
/// them at.
#[tokio::test]
async fn a_stopped_import_answers_with_the_position_of_what_it_stored() {
    let cluster = cluster().await;
    let settings = Settings {
        max_request_bytes: 64 * 1024,
        ..Settings::default()
    };
    let app = serve_with(&cluster, 60_000, settings).await;
    until_replica(&app, ServingStatus::Serving).await;
    replay(&cluster.replica, false).await;
    let batch = meetings::api::IMPORT_BATCH;
    let mut requests: Vec<pb::ImportMeetingsRequest> = many(batch + 1)
        .into_iter()
        .map(|m| pb::ImportMeetingsRequest {
            meeting: Some(m),
            ..Default::default()
        })
        .collect();
    let mut oversized = meeting("2022-05-06", &["AZ", "JP"]);
    oversized.summary = "x".repeat(100 * 1024);
    requests.push(pb::ImportMeetingsRequest {
        meeting: Some(oversized),
        ..Default::default()
    });
    let status = app
        .client
        .clone()
        .import_meetings(tokio_stream::iter(requests))
        .await
        .unwrap_err();
    let lsn = position(status.metadata());
    let summary = app
        .client
        .clone()
        .get_country_pair_summary(at(
            pb::GetCountryPairSummaryRequest {
                country_a: "AZ".into(),
                country_b: "JP".into(),
                ..Default::default()
            },
            Some(&lsn),
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(
        summary.meeting_count >= batch as u64,
        "{} meetings seen at the stop's position",
        summary.meeting_count
    );
    replay(&cluster.replica, true).await;
}
