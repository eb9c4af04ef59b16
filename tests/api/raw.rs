//! Requests no well-behaved gRPC client sends, straight over HTTP/2: each
//! gets a gRPC error, and the server keeps serving.

use bytes::Bytes;
use http::Request;
use prost::Message;
use tonic::Status;
use tonic_types::StatusExt;

use crate::helpers::{meeting, spawn_app};

/// Sends one request; returns the HTTP status and the call's gRPC status
/// (from a trailers-only response or the trailers), if any.
async fn raw(
    addr: std::net::SocketAddr,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, Option<Status>) {
    raw_with(addr, path, &[("content-type", content_type)], body).await
}

async fn raw_with(
    addr: std::net::SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (u16, Option<Status>) {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut client, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(connection);
    let mut request = Request::post(format!("http://{addr}{path}")).header("te", "trailers");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let (response, mut send) = client
        .send_request(request.body(()).unwrap(), false)
        .unwrap();
    send.send_data(Bytes::from(body), true).unwrap();
    let response = tokio::time::timeout(std::time::Duration::from_secs(10), response)
        .await
        .expect("an answer, not a hang")
        .unwrap();
    let status = response.status().as_u16();
    (status, crate::helpers::raw_grpc_status(response).await)
}

/// The ErrorInfo reason of a status (every error carries one).
fn reason(status: &Status) -> String {
    let details = status.get_error_details();
    let info = details
        .error_info()
        .unwrap_or_else(|| panic!("no ErrorInfo in {status:?}"));
    assert_eq!(info.domain, "meetings.v1");
    info.reason.clone()
}

fn frame(declared_len: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8];
    out.extend_from_slice(&declared_len.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// (case, path, body, grpc-status code, ErrorInfo reason).
type Case = (&'static str, &'static str, Vec<u8>, i32, &'static str);

const CREATE: &str = "/meetings.v1.MeetingService/CreateMeeting";
/// Served by its own codec (stored bytes forwarded): same errors expected.
const GET: &str = "/meetings.v1.MeetingService/GetMeeting";
const GRPC: &str = "application/grpc";

/// Bytes no protobuf decoder accepts as each method's request.
fn malformed_messages() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("garbage", vec![0xff_u8, 0xff, 0xff, 0xff, 0x0f, 0x12, 0x99]),
        // Field 1 (a message or a string in both requests) as a varint.
        ("a wrong wire type", vec![0x08, 0x01]),
        // Field 1 says 10 bytes follow; 2 do.
        ("a truncated message", vec![0x0a, 0x0a, 0x41, 0x42]),
        // Field 1 (CreateMeeting: a message whose field 2 is the date;
        // GetMeeting: the id) holding bytes that are not UTF-8.
        (
            "invalid UTF-8 in a string",
            vec![0x0a, 0x04, 0x12, 0x02, 0xc3, 0x28],
        ),
    ]
}

#[tokio::test]
async fn malformed_requests_get_invalid_argument_and_the_server_keeps_serving() {
    let app = spawn_app().await;
    let mut cases: Vec<Case> = Vec::new();
    for path in [CREATE, GET] {
        for (what, bytes) in malformed_messages() {
            cases.push((
                what,
                path,
                frame(bytes.len() as u32, &bytes),
                3,
                "INVALID_REQUEST",
            ));
        }
        cases.extend([
            (
                "a truncated frame",
                path,
                frame(100, &[0x0a, 0x02]),
                3,
                "INVALID_REQUEST",
            ),
            (
                "half a frame header",
                path,
                vec![0, 0, 0],
                3,
                "INVALID_REQUEST",
            ),
            (
                "an oversized declared length",
                path,
                frame(100 * 1024 * 1024, &[]),
                8,
                "MESSAGE_TOO_LARGE",
            ),
            (
                "a compressed flag without an encoding",
                path,
                vec![1, 0, 0, 0, 0],
                3,
                "INVALID_REQUEST",
            ),
        ]);
    }
    cases.extend([
        (
            "GetMeeting: an empty request (no id)",
            GET,
            frame(0, &[]),
            3,
            "INVALID_REQUEST",
        ),
        (
            "an unknown method",
            "/meetings.v1.MeetingService/Nope",
            frame(0, &[]),
            12,
            "UNKNOWN_METHOD",
        ),
        (
            "an unknown service",
            "/nope.v1.Nope/Nope",
            frame(0, &[]),
            12,
            "UNKNOWN_METHOD",
        ),
        (
            // Open in the auth table; the health service answers it
            // UNIMPLEMENTED itself, and the edge adds ErrorInfo.
            "a method the health service does not implement",
            "/grpc.health.v1.Health/List",
            frame(0, &[]),
            12,
            "UNKNOWN_METHOD",
        ),
        (
            "no request message at all",
            GET,
            Vec::new(),
            3,
            "INVALID_REQUEST",
        ),
    ]);
    for (case, path, body, code, expected) in cases {
        let (http, grpc) = raw(app.addr, path, GRPC, body).await;
        assert_eq!(
            http, 200,
            "{case} ({path}): gRPC errors travel in a 200 response"
        );
        let grpc = grpc.unwrap_or_else(|| panic!("{case} ({path}): no grpc-status"));
        assert_eq!(grpc.code() as i32, code, "{case} ({path}): {grpc:?}");
        assert_eq!(reason(&grpc), expected, "{case} ({path})");
        assert!(
            grpc.message().len() < 200 && !grpc.message().contains("UTF-8"),
            "{case} ({path}): a short message without decoder internals: {:?}",
            grpc.message()
        );
        // The message names what is wrong: the framing, the compression or
        // the message.
        let names = match case {
            "a truncated frame" | "half a frame header" => "ends inside a message frame",
            "a compressed flag without an encoding" => "has no grpc-encoding",
            "no request message at all" => "has no message",
            _ => "",
        };
        assert!(
            grpc.message().contains(names),
            "{case} ({path}): {:?}",
            grpc.message()
        );
    }
    // A non-gRPC content type is refused too (with an HTTP error or a gRPC one).
    let (http, grpc) = raw(app.addr, CREATE, "application/json", b"{}".to_vec()).await;
    assert!(
        http != 200 || grpc.is_some_and(|s| s.code() != tonic::Code::Ok),
        "JSON is refused: {http}"
    );

    app.create(meeting("2022-05-05", &["AZ", "JP"])).await;
    assert_eq!(app.count_meetings().await, 1);
}

#[tokio::test]
async fn an_unsupported_compression_is_unimplemented_with_error_info() {
    let app = spawn_app().await;
    let body = meetings::pb::GetMeetingRequest {
        id: uuid::Uuid::now_v7().to_string(),
    }
    .encode_to_vec();
    let mut framed = frame(body.len() as u32, &body);
    framed[0] = 1;
    let (_, grpc) = raw_with(
        app.addr,
        GET,
        &[("content-type", GRPC), ("grpc-encoding", "snappy")],
        framed,
    )
    .await;
    let grpc = grpc.expect("a grpc-status");
    assert_eq!(grpc.code(), tonic::Code::Unimplemented, "{grpc:?}");
    assert_eq!(reason(&grpc), "UNSUPPORTED_ENCODING");
}

#[tokio::test]
async fn a_clients_grpc_timeout_is_honoured_with_deadline_exceeded() {
    let app = spawn_app().await;
    let created = app.create(meeting("2022-05-05", &["AZ", "JP"])).await;
    // Hold the row lock so the update waits past the client's deadline.
    let tx = crate::helpers::hold_row_lock(&app, &created.id).await;
    let body = late_update(&created.id);

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
    let status = Status::from_header_map(response.headers()).expect("trailers-only");
    assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status:?}");
    assert_eq!(reason(&status), "DEADLINE_EXCEEDED");
    tx.rollback().await.unwrap();
    assert_eq!(
        app.get(&created.id).await.unwrap().summary,
        "",
        "the update did not happen"
    );
}

