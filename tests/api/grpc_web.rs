//! gRPC-Web on the same listener, over HTTP/1.1, as browsers speak it, and
//! CORS for the configured origins.

use std::collections::HashMap;
use std::net::SocketAddr;

use meetings::pb;
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic_types::StatusExt;

use crate::helpers::{Settings, meeting, spawn_app_with};

const ORIGIN: &str = "http://news.example.org";

struct Answer {
    status: u16,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

/// One HTTP/1.1 request on a fresh connection, read to its end.
async fn http1(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Answer {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut raw),
    )
    .await
    .expect("an answer")
    .unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head")
        + 4;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split..].to_vec();
    if headers
        .get("transfer-encoding")
        .is_some_and(|v| v == "chunked")
    {
        body = dechunk(&body);
    }
    Answer {
        status,
        headers,
        body,
    }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = raw.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = usize::from_str_radix(std::str::from_utf8(&raw[..line_end]).unwrap().trim(), 16)
            .unwrap();
        raw = &raw[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}

/// gRPC-Web frames of a response body: messages, then the trailers.
fn frames(mut body: &[u8]) -> (Vec<Vec<u8>>, HashMap<String, String>) {
    let mut messages = Vec::new();
    let mut trailers = HashMap::new();
    while body.len() >= 5 {
        let flag = body[0];
        let len = u32::from_be_bytes(body[1..5].try_into().unwrap()) as usize;
        let data = &body[5..5 + len];
        if flag & 0x80 != 0 {
            for line in String::from_utf8_lossy(data).split("\r\n") {
                if let Some((n, v)) = line.split_once(':') {
                    trailers.insert(n.trim().to_ascii_lowercase(), v.trim().to_owned());
                }
            }
        } else {
            messages.push(data.to_vec());
        }
        body = &body[5 + len..];
    }
    (messages, trailers)
}

fn framed(message: &impl Message) -> Vec<u8> {
    crate::helpers::grpc_frame(&message.encode_to_vec())
}

/// The call's grpc-status: in the headers of a trailers-only answer, else
/// in the trailers frame of the body.
fn grpc_status(answer: &Answer) -> Option<String> {
    let (_, trailers) = frames(&answer.body);
    answer
        .headers
        .get("grpc-status")
        .or(trailers.get("grpc-status"))
        .cloned()
}

async fn grpc_web(addr: SocketAddr, method: &str, message: &impl Message) -> Answer {
    http1(
        addr,
        "POST",
        &format!("/meetings.v1.MeetingService/{method}"),
        &[
            ("content-type", "application/grpc-web+proto"),
            ("x-grpc-web", "1"),
            ("origin", ORIGIN),
        ],
        &framed(message),
    )
    .await
}

