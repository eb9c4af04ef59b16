//! Requests no well-behaved gRPC client sends, straight over HTTP/2: each
//! gets a gRPC error, and the server keeps serving.

use bytes::Bytes;
use http::{HeaderMap, Request};

use crate::helpers::{meeting, spawn_app};

/// Sends one request; returns (HTTP status, grpc-status if any).
async fn raw(
    addr: std::net::SocketAddr,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, Option<String>) {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut client, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(connection);
    let request = Request::post(format!("http://{addr}{path}"))
        .header("content-type", content_type)
        .header("te", "trailers")
        .body(())
        .unwrap();
    let (response, mut send) = client.send_request(request, false).unwrap();
    send.send_data(Bytes::from(body), true).unwrap();
    let response = tokio::time::timeout(std::time::Duration::from_secs(10), response)
        .await
        .expect("an answer, not a hang")
        .unwrap();
    let status = response.status().as_u16();
    let grpc = |h: &HeaderMap| h.get("grpc-status").map(|v| v.to_str().unwrap().to_owned());
    if let Some(code) = grpc(response.headers()) {
        return (status, Some(code));
    }
    let mut body = response.into_body();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.unwrap();
        let _ = body.flow_control().release_capacity(chunk.len());
    }
    let trailers = body.trailers().await.unwrap();
    (status, trailers.as_ref().and_then(grpc))
}

fn frame(declared_len: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8];
    out.extend_from_slice(&declared_len.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// (case, path, content type, body, acceptable grpc-status codes).
type Case = (
    &'static str,
    &'static str,
    &'static str,
    Vec<u8>,
    &'static [&'static str],
);

const CREATE: &str = "/meetings.v1.MeetingService/CreateMeeting";
/// Served by its own codec (stored bytes forwarded): same errors expected.
const GET: &str = "/meetings.v1.MeetingService/GetMeeting";
const GRPC: &str = "application/grpc";

#[tokio::test]
async fn malformed_requests_get_grpc_errors_and_the_server_keeps_serving() {
    let app = spawn_app().await;
    let garbage = [0xff_u8, 0xff, 0xff, 0xff, 0x0f, 0x12, 0x99];
    // The same malformed bodies to CreateMeeting (the generated server) and
    // GetMeeting (served by its own codec, forwarding stored bytes).
    let mut cases: Vec<Case> = Vec::new();
    for path in [CREATE, GET] {
        cases.extend([
            (
                "malformed protobuf",
                path,
                GRPC,
                frame(garbage.len() as u32, &garbage),
                &["13", "3"][..],
            ),
            (
                "truncated frame",
                path,
                GRPC,
                frame(100, &[0x0a, 0x02]),
                &["13", "3", "1", "2"],
            ),
            (
                "half a frame header",
                path,
                GRPC,
                vec![0, 0, 0],
                &["13", "3", "1", "2"],
            ),
            (
                "oversized declared length",
                path,
                GRPC,
                frame(100 * 1024 * 1024, &[]),
                &["8"],
            ),
            (
                "compressed flag without compression",
                path,
                GRPC,
                vec![1, 0, 0, 0, 0],
                &["12", "13", "3"],
            ),
        ]);
    }
    cases.extend([
        (
            "GetMeeting: an empty request (no id)",
            GET,
            GRPC,
            frame(0, &[]),
            &["3"][..],
        ),
        (
            "unknown method",
            "/meetings.v1.MeetingService/Nope",
            GRPC,
            frame(0, &[]),
            &["12"],
        ),
        (
            "unknown service",
            "/nope.v1.Nope/Nope",
            GRPC,
            frame(0, &[]),
            &["12"],
        ),
    ]);
    for (case, path, content_type, body, codes) in cases {
        let (http, grpc) = raw(app.addr, path, content_type, body).await;
        assert_eq!(
            http, 200,
            "{case} ({path}): gRPC errors travel in a 200 response"
        );
        let grpc = grpc.unwrap_or_else(|| panic!("{case} ({path}): no grpc-status"));
        assert!(
            codes.contains(&grpc.as_str()),
            "{case} ({path}): grpc-status {grpc}, expected one of {codes:?}"
        );
    }
    // A non-gRPC content type is refused too (with an HTTP error or a gRPC one).
    let (http, grpc) = raw(app.addr, CREATE, "application/json", b"{}".to_vec()).await;
    assert!(
        http != 200 || grpc.is_some_and(|c| c != "0"),
        "JSON is refused: {http}"
    );

    app.create(meeting("2022-05-05", &["AZ", "JP"])).await;
    assert_eq!(app.count_meetings().await, 1);
}

#[tokio::test]
async fn a_clients_grpc_timeout_is_honoured_with_deadline_exceeded() {
    use prost::Message;
    let app = spawn_app().await;
    let created = app.create(meeting("2022-05-05", &["AZ", "JP"])).await;
    // Hold the row lock so the update waits past the client's deadline.
    let tx = crate::helpers::hold_row_lock(&app, &created.id).await;
    let body = meetings::pb::UpdateMeetingRequest {
        meeting: Some(meetings::pb::Meeting {
            id: created.id.clone(),
            summary: "late".into(),
            ..Default::default()
        }),
        update_mask: None,
    }
    .encode_to_vec();

    // A client that only sends the header and does not enforce it itself.
    let tcp = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let (mut client, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(connection);
    let request = Request::post(format!(
        "http://{}/meetings.v1.MeetingService/UpdateMeeting",
        app.addr
    ))
    .header("content-type", GRPC)
    .header("te", "trailers")
    .header("grpc-timeout", "300m")
    .body(())
    .unwrap();
    let (response, mut send) = client.send_request(request, false).unwrap();
    send.send_data(Bytes::from(frame(body.len() as u32, &body)), true)
        .unwrap();
    let response = tokio::time::timeout(std::time::Duration::from_secs(10), response)
        .await
        .expect("an answer at the deadline, not a hang")
        .unwrap();
    let code = response
        .headers()
        .get("grpc-status")
        .map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(code.as_deref(), Some("4"), "DEADLINE_EXCEEDED");
    tx.rollback().await.unwrap();
    assert_eq!(
        app.get(&created.id).await.unwrap().summary,
        "",
        "the update did not happen"
    );
}