/// Opens a call with `grpc-timeout` on a raw connection (a client that does
/// not enforce its deadline itself), sending `body` only if given; returns
/// the call's status and how long it took.
async fn call_with_deadline(
    addr: std::net::SocketAddr,
    path: &str,
    timeout: &str,
    body: Option<Vec<u8>>,
) -> (Status, std::time::Duration) {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut client, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(connection);
    let request = Request::post(format!("http://{addr}{path}"))
        .header("content-type", GRPC)
        .header("te", "trailers")
        .header("grpc-timeout", timeout)
        .body(())
        .unwrap();
    let started = std::time::Instant::now();
    let (response, mut send) = client.send_request(request, false).unwrap();
    if let Some(body) = body {
        send.send_data(Bytes::from(frame(body.len() as u32, &body)), true)
            .unwrap();
    }
    let response = tokio::time::timeout(std::time::Duration::from_secs(10), response)
        .await
        .expect("an answer at the deadline, not a hang")
        .unwrap();
    let status = crate::helpers::raw_grpc_status(response)
        .await
        .expect("a status");
    (status, started.elapsed())
}

#[tokio::test]
async fn a_deadline_counts_from_the_calls_arrival() {
    let app = spawn_app().await;
    // The request message never comes: the handler never starts, and the
    // deadline still passes.
    let (status, took) = call_with_deadline(
        app.addr,
        "/meetings.v1.MeetingService/CreateMeeting",
        "300m",
        None,
    )
    .await;
    assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status:?}");
    assert_eq!(reason(&status), "DEADLINE_EXCEEDED");
    assert!(
        took >= std::time::Duration::from_millis(250) && took < std::time::Duration::from_secs(2),
        "took {took:?}"
    );
}

