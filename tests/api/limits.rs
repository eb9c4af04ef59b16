//! Limits: message size, concurrent calls, deadlines.

use std::time::Duration;

use meetings::pb;
use tonic::Code;

use crate::helpers::{Settings, assert_error, meeting, spawn_app_with};

#[tokio::test]
async fn an_oversized_request_is_refused_and_the_server_keeps_serving() {
    let app = spawn_app_with(Settings {
        max_request_bytes: 64 * 1024,
        ..Settings::default()
    })
    .await;
    let mut m = meeting("2022-05-05", &["AZ", "JP"]);
    m.summary = "x".repeat(100 * 1024);
    let status = app.try_create(m).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    // The same inside a client stream.
    let mut big = meeting("2022-05-05", &["AZ", "JP"]);
    big.summary = "x".repeat(100 * 1024);
    let requests = vec![
        pb::ImportMeetingsRequest {
            meeting: Some(meeting("2022-05-05", &["AZ", "JP"])),
            request_id: String::new(),
            ..Default::default()
        },
        pb::ImportMeetingsRequest {
            meeting: Some(big),
            request_id: String::new(),
            ..Default::default()
        },
    ];
    let status = app
        .client
        .clone()
        .import_meetings(tokio_stream::iter(requests))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    app.create(meeting("2022-05-05", &["AZ", "JP"])).await;
}

#[tokio::test]
async fn calls_beyond_the_limit_are_resource_exhausted_not_queued() {
    let app = spawn_app_with(Settings {
        max_concurrent_calls: 2,
        // The server's limit, not a connection's or caller's share, is
        // under test.
        max_calls_per_connection: Some(2),
        max_calls_per_caller: Some(2),
        ..Settings::default()
    })
    .await;
    // Two open watch streams take both slots.
    let mut open = Vec::new();
    for _ in 0..2 {
        open.push(
            app.client
                .clone()
                .watch_meetings(pb::WatchMeetingsRequest::default())
                .await
                .unwrap()
                .into_inner(),
        );
    }
    let status = app
        .client
        .clone()
        .get_meeting(pb::GetMeetingRequest {
            id: uuid::Uuid::now_v7().to_string(),
        })
        .await
        .unwrap_err();
    assert_error(&status, Code::ResourceExhausted, "TOO_MANY_CALLS");
    // A stream that ends gives its slot back.
    drop(open.pop());
    let freed = crate::helpers::eventually(Duration::from_secs(5), || {
        let mut client = app.client.clone();
        async move {
            let r = client
                .get_meeting(pb::GetMeetingRequest {
                    id: uuid::Uuid::now_v7().to_string(),
                })
                .await;
            matches!(r, Err(s) if s.code() == Code::NotFound)
        }
    })
    .await;
    assert!(freed, "a slot frees when a stream is dropped");
}

#[tokio::test]
async fn a_call_past_the_servers_deadline_is_deadline_exceeded() {
    let app = spawn_app_with(Settings {
        request_timeout_ms: 300,
        ..Settings::default()
    })
    .await;
    let created = app.create(meeting("2022-05-05", &["AZ", "JP"])).await;
    // Hold the meeting's row lock so an update has to wait.
    let tx = crate::helpers::hold_row_lock(&app, &created.id).await;
    let request = tonic::Request::new(pb::UpdateMeetingRequest {
        meeting: Some(pb::Meeting {
            id: created.id.clone(),
            summary: "waits".into(),
            ..Default::default()
        }),
        update_mask: None,
    });
    let started = std::time::Instant::now();
    let status = app
        .client
        .clone()
        .update_meeting(request)
        .await
        .unwrap_err();
    assert_error(&status, Code::DeadlineExceeded, "DEADLINE_EXCEEDED");
    assert!(started.elapsed() < Duration::from_secs(10));
    tx.rollback().await.unwrap();
    // Nothing was changed, and the meeting can be updated now.
    let got = app.get(&created.id).await.unwrap();
    assert_eq!(got.summary, "");
}
