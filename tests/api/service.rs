//! Reflection, health, outages and shutdown.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use clap::Parser;
use meetings::config::{Config, LogFormat};
use meetings::embedded::EmbeddedPostgres;
use meetings::pb;
use meetings::pb::meeting_service_client::MeetingServiceClient;
use meetings::startup::Application;
use sqlx::{ConnectOptions, Connection};
use tokio_stream::StreamExt;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::helpers::{assert_error, eventually, many, meeting, spawn_app};

#[tokio::test]
async fn reflection_v1_and_v1alpha_list_and_describe_the_service() {
    use tonic_reflection::pb::{v1, v1alpha};
    let app = spawn_app().await;

    let mut client = v1::server_reflection_client::ServerReflectionClient::new(app.channel().await);
    let requests = [
        v1::server_reflection_request::MessageRequest::ListServices(String::new()),
        v1::server_reflection_request::MessageRequest::FileContainingSymbol(
            "meetings.v1.MeetingService".into(),
        ),
        v1::server_reflection_request::MessageRequest::FileContainingSymbol(
            "google.rpc.BadRequest".into(),
        ),
    ]
    .map(|r| v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(r),
    });
    let mut answers = client
        .server_reflection_info(tokio_stream::iter(requests))
        .await
        .unwrap()
        .into_inner();
    let Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        answers.next().await.unwrap().unwrap().message_response
    else {
        panic!("expected a service list")
    };
    let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
    for expected in ["meetings.v1.MeetingService", "grpc.health.v1.Health"] {
        assert!(names.contains(&expected), "{expected} listed in {names:?}");
    }
    for _ in 0..2 {
        let answer = answers.next().await.unwrap().unwrap().message_response;
        assert!(
            matches!(answer, Some(v1::server_reflection_response::MessageResponse::FileDescriptorResponse(ref f)) if !f.file_descriptor_proto.is_empty()),
            "symbol resolves: {answer:?}"
        );
    }

    // grpcurl before 1.8.8 speaks only v1alpha.
    let mut old =
        v1alpha::server_reflection_client::ServerReflectionClient::new(app.channel().await);
    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            v1alpha::server_reflection_request::MessageRequest::ListServices(String::new()),
        ),
    };
    let mut answers = old
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let answer = answers.next().await.unwrap().unwrap().message_response;
    assert!(format!("{answer:?}").contains("meetings.v1.MeetingService"));
}

#[tokio::test]
async fn health_reports_serving() {
    let app = spawn_app().await;
    let mut health = HealthClient::new(app.channel().await);
    for service in ["", "meetings.v1.MeetingService"] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "{service:?}");
    }
}

/// A server on a database this test can stop: an embedded PostgreSQL of the
/// test's own, reached by URL as any external database.
async fn app_on_own_database() -> (Application, EmbeddedPostgres, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let pg = EmbeddedPostgres::start(dir.path(), &[]).await.unwrap();
    let mut config = Config::parse_from(["meetings"]);
    config.listen_addr = "127.0.0.1:0".parse().unwrap();
    config.database_url = Some(pg.connect_options().to_url_lossy().to_string());
    config.data_dir = None;
    config.db_pool_size = 4;
    config.db_acquire_timeout_ms = 500;
    config.health_interval_ms = 100;
    config.shutdown_timeout_ms = 2000;
    config.log_format = LogFormat::Text;
    (Application::build(config).await.unwrap(), pg, dir)
}