#[tokio::test]
async fn streams_end_at_the_clients_deadline() {
    let app = spawn_app().await;
    let watch = meetings::pb::WatchMeetingsRequest::default().encode_to_vec();
    let (status, took) = call_with_deadline(
        app.addr,
        "/meetings.v1.MeetingService/WatchMeetings",
        "1S",
        Some(watch),
    )
    .await;
    assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status:?}");
    assert_eq!(reason(&status), "DEADLINE_EXCEEDED");
    assert!(
        took >= std::time::Duration::from_millis(900) && took < std::time::Duration::from_secs(5),
        "a watch with a 1 s deadline ends after about 1 s, took {took:?}"
    );
    // The server serves on.
    app.create(meeting("2022-05-05", &["AZ", "JP"])).await;
}

#[tokio::test]
async fn a_stream_that_always_has_records_ready_ends_at_the_deadline() {
    let app = spawn_app().await;
    let report = app
        .import(
            // Enough that a reader pausing 20 ms a chunk needs several
            // times the deadline for them all, however fast the machine.
            crate::helpers::many(8_000)
                .into_iter()
                .map(|m| meetings::pb::ImportMeetingsRequest {
                    meeting: Some(m),
                    request_id: String::new(),
                    ..Default::default()
                })
                .collect(),
        )
        .await;
    assert_eq!(report.created_count, 8_000);
    let body = meetings::pb::StreamMeetingsByCountryPairRequest {
        country_a: "AZ".into(),
        country_b: "JP".into(),
        ..Default::default()
    }
    .encode_to_vec();
    let tcp = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let (mut client, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(connection);
    let request = Request::post(format!(
        "http://{}/meetings.v1.MeetingService/StreamMeetingsByCountryPair",
        app.addr
    ))
    .header("content-type", GRPC)
    .header("te", "trailers")
    .header("grpc-timeout", "1S")
    .body(())
    .unwrap();
    let started = std::time::Instant::now();
    let (response, mut send) = client.send_request(request, false).unwrap();
    send.send_data(Bytes::from(frame(body.len() as u32, &body)), true)
        .unwrap();
    let mut body = response.await.unwrap().into_body();
    // A slow reader: the server always has the rest of a page in hand
    // when the stream is polled.
    while let Some(chunk) = body.data().await {
        let chunk = chunk.unwrap();
        let _ = body.flow_control().release_capacity(chunk.len());
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let took = started.elapsed();
    let trailers = body.trailers().await.unwrap().expect("trailers");
    let status = Status::from_header_map(&trailers).expect("a status");
    assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status:?}");
    assert_eq!(reason(&status), "DEADLINE_EXCEEDED");
    assert!(
        took < std::time::Duration::from_millis(2_500),
        "ended at the deadline, took {took:?}"
    );
}

/// Sends a GetMeeting call of an unknown meeting, ending the request
/// stream only if `end`; returns the HTTP status and the call's status.
async fn get_call(
    app: &crate::helpers::TestApp,
    headers: &[(&str, &str)],
    end: bool,
) -> (u16, Status) {
    let body = meetings::pb::GetMeetingRequest {
        id: uuid::Uuid::now_v7().to_string(),
    }
    .encode_to_vec();
    call(app, GET, &body, headers, end).await
}

/// Sends a call of `path` with the message `body`, ending the request
/// stream only if `end`; returns the HTTP status and the call's status.
async fn call(
    app: &crate::helpers::TestApp,
    path: &str,
    body: &[u8],
    headers: &[(&str, &str)],
    end: bool,
) -> (u16, Status) {
    let tcp = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let (mut client, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(connection);
    let mut request = Request::post(format!("http://{}{path}", app.addr)).header("te", "trailers");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let (response, mut send) = client
        .send_request(request.body(()).unwrap(), false)
        .unwrap();
    send.send_data(Bytes::from(frame(body.len() as u32, body)), end)
        .unwrap();
    let response = tokio::time::timeout(std::time::Duration::from_secs(10), response)
        .await
        .expect("an answer, not a hang")
        .unwrap();
    let code = response.status().as_u16();
    let status = crate::helpers::raw_grpc_status(response)
        .await
        .expect("a grpc-status");
    (code, status)
}

/// A deadline too short for anything is DEADLINE_EXCEEDED with its reason
/// every time, not tonic's own CANCELLED "Timeout expired", which wins the
/// race with the service's answer for deadlines within a millisecond. The
/// call is an update waiting for a row lock, so that it cannot end before
/// either deadline.
#[tokio::test]
async fn a_deadline_too_short_to_serve_is_always_deadline_exceeded() {
    let app = spawn_app().await;
    let created = app.create(meeting("2022-05-05", &["AZ", "JP"])).await;
    let lock = crate::helpers::hold_row_lock(&app, &created.id).await;
    let update = late_update(&created.id);
    let path = "/meetings.v1.MeetingService/UpdateMeeting";
    for timeout in ["1n", "1u", "100u", "0S", "00000000S", "15m"] {
        for _ in 0..5 {
            let headers = [("content-type", GRPC), ("grpc-timeout", timeout)];
            let (_, status) = call(&app, path, &update, &headers, true).await;
            assert_eq!(
                status.code(),
                tonic::Code::DeadlineExceeded,
                "{timeout}: {status:?}"
            );
            assert_eq!(reason(&status), "DEADLINE_EXCEEDED");
        }
    }
    lock.rollback().await.unwrap();
    // A call the service answers at once (an unknown method): the answer is
    // the deadline's whichever timer fires first, since it is given before
    // the call reaches the service.
    let (_, status) = call(
        &app,
        "/meetings.v1.MeetingService/Nope",
        &[],
        &[("content-type", GRPC), ("grpc-timeout", "1n")],
        true,
    )
    .await;
    assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status:?}");
}

/// A grpc-timeout that is no number and unit is refused and named, rather
/// than ignored (the call would run without the deadline the client
/// meant).
#[tokio::test]
async fn a_malformed_grpc_timeout_is_invalid_argument() {
    let app = spawn_app().await;
    for timeout in ["abc", "-5S", "5", "5s", ".5S", "1e3S"] {
        let (_, status) = get_call(
            &app,
            &[("content-type", GRPC), ("grpc-timeout", timeout)],
            true,
        )
        .await;
        assert_eq!(
            status.code(),
            tonic::Code::InvalidArgument,
            "{timeout}: {status:?}"
        );
        assert_eq!(reason(&status), "INVALID_REQUEST");
        assert_eq!(
            crate::helpers::violated_fields(&status.get_error_details()),
            ["grpc-timeout"],
            "{timeout}"
        );
    }
}

/// The server's deadline of unary calls counts from the call's arrival: a
/// request body that never ends does not hold the call open.
#[tokio::test]
async fn a_unary_request_that_never_ends_meets_the_servers_deadline() {
    let app = crate::helpers::spawn_app_with(crate::helpers::Settings {
        request_timeout_ms: 500,
        ..Default::default()
    })
    .await;
    let started = std::time::Instant::now();
    let (_, status) = get_call(&app, &[("content-type", GRPC)], false).await;
    assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status:?}");
    assert_eq!(reason(&status), "DEADLINE_EXCEEDED");
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(450),
        "not before the deadline: {:?}",
        started.elapsed()
    );
}