#[tokio::test]
async fn grpc_web_over_http1_serves_unary_calls_streams_and_errors() {
    let app = spawn_app_with(Settings {
        cors_allowed_origins: vec![ORIGIN.into()],
        ..Settings::default()
    })
    .await;
    let stored = app.create(meeting("2022-05-05", &["AZ", "JP"])).await;
    app.create(meeting("2023-01-01", &["AZ", "JP"])).await;

    let got = grpc_web(
        app.addr,
        "GetMeeting",
        &pb::GetMeetingRequest {
            id: stored.id.clone(),
        },
    )
    .await;
    assert_eq!(got.status, 200);
    assert!(got.headers["content-type"].starts_with("application/grpc-web"));
    assert_eq!(
        got.headers
            .get("access-control-allow-origin")
            .map(String::as_str),
        Some(ORIGIN)
    );
    let exposed = got.headers["access-control-expose-headers"].to_ascii_lowercase();
    for name in ["grpc-status", "grpc-message", "grpc-status-details-bin"] {
        assert!(exposed.contains(name), "{name} exposed: {exposed}");
    }
    let (messages, trailers) = frames(&got.body);
    assert_eq!(trailers.get("grpc-status").map(String::as_str), Some("0"));
    let response = pb::GetMeetingResponse::decode(messages[0].as_slice()).unwrap();
    assert_eq!(response.meeting.unwrap(), stored);

    // A server stream: one message a meeting, then the trailers.
    let streamed = grpc_web(
        app.addr,
        "StreamMeetingsByCountryPair",
        &crate::helpers::pair("AZ", "JP"),
    )
    .await;
    let (messages, trailers) = frames(&streamed.body);
    assert_eq!(trailers.get("grpc-status").map(String::as_str), Some("0"));
    assert_eq!(messages.len(), 2);

    // A rejected record: INVALID_ARGUMENT with its violations in the
    // trailers' details, as a browser reads them.
    let mut bad = meeting("2022-13-40", &["AZ", "JP"]);
    bad.participants[0].country_code = "ZZ".into();
    let refused = grpc_web(
        app.addr,
        "CreateMeeting",
        &pb::CreateMeetingRequest {
            meeting: Some(bad),
            ..Default::default()
        },
    )
    .await;
    // A call that fails at once is "trailers-only": its status comes in
    // the HTTP headers rather than a trailers frame; clients read both.
    let (_, mut trailers) = frames(&refused.body);
    for name in ["grpc-status", "grpc-message", "grpc-status-details-bin"] {
        if let Some(value) = refused.headers.get(name) {
            trailers.insert(name.to_owned(), value.clone());
        }
    }
    assert_eq!(trailers.get("grpc-status").map(String::as_str), Some("3"));
    let mut map = http::HeaderMap::new();
    for (n, v) in &trailers {
        map.insert(
            http::HeaderName::from_bytes(n.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    let status = tonic::Status::from_header_map(&map).unwrap();
    let violations = status
        .get_error_details()
        .bad_request()
        .unwrap()
        .field_violations
        .clone();
    let fields: Vec<_> = violations.iter().map(|v| v.field.as_str()).collect();
    assert!(fields.contains(&"meeting.date"), "{fields:?}");
    assert!(
        fields.contains(&"meeting.participants[0].country_code"),
        "{fields:?}"
    );
    assert_eq!(app.count_meetings().await, 2);
}

#[tokio::test]
async fn cors_answers_preflights_for_configured_origins_only() {
    let app = spawn_app_with(Settings {
        cors_allowed_origins: vec![ORIGIN.into()],
        ..Settings::default()
    })
    .await;
    let addr = app.addr;
    let preflight = |origin: &'static str| async move {
        http1(
            addr,
            "OPTIONS",
            "/meetings.v1.MeetingService/ListMeetings",
            &[
                ("origin", origin),
                ("access-control-request-method", "POST"),
                (
                    "access-control-request-headers",
                    "content-type,x-grpc-web,authorization",
                ),
            ],
            b"",
        )
        .await
    };
    let allowed = preflight(ORIGIN).await;
    assert!(allowed.status < 300, "{}", allowed.status);
    assert_eq!(
        allowed
            .headers
            .get("access-control-allow-origin")
            .map(String::as_str),
        Some(ORIGIN)
    );
    let headers = allowed.headers["access-control-allow-headers"].to_ascii_lowercase();
    assert!(
        headers.contains("x-grpc-web") && headers.contains("authorization"),
        "{headers}"
    );

    let other = preflight("http://elsewhere.example").await;
    assert!(
        !other.headers.contains_key("access-control-allow-origin"),
        "no CORS for other origins"
    );
}

/// Auth is the same over gRPC-Web; without --cors-allowed-origin no CORS
/// header is sent; a grpc-web-text body that is not base64 is the
/// request's fault.
#[tokio::test]
async fn grpc_web_takes_tokens_sends_no_cors_unasked_and_refuses_bad_text() {
    let (app, tokens, _file) = crate::helpers::spawn_app_with_tokens(&[("read", "web-page")]).await;
    let token = tokens[0].clone();
    let list = |authorization: Option<String>| {
        let addr = app.addr;
        async move {
            let mut headers = vec![
                ("content-type", "application/grpc-web+proto".to_owned()),
                ("origin", ORIGIN.to_owned()),
            ];
            if let Some(value) = authorization {
                headers.push(("authorization", value));
            }
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            http1(
                addr,
                "POST",
                "/meetings.v1.MeetingService/ListMeetings",
                &headers,
                &framed(&pb::ListMeetingsRequest::default()),
            )
            .await
        }
    };
    let refused = list(None).await;
    assert_eq!(
        grpc_status(&refused).as_deref(),
        Some("16"),
        "UNAUTHENTICATED"
    );
    let served = list(Some(format!("Bearer {token}"))).await;
    assert_eq!(grpc_status(&served).as_deref(), Some("0"));
    assert!(
        !served.headers.contains_key("access-control-allow-origin"),
        "no CORS without --cors-allowed-origin"
    );

    let bad_text = http1(
        app.addr,
        "POST",
        "/meetings.v1.MeetingService/ListMeetings",
        &[
            ("content-type", "application/grpc-web-text"),
            ("authorization", &format!("Bearer {token}")),
        ],
        b"%%% not base64 %%%",
    )
    .await;
    assert_eq!(
        grpc_status(&bad_text).as_deref(),
        Some("3"),
        "INVALID_ARGUMENT: {:?}",
        bad_text.headers
    );
}
