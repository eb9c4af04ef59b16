//! The admin HTTP listener: /metrics scraped during real calls (the counts
//! equal the calls made, and the text passes Prometheus' own parser),
//! /healthz and /readyz, and the liveness name of gRPC health.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use meetings::pb;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::metadata::MetadataValue;

use crate::helpers::{TestApp, meeting, spawn_app};

/// GET `path` over HTTP/1.1: the status code and the body.
async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut response = String::new();
    tokio::time::timeout(
        Duration::from_secs(10),
        stream.read_to_string(&mut response),
    )
    .await
    .expect("the admin listener answers")
    .unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("an HTTP status line");
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// The value of the sample `name{labels}` in exposition text (labels as
/// the exporter writes them, sorted by name), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}

/// Checks `text` with Prometheus' own parser of the exposition format
/// (Python's prometheus_client, installed by .ci/run).
fn parse_with_prometheus_client(text: &str) {
    let mut child = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys\n\
             from prometheus_client.parser import text_string_to_metric_families\n\
             families = list(text_string_to_metric_families(sys.stdin.read()))\n\
             assert families, 'no metric families'\n\
             print(len(families))",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client parses /metrics (pip install prometheus_client): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn scrape(app: &TestApp) -> String {
    let (status, text) = http_get(app.admin, "/metrics").await;
    assert_eq!(status, 200);
    text
}