/// A request that is not gRPC gets HTTP 415, as gRPC over HTTP/2
/// specifies, with a status that names the header.
#[tokio::test]
async fn a_request_that_is_not_grpc_is_unsupported_media_type() {
    let app = spawn_app().await;
    for headers in [&[("content-type", "text/plain")][..], &[]] {
        let (http, status) = get_call(&app, headers, true).await;
        assert_eq!(http, 415, "{headers:?}");
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert_eq!(
            crate::helpers::violated_fields(&status.get_error_details()),
            ["content-type"]
        );
    }
    // Media types are case-insensitive; parameters may follow.
    for content_type in [
        "Application/GRPC",
        "application/grpc+proto",
        "application/grpc; charset=utf-8",
    ] {
        let (http, status) = get_call(&app, &[("content-type", content_type)], true).await;
        assert_eq!(http, 200, "{content_type}");
        assert_eq!(
            status.code(),
            tonic::Code::NotFound,
            "{content_type}: {status:?}"
        );
    }
}

/// An UpdateMeeting request of the meeting `id` (its summary), encoded.
fn late_update(id: &str) -> Vec<u8> {
    meetings::pb::UpdateMeetingRequest {
        meeting: Some(meetings::pb::Meeting {
            id: id.to_owned(),
            summary: "late".into(),
            ..Default::default()
        }),
        update_mask: None,
    }
    .encode_to_vec()
}