#[tokio::test]
async fn database_down_means_unavailable_quickly_and_not_serving() {
    let (app, pg, _dir) = app_on_own_database().await;
    let addr = app.local_addr();
    let server = tokio::spawn(app.run_until_stopped(std::future::pending()));
    let mut client = MeetingServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let created = client
        .create_meeting(pb::CreateMeetingRequest {
            meeting: Some(meeting("2022-05-05", &["AZ", "JP"])),
            request_id: String::new(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .meeting
        .unwrap();

    pg.stop().await;

    let started = tokio::time::Instant::now();
    let status = client
        .get_meeting(pb::GetMeetingRequest {
            id: created.id.clone(),
        })
        .await
        .unwrap_err();
    assert_error(&status, Code::Unavailable, "DATABASE_UNAVAILABLE");
    // Within about the acquire timeout (500 ms here), not a hang.
    assert!(
        started.elapsed() < Duration::from_millis(2_000),
        "answered within about the acquire timeout, took {:?}",
        started.elapsed()
    );
    assert!(
        !status.message().contains("sql"),
        "no internals: {}",
        status.message()
    );
    let started = tokio::time::Instant::now();
    let status = client
        .create_meeting(pb::CreateMeetingRequest {
            meeting: Some(meeting("2022-05-05", &["AZ", "JP"])),
            request_id: String::new(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_error(&status, Code::Unavailable, "DATABASE_UNAVAILABLE");
    assert!(started.elapsed() < Duration::from_millis(2_000));

    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let health = HealthClient::new(channel);
    let not_serving = eventually(Duration::from_secs(10), || {
        let mut health = health.clone();
        async move {
            health
                .check(HealthCheckRequest {
                    service: "meetings.v1.MeetingService".into(),
                })
                .await
                .is_ok_and(|r| r.into_inner().status == ServingStatus::NotServing as i32)
        }
    })
    .await;
    assert!(not_serving, "health turns NOT_SERVING");
    server.abort();
}

/// SIGTERM to the service's own process: open streams (a pair stream, a
/// health watch) end with UNAVAILABLE / SHUTTING_DOWN after what was sent,
/// health turns NOT_SERVING first, an in-flight unary call completes, an
/// import stops with whole batches stored and says where to resume, and
/// the process exits within --shutdown-timeout-ms without forcing calls
/// closed.
#[tokio::test]
async fn sigterm_drains_calls_streams_and_imports_within_the_timeout() {
    use crate::helpers::{ServerProcess, hold_row_lock};
    let app = spawn_app().await;
    // 15 MB of meetings: more than the client's HTTP/2 windows hold, so the
    // stream is still open when the signal comes.
    app.import(
        many(3_000)
            .into_iter()
            .map(|mut m| {
                m.summary = "A long report of the talks. ".repeat(180);
                pb::ImportMeetingsRequest {
                    meeting: Some(m),
                    request_id: String::new(),
                    ..Default::default()
                }
            })
            .collect(),
    )
    .await;
    let every: Vec<String> = app
        .stream(pb::StreamMeetingsByCountryPairRequest {
            country_a: "AZ".into(),
            country_b: "JP".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    let target = app.create(meeting("2023-01-01", &["FR", "DE"])).await;
    let url = app.pool.connect_options().to_url_lossy().to_string();
    let mut server = ServerProcess::start(
        &url,
        &["--shutdown-timeout-ms".as_ref(), "5000".as_ref()],
        "info",
    )
    .await;
    let channel = server.channel().await.unwrap();
    let client = MeetingServiceClient::new(channel.clone());

    let mut health = HealthClient::new(channel.clone())
        .watch(HealthCheckRequest {
            service: "meetings.v1.MeetingService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let first = health.message().await.unwrap().unwrap().status;
    assert_eq!(first, ServingStatus::Serving as i32);

    let mut stream = client
        .clone()
        .stream_meetings_by_country_pair(pb::StreamMeetingsByCountryPairRequest {
            country_a: "AZ".into(),
            country_b: "JP".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut received = Vec::new();
    while received.len() < 100 {
        received.push(stream.message().await.unwrap().unwrap().meeting.unwrap().id);
    }

    // A unary call in flight: an update waiting for a row lock.
    let lock = hold_row_lock(&app, &target.id).await;
    let update = {
        let mut client = client.clone();
        let id = target.id.clone();
        tokio::spawn(async move {
            client
                .update_meeting(pb::UpdateMeetingRequest {
                    meeting: Some(pb::Meeting {
                        id,
                        summary: "updated while stopping".into(),
                        ..Default::default()
                    }),
                    update_mask: None,
                })
                .await
        })
    };

    // An import in flight: 1,200 meetings sent, the stream kept open.
    let import_requests: Vec<pb::ImportMeetingsRequest> = (0..1_200)
        .map(|i| pb::ImportMeetingsRequest {
            meeting: Some(meeting("2021-03-03", &["DE", "PL"])),
            request_id: format!("shutdown-{i}"),
            ..Default::default()
        })
        .collect();
    let (tx, rx) = tokio::sync::mpsc::channel(2_000);
    for r in &import_requests {
        tx.send(r.clone()).await.unwrap();
    }
    let import = {
        let mut client = client.clone();
        tokio::spawn(async move {
            client
                .import_meetings(tokio_stream::wrappers::ReceiverStream::new(rx))
                .await
        })
    };
    let imported = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM meetings WHERE request_id LIKE 'shutdown-%'",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap()
    };
    assert!(
        eventually(Duration::from_secs(20), || async {
            imported().await == 1_000
        })
        .await,
        "two whole batches are stored while the stream stays open"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;

    let signalled = std::time::Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(server.child.id().unwrap() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    lock.rollback().await.unwrap();

    let updated = update
        .await
        .unwrap()
        .expect("the in-flight update completes");
    assert_eq!(
        updated.into_inner().meeting.unwrap().summary,
        "updated while stopping"
    );

    // The stream: the records already sent, in order, then SHUTTING_DOWN.
    let end = loop {
        match stream.message().await {
            Ok(Some(m)) => received.push(m.meeting.unwrap().id),
            Ok(None) => panic!(
                "the stream ended without a status after {} records; log:\n{}",
                received.len(),
                std::fs::read_to_string(server.log.path()).unwrap()
            ),
            Err(status) => break status,
        }
    };
    assert_error(&end, Code::Unavailable, "SHUTTING_DOWN");
    assert!(received.len() < every.len(), "the stream was cut");
    assert_eq!(received, every[..received.len()], "what was sent, in order");

    // Health: NOT_SERVING, then the watch ends.
    let mut statuses = Vec::new();
    let health_end = loop {
        match health.message().await {
            Ok(Some(update)) => statuses.push(update.status),
            Ok(None) => break None,
            Err(status) => break Some(status),
        }
    };
    assert_eq!(statuses.last(), Some(&(ServingStatus::NotServing as i32)));
    assert_eq!(health_end.map(|s| s.code()), Some(Code::Unavailable));

    // The import: whole batches only, and where to resume.
    let status = import.await.unwrap().unwrap_err();
    let details = assert_error(&status, Code::Unavailable, "SHUTTING_DOWN");
    let info = details.error_info().unwrap();
    assert_eq!(info.metadata["created_count"], "1000");
    assert_eq!(info.metadata["resume_index"], "1000");
    drop(tx);

    let exit = tokio::time::timeout(Duration::from_secs(10), server.child.wait())
        .await
        .expect("the process exits")
        .unwrap();
    assert!(exit.success(), "a clean exit: {exit:?}");
    assert!(
        signalled.elapsed() < Duration::from_secs(5),
        "stopped within --shutdown-timeout-ms, took {:?}",
        signalled.elapsed()
    );
    let log = std::fs::read_to_string(server.log.path()).unwrap();
    assert!(
        !log.contains("calls still open after the shutdown timeout"),
        "no call was forced closed"
    );
    assert_eq!(imported().await, 1_000, "whole batches only");

    // The retry of the whole import, with the same request_ids: exact.
    let report = app.import(import_requests).await;
    assert_eq!((report.created_count, report.duplicate_count), (200, 1_000));
    assert_eq!(imported().await, 1_200);
}

/// Health of the meetings service, as the health service reports it.
async fn serving(addr: std::net::SocketAddr) -> Option<i32> {
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .ok()?
        .connect()
        .await
        .ok()?;
    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: "meetings.v1.MeetingService".into(),
        })
        .await
        .ok()
        .map(|r| r.into_inner().status)
}

#[tokio::test]
async fn no_acknowledged_create_is_lost_when_the_database_crashes_twice() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let (app, mut pg, _dir) = app_on_own_database().await;
    let addr = app.local_addr();
    let check_options = pg.connect_options();
    let server = tokio::spawn(app.run_until_stopped(std::future::pending()));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut client = MeetingServiceClient::connect(format!("http://{addr}"))
                    .await
                    .unwrap();
                let (mut acknowledged, mut unavailable, mut unexpected) =
                    (Vec::new(), 0, Vec::new());
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let request = pb::CreateMeetingRequest {
                        meeting: Some(meeting("2022-05-05", &["AZ", "JP"])),
                        request_id: format!("writer-{w}-{i}"),
                        ..Default::default()
                    };
                    match client.create_meeting(request).await {
                        Ok(r) => acknowledged.push((
                            r.into_inner().meeting.unwrap().id,
                            std::time::Instant::now(),
                        )),
                        Err(s) if s.code() == Code::Unavailable => {
                            unavailable += 1;
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                        Err(s) => unexpected.push(format!("{:?}: {}", s.code(), s.message())),
                    }
                }
                (acknowledged, unavailable, unexpected)
            })
        })
        .collect();

    // When each crash began and each restart was serving again: every
    // phase between them must see acknowledgements.
    let mut crashes = Vec::new();
    let mut restarts = Vec::new();
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        crashes.push(std::time::Instant::now());
        pg.kill_immediately().await;
        let down = eventually(Duration::from_secs(10), || async {
            serving(addr).await == Some(ServingStatus::NotServing as i32)
        })
        .await;
        assert!(down, "health turns NOT_SERVING while the database is down");
        pg.restart().await.unwrap();
        let up = eventually(Duration::from_secs(20), || async {
            serving(addr).await == Some(ServingStatus::Serving as i32)
        })
        .await;
        assert!(
            up,
            "health comes back by itself, without a restart of the service"
        );
        restarts.push(std::time::Instant::now());
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    stop.store(true, Ordering::Relaxed);

    let (mut acknowledged, mut unavailable, mut unexpected) = (Vec::new(), 0, Vec::new());
    for w in writers {
        let (a, u, x) = w.await.unwrap();
        acknowledged.extend(a);
        unavailable += u;
        unexpected.extend(x);
    }
    assert!(!server.is_finished(), "the server never stopped");
    assert!(
        unexpected.is_empty(),
        "only UNAVAILABLE during the outages: {unexpected:?}"
    );
    assert!(unavailable > 0, "the outages were seen");
    assert!(
        acknowledged.len() > 10,
        "writes went through around the outages"
    );
    let in_phase = |from: Option<std::time::Instant>, to: Option<std::time::Instant>| {
        acknowledged
            .iter()
            .filter(|(_, at)| from.is_none_or(|f| *at > f) && to.is_none_or(|t| *at < t))
            .count()
    };
    assert!(
        in_phase(None, Some(crashes[0])) > 0,
        "acknowledged before the first crash"
    );
    assert!(
        in_phase(Some(restarts[0]), Some(crashes[1])) > 0,
        "acknowledged between the first restart and the second crash"
    );
    assert!(
        in_phase(Some(restarts[1]), None) > 0,
        "acknowledged after the second restart"
    );
    let acknowledged: Vec<String> = acknowledged.into_iter().map(|(id, _)| id).collect();

    let mut conn = sqlx::PgConnection::connect_with(&check_options)
        .await
        .unwrap();
    let ids: Vec<uuid::Uuid> = acknowledged
        .iter()
        .map(|id| uuid::Uuid::parse_str(id).unwrap())
        .collect();
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM meetings WHERE id = ANY($1)")
        .bind(&ids)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        stored as usize,
        ids.len(),
        "every acknowledged meeting is stored"
    );

    // The change feed has every acknowledged meeting once: a watcher from
    // the start reads up to the newest number once all events are numbered.
    assert!(
        eventually(Duration::from_secs(20), || {
            let options = check_options.clone();
            async move {
                let mut conn = sqlx::PgConnection::connect_with(&options).await.unwrap();
                let pending: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM meeting_events WHERE sequence IS NULL",
                )
                .fetch_one(&mut conn)
                .await
                .unwrap();
                pending == 0
            }
        })
        .await,
        "the sequencer numbers every committed event"
    );
    let newest: i64 = sqlx::query_scalar("SELECT max(sequence) FROM meeting_events")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let mut watch = MeetingServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap()
        .watch_meetings(pb::WatchMeetingsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let mut created = std::collections::HashMap::<String, usize>::new();
    let mut last = 0;
    while last < newest as u64 {
        let event = tokio::time::timeout(Duration::from_secs(10), watch.message())
            .await
            .expect("events up to the newest arrive")
            .unwrap()
            .unwrap()
            .event
            .unwrap();
        assert!(event.sequence > last, "numbers only grow");
        last = event.sequence;
        if event.kind == pb::MeetingEventKind::Created as i32 {
            *created.entry(event.meeting.unwrap().id).or_default() += 1;
        }
    }
    for id in &acknowledged {
        assert_eq!(
            created.get(id),
            Some(&1),
            "meeting {id} is in the feed once"
        );
    }
    assert!(created.values().all(|n| *n == 1), "no meeting twice");
    server.abort();
}