#[tokio::test]
async fn metrics_count_the_calls_made_by_method_code_and_outcome() {
    let app = spawn_app().await;
    let mut created = Vec::new();
    for day in 1..=3 {
        created.push(
            app.create(meeting(&format!("2022-05-0{day}"), &["AZ", "JP"]))
                .await,
        );
    }
    app.get(&created[0].id).await.unwrap();
    app.get(&uuid::Uuid::now_v7().to_string())
        .await
        .unwrap_err();
    let streamed = app
        .stream(pb::StreamMeetingsByCountryPairRequest {
            country_a: "AZ".into(),
            country_b: "JP".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(streamed.len(), 3);
    let mut bad = meeting("2022-05-09", &["AZ", "JP"]);
    bad.date = "not a date".into();
    let report = app
        .import(
            [
                meeting("2022-06-01", &["DE", "FR"]),
                bad,
                meeting("2022-06-02", &["DE", "FR"]),
            ]
            .into_iter()
            .map(|m| pb::ImportMeetingsRequest {
                meeting: Some(m),
                ..Default::default()
            })
            .collect(),
        )
        .await;
    assert_eq!((report.created_count, report.rejected_count), (2, 1));
    let mut watcher = app
        .client
        .clone()
        .watch_meetings(pb::WatchMeetingsRequest::default())
        .await
        .unwrap()
        .into_inner();
    // The watcher gets the five creates' events.
    for _ in 0..5 {
        tokio::time::timeout(Duration::from_secs(10), watcher.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }

    let text = scrape(&app).await;
    let count =
        |series: &str| sample(&text, series).unwrap_or_else(|| panic!("{series} in\n{text}"));
    assert_eq!(
        count(r#"meetings_grpc_requests_total{caller="-",code="OK",method="CreateMeeting"}"#),
        3.0
    );
    assert_eq!(
        count(r#"meetings_grpc_requests_total{caller="-",code="OK",method="GetMeeting"}"#),
        1.0
    );
    assert_eq!(
        count(r#"meetings_grpc_requests_total{caller="-",code="NOT_FOUND",method="GetMeeting"}"#),
        1.0
    );
    assert_eq!(
        count(r#"meetings_grpc_request_duration_seconds_count{code="OK",method="CreateMeeting"}"#),
        3.0
    );
    assert_eq!(
        count(r#"meetings_grpc_stream_messages_sent_total{method="StreamMeetingsByCountryPair"}"#),
        3.0
    );
    assert_eq!(
        count(r#"meetings_grpc_stream_messages_sent_total{method="WatchMeetings"}"#),
        5.0
    );
    assert_eq!(
        count(r#"meetings_import_records_total{outcome="created"}"#),
        2.0
    );
    assert_eq!(
        count(r#"meetings_import_records_total{outcome="rejected"}"#),
        1.0
    );
    // The watcher is still connected: one call in flight, one stream open.
    assert_eq!(count("meetings_changefeed_watchers"), 1.0);
    assert_eq!(
        count(r#"meetings_grpc_requests_in_flight{method="WatchMeetings"}"#),
        1.0
    );
    assert_eq!(
        count(r#"meetings_grpc_streams_open{method="WatchMeetings"}"#),
        1.0
    );
    assert!(count("meetings_db_pool_connections") >= 1.0);
    assert!(count("meetings_db_pool_connections_max") >= 1.0);
    parse_with_prometheus_client(&text);

    drop(watcher);
    let mut left = f64::NAN;
    for _ in 0..100 {
        left = sample(&scrape(&app).await, "meetings_changefeed_watchers").unwrap();
        if left == 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(left, 0.0, "a watcher that left is no longer counted");
    let text = scrape(&app).await;
    assert_eq!(
        sample(
            &text,
            r#"meetings_grpc_requests_total{caller="-",code="CANCELLED",method="WatchMeetings"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"meetings_grpc_streams_open{method="WatchMeetings"}"#
        ),
        Some(0.0)
    );
}

#[tokio::test]
async fn metrics_name_the_caller_and_count_refusals() {
    let (app, tokens, _file) =
        crate::helpers::spawn_app_with_tokens(&[("read,write", "news-platform")]).await;
    let token = tokens[0].clone();
    let mut request = tonic::Request::new(pb::ListMeetingsRequest::default());
    let value: MetadataValue<_> = format!("Bearer {token}").parse().unwrap();
    request.metadata_mut().insert("authorization", value);
    app.client.clone().list_meetings(request).await.unwrap();
    app.client
        .clone()
        .list_meetings(pb::ListMeetingsRequest::default())
        .await
        .unwrap_err();
    // A path no service has: counted under `unknown`, never by its name.
    let mut grpc = tonic::client::Grpc::new(app.channel().await);
    grpc.ready().await.unwrap();
    let status = grpc
        .unary::<pb::ListMeetingsRequest, pb::ListMeetingsResponse, _>(
            tonic::Request::new(pb::ListMeetingsRequest::default()),
            http::uri::PathAndQuery::from_static("/meetings.v1.MeetingService/NoSuchMethod"),
            tonic_prost::ProstCodec::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unimplemented);

    let text = scrape(&app).await;
    assert_eq!(
        sample(
            &text,
            r#"meetings_grpc_requests_total{caller="news-platform",code="OK",method="ListMeetings"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"meetings_grpc_requests_total{caller="-",code="UNAUTHENTICATED",method="ListMeetings"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"meetings_rejected_calls_total{reason="UNAUTHENTICATED"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"meetings_grpc_requests_total{caller="-",code="UNIMPLEMENTED",method="unknown"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"meetings_rejected_calls_total{reason="UNKNOWN_METHOD"}"#
        ),
        Some(1.0)
    );
    assert!(!text.contains("NoSuchMethod"), "no made-up method names");
    assert!(!text.contains(&token), "no token in the metrics");
}

#[tokio::test]
async fn healthz_is_alive_and_readyz_follows_the_database_and_migrations() {
    let app = spawn_app().await;
    assert_eq!(http_get(app.admin, "/healthz").await, (200, "ok\n".into()));
    assert_eq!(
        http_get(app.admin, "/readyz").await,
        (200, "ready\n".into())
    );
    // The gRPC health service has the same split.
    let mut health = tonic_health::pb::health_client::HealthClient::new(app.channel().await);
    let liveness = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "liveness".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        liveness.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    // A migration this version knows that the database lacks.
    sqlx::query(
        "DELETE FROM _sqlx_migrations WHERE version = (SELECT max(version) FROM _sqlx_migrations)",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let (status, body) = http_get(app.admin, "/readyz").await;
    assert_eq!(status, 503);
    assert_eq!(body, "not ready: migrations are not all applied\n");
    assert_eq!(http_get(app.admin, "/healthz").await.0, 200);
    assert_eq!(http_get(app.admin, "/nothing-here").await.0, 404);
}

/// A call whose client goes away before the response began (the handler's
/// future is dropped, no response body ever exists) is still counted as
/// ended: the in-flight gauge comes back down. The call is an update
/// waiting for a row lock, which does not read its request body any more
/// and so cannot see the reset itself.
#[tokio::test]
async fn a_call_dropped_before_its_response_leaves_no_gauge_behind() {
    use prost::Message;
    let app = spawn_app().await;
    let stored = app.create(meeting("2022-05-05", &["AZ", "JP"])).await;
    let lock = crate::helpers::hold_row_lock(&app, &stored.id).await;
    let tcp = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let (mut client, connection) = h2::client::handshake(tcp).await.unwrap();
    let connection = tokio::spawn(connection);
    let request = http::Request::post(format!(
        "http://{}/meetings.v1.MeetingService/UpdateMeeting",
        app.addr
    ))
    .header("content-type", "application/grpc")
    .header("te", "trailers")
    .body(())
    .unwrap();
    let body = pb::UpdateMeetingRequest {
        meeting: Some(pb::Meeting {
            id: stored.id.clone(),
            summary: "changed".into(),
            ..Default::default()
        }),
        update_mask: None,
    }
    .encode_to_vec();
    let (response, mut send) = client.send_request(request, false).unwrap();
    send.send_data(bytes::Bytes::from(crate::helpers::grpc_frame(&body)), true)
        .unwrap();
    let in_flight = r#"meetings_grpc_requests_in_flight{method="UpdateMeeting"}"#;
    let seen = sample(&scrape_until(&app, in_flight, 1.0).await, in_flight);
    assert_eq!(seen, Some(1.0), "the update is in flight");

    // The connection closes under it, while it waits for the lock.
    drop((client, response, send));
    connection.abort();
    let text = scrape_until(&app, in_flight, 0.0).await;
    assert_eq!(sample(&text, in_flight), Some(0.0), "{text}");
    assert_eq!(
        sample(
            &text,
            r#"meetings_grpc_requests_total{caller="-",code="CANCELLED",method="UpdateMeeting"}"#
        ),
        Some(1.0),
        "{text}"
    );
    lock.rollback().await.unwrap();
}

/// A unary call whose client closes the connection while its request body
/// is still open is counted as the client's cancel, not as ABORTED (the
/// code of a conflict, which an operator would chase).
#[tokio::test]
async fn a_unary_request_cut_by_its_client_is_counted_cancelled() {
    let app = spawn_app().await;
    let tcp = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let (mut client, connection) = h2::client::handshake(tcp).await.unwrap();
    let connection = tokio::spawn(connection);
    let request = http::Request::post(format!(
        "http://{}/meetings.v1.MeetingService/GetMeeting",
        app.addr
    ))
    .header("content-type", "application/grpc")
    .header("te", "trailers")
    .body(())
    .unwrap();
    let (response, mut send) = client.send_request(request, false).unwrap();
    // Half a frame: the message never completes.
    send.send_data(bytes::Bytes::from_static(&[0, 0, 0, 0, 40, 0x0a]), false)
        .unwrap();
    let in_flight = r#"meetings_grpc_requests_in_flight{method="GetMeeting"}"#;
    let seen = sample(&scrape_until(&app, in_flight, 1.0).await, in_flight);
    assert_eq!(seen, Some(1.0), "the call is in flight");
    drop((client, response, send));
    connection.abort();
    let text = scrape_until(&app, in_flight, 0.0).await;
    assert_eq!(sample(&text, in_flight), Some(0.0), "{text}");
    let counted = |code: &str| {
        sample(
            &text,
            &format!(
                r#"meetings_grpc_requests_total{{caller="-",code="{code}",method="GetMeeting"}}"#
            ),
        )
    };
    assert_eq!(counted("CANCELLED"), Some(1.0), "{text}");
    assert_eq!(counted("ABORTED"), None, "{text}");
}

/// The metrics once the sample `name` reads `value`, or after 4 s of
/// trying (the caller's assertion then shows what it read).
async fn scrape_until(app: &TestApp, name: &str, value: f64) -> String {
    let mut text = String::new();
    for _ in 0..200 {
        text = scrape(app).await;
        if sample(&text, name) == Some(value) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    text
}
