//! Bad input of any size gets a short, bounded error: C-core clients
//! (Python, Ruby, C++) accept at most 8 KiB of response metadata.

use bytes::Bytes;
use http::Request;
use meetings::pb;
use prost::Message;
use tonic::{Code, Status};

use crate::helpers::{assert_error, meeting, spawn_app};

/// Bytes a status takes in response metadata: its message and its
/// base64-encoded details.
fn metadata_bytes(status: &Status) -> usize {
    status.message().len() + status.details().len().div_ceil(3) * 4
}

#[tokio::test]
async fn a_meeting_with_hundreds_of_faults_gets_a_bounded_status() {
    let app = spawn_app().await;
    let status = app.try_create(bad_meeting()).await.unwrap_err();
    let details = assert_error(&status, Code::InvalidArgument, "INVALID_MEETING");
    let violations = &details.bad_request().unwrap().field_violations;
    assert_eq!(violations.len(), 20, "at most 20 violations in a status");
    let last = violations.last().unwrap();
    assert!(
        last.description.starts_with("and ") && last.description.contains("more"),
        "the last entry says how many more: {last:?}"
    );
    for v in &violations[..19] {
        assert!(
            v.description.chars().count() < 120,
            "a description quotes only a little of the input: {v:?}"
        );
    }
    assert!(
        metadata_bytes(&status) < 6 * 1024,
        "the status takes {} bytes",
        metadata_bytes(&status)
    );
    // On the wire, as a C-core client counts it: every header of the
    // trailers-only response, the message percent-encoded.
    let wire = response_header_bytes(
        app.addr,
        "/meetings.v1.MeetingService/CreateMeeting",
        pb::CreateMeetingRequest {
            meeting: Some(bad_meeting()),
            request_id: "r".repeat(100_000),
            ..Default::default()
        }
        .encode_to_vec(),
    )
    .await;
    assert!(wire < 6 * 1024, "{wire} bytes of response metadata");
}

/// The bytes of a response's headers (names and values), as sent.
async fn response_header_bytes(addr: std::net::SocketAddr, path: &str, message: Vec<u8>) -> usize {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut client, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(connection);
    let request = Request::post(format!("http://{addr}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap();
    let (response, mut send) = client.send_request(request, false).unwrap();
    send.send_data(Bytes::from(crate::helpers::grpc_frame(&message)), true)
        .unwrap();
    let response = response.await.unwrap();
    assert!(
        response.headers().contains_key("grpc-status"),
        "a trailers-only error"
    );
    response
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum()
}

/// 150 participants, each with several faults.
fn bad_meeting() -> pb::Meeting {
    let mut m = meeting("2022-05-05", &["AZ", "JP"]);
    m.participants = (0..150)
        .map(|i| pb::Participant {
            name: String::new(),
            title: "t".repeat(1_000),
            country_code: format!("{i}{}", "Z".repeat(10_000)),
            ..Default::default()
        })
        .collect();
    m
}

#[tokio::test]
async fn a_huge_id_gets_a_short_error() {
    let app = spawn_app().await;
    let status = app.get(&"x".repeat(100_000)).await.unwrap_err();
    let details = assert_error(&status, Code::InvalidArgument, "INVALID_REQUEST");
    let v = &details.bad_request().unwrap().field_violations[0];
    assert_eq!(v.field, "id");
    assert!(v.description.len() < 100, "{v:?}");
    assert!(metadata_bytes(&status) < 1024);
}

#[tokio::test]
async fn nul_characters_in_filters_are_refused_with_their_field() {
    let app = spawn_app().await;
    app.create(meeting("2022-05-05", &["AZ", "JP"])).await;
    for (field, request) in [
        (
            "query",
            pb::ListMeetingsRequest {
                query: "energy\0".into(),
                ..Default::default()
            },
        ),
        (
            "topic",
            pb::ListMeetingsRequest {
                topic: "\0".into(),
                ..Default::default()
            },
        ),
        (
            "query",
            pb::ListMeetingsRequest {
                query: "q".repeat(10_000),
                ..Default::default()
            },
        ),
    ] {
        let status = app.client.clone().list_meetings(request).await.unwrap_err();
        let details = assert_error(&status, Code::InvalidArgument, "INVALID_REQUEST");
        assert_eq!(crate::helpers::violated_fields(&details), [field]);
    }
}

#[tokio::test]
async fn list_refuses_a_from_date_after_its_to_date() {
    let app = spawn_app().await;
    let status = app
        .client
        .clone()
        .list_meetings(pb::ListMeetingsRequest {
            from_date: "2022-05-06".into(),
            to_date: "2022-05-05".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    let details = assert_error(&status, Code::InvalidArgument, "INVALID_REQUEST");
    assert_eq!(crate::helpers::violated_fields(&details), ["to_date"]);
}

/// ImportMeetings over a raw HTTP/2 stream: `messages` framed as sent
/// (each may be any bytes); returns the call's status.
async fn raw_import(addr: std::net::SocketAddr, messages: Vec<Vec<u8>>) -> Status {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut client, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(connection);
    let request = Request::post(format!(
        "http://{addr}/meetings.v1.MeetingService/ImportMeetings"
    ))
    .header("content-type", "application/grpc")
    .header("te", "trailers")
    .body(())
    .unwrap();
    let (response, mut send) = client.send_request(request, false).unwrap();
    let body: Vec<u8> = messages
        .iter()
        .flat_map(|m| crate::helpers::grpc_frame(m))
        .collect();
    // Sent as the window allows; the server may answer before it all went.
    tokio::spawn(async move {
        let mut body = Bytes::from(body);
        while !body.is_empty() {
            send.reserve_capacity(body.len().min(64 * 1024));
            let Some(Ok(n)) = std::future::poll_fn(|cx| send.poll_capacity(cx)).await else {
                return;
            };
            let chunk = body.split_to(n.min(body.len()));
            if send.send_data(chunk, body.is_empty()).is_err() {
                return;
            }
        }
    });
    let response = tokio::time::timeout(std::time::Duration::from_secs(30), response)
        .await
        .expect("an answer, not a hang")
        .unwrap();
    crate::helpers::raw_grpc_status(response)
        .await
        .expect("a status")
}

fn import_request(i: usize) -> Vec<u8> {
    pb::ImportMeetingsRequest {
        meeting: Some(meeting("2022-05-05", &["AZ", "JP"])),
        request_id: format!("import-{i}"),
        ..Default::default()
    }
    .encode_to_vec()
}

#[tokio::test]
async fn a_malformed_message_stops_an_import_and_says_what_was_stored() {
    let app = spawn_app().await;
    // 1,200 valid meetings: two whole batches of 500 commit, the third is
    // unfinished when message 1,200 (invalid UTF-8 in request_id) arrives.
    let mut messages: Vec<Vec<u8>> = (0..1_200).map(import_request).collect();
    messages.push(vec![0x12, 0x02, 0xc3, 0x28]);
    messages.extend((1_201..1_300).map(import_request));
    let status = raw_import(app.addr, messages).await;
    let details = assert_error(&status, Code::InvalidArgument, "INVALID_REQUEST");
    let info = details.error_info().unwrap();
    assert_eq!(info.metadata["index"], "1200");
    assert_eq!(info.metadata["resume_index"], "1000");
    assert_eq!(info.metadata["created_count"], "1000");
    assert!(status.message().contains("1200"), "{}", status.message());
    assert_eq!(app.count_meetings().await, 1_000, "whole batches only");

    // The retry from resume_index stores the rest, exactly once.
    let retry: Vec<pb::ImportMeetingsRequest> = (1_000..1_300)
        .filter(|i| *i != 1_200)
        .map(|i| pb::ImportMeetingsRequest::decode(import_request(i).as_slice()).unwrap())
        .collect();
    let report = app.import(retry).await;
    assert_eq!(report.created_count, 299);
    assert_eq!(app.count_meetings().await, 1_299);
}

#[tokio::test]
async fn a_stopped_merge_import_counts_what_it_merged() {
    let app = spawn_app().await;
    // 500 meetings three days apart (a batch), the same 500 reported again
    // (a batch that merges), then 10 more and a message that does not
    // decode.
    let report = |i: usize| {
        let day = chrono::NaiveDate::from_ymd_opt(1990, 1, 1).unwrap()
            + chrono::Days::new(3 * (i % 500) as u64);
        pb::ImportMeetingsRequest {
            meeting: Some(meeting(&day.to_string(), &["AZ", "JP"])),
            request_id: format!("merge-{i}"),
            duplicates: pb::DuplicatePolicy::Merge as i32,
        }
        .encode_to_vec()
    };
    let mut messages: Vec<Vec<u8>> = (0..1_010).map(report).collect();
    messages.push(vec![0x08, 0x01]);
    let status = raw_import(app.addr, messages).await;
    let details = assert_error(&status, Code::InvalidArgument, "INVALID_REQUEST");
    let info = details.error_info().unwrap();
    assert_eq!(info.metadata["resume_index"], "1000");
    assert_eq!(info.metadata["created_count"], "500");
    assert_eq!(info.metadata["merged_count"], "500");
    assert!(
        status.message().contains("500 merged"),
        "{}",
        status.message()
    );
    assert_eq!(app.count_meetings().await, 500);
}

#[tokio::test]
async fn an_import_that_breaks_early_stores_nothing_unfinished() {
    let app = spawn_app().await;
    let mut messages: Vec<Vec<u8>> = (0..10).map(import_request).collect();
    // A wrong wire type for field 1.
    messages.push(vec![0x08, 0x01]);
    let status = raw_import(app.addr, messages).await;
    let details = assert_error(&status, Code::InvalidArgument, "INVALID_REQUEST");
    let info = details.error_info().unwrap();
    assert_eq!(info.metadata["index"], "10");
    assert_eq!(info.metadata["resume_index"], "0");
    assert_eq!(info.metadata["created_count"], "0");
    assert_eq!(app.count_meetings().await, 0);
}

#[tokio::test]
async fn an_imports_rejected_details_are_bounded_in_bytes() {
    let app = spawn_app().await;
    let bad = |i: usize| {
        let mut m = meeting("2022-05-05", &["AZ", "JP"]);
        m.participants = (0..200)
            .map(|j| pb::Participant {
                name: format!("{i}-{j}"),
                title: String::new(),
                country_code: "Q".repeat(100),
                ..Default::default()
            })
            .collect();
        pb::ImportMeetingsRequest {
            meeting: Some(m),
            request_id: "r".repeat(1_000),
            ..Default::default()
        }
    };
    let report = app.import((0..1_000).map(bad).collect()).await;
    assert_eq!(report.rejected_count, 1_000);
    assert!(!report.rejected.is_empty());
    assert!(
        report.encoded_len() <= 1024 * 1024 + 1024,
        "response of {} bytes",
        report.encoded_len()
    );
    for r in &report.rejected {
        assert!(r.violations.len() <= 20);
        assert!(r.request_id.len() <= 128);
    }
}

#[tokio::test]
async fn a_list_page_ends_before_the_clients_message_limit() {
    let app = spawn_app().await;
    // Meetings of about 320 kB: 20 of them are more than the 4 MiB a gRPC
    // client accepts in one message by default.
    let big = |i: usize| {
        let mut m = meeting("2022-05-05", &["AZ", "JP"]);
        m.summary = "😀".repeat(20_000);
        m.participants = (0..200)
            .map(|j| pb::Participant {
                name: format!("{i} {j} {}", "é".repeat(190)),
                title: "😀".repeat(200),
                country_code: if j % 2 == 0 { "AZ" } else { "JP" }.into(),
                ..Default::default()
            })
            .collect();
        pb::ImportMeetingsRequest {
            meeting: Some(m),
            request_id: String::new(),
            ..Default::default()
        }
    };
    let report = app.import((0..20).map(big).collect()).await;
    assert_eq!(report.created_count, 20);
    let mut seen = std::collections::HashSet::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = app
            .client
            .clone()
            .list_meetings(pb::ListMeetingsRequest {
                page_size: 1_000,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .expect("a page fits the client's limit")
            .into_inner();
        assert!(page.encoded_len() <= 4 * 1024 * 1024);
        pages += 1;
        for m in page.meetings {
            assert!(seen.insert(m.id), "no meeting twice");
        }
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen.len(), 20, "every meeting, over {pages} pages");
    assert!(pages >= 2);
    // Streams read pages of at most about 1 MiB of these: every meeting
    // arrives once, in order.
    let streamed = app
        .stream(pb::StreamMeetingsByCountryPairRequest {
            country_a: "AZ".into(),
            country_b: "JP".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let ids: Vec<&str> = streamed.iter().map(|m| m.id.as_str()).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(ids, sorted, "all 20, once each, in (date, id) order");
    assert_eq!(ids.len(), 20);
    let mut watch = app
        .client
        .clone()
        .watch_meetings(pb::WatchMeetingsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let mut sequences = Vec::new();
    while sequences.len() < 20 {
        let event = tokio::time::timeout(std::time::Duration::from_secs(10), watch.message())
            .await
            .expect("events arrive")
            .unwrap()
            .unwrap()
            .event
            .unwrap();
        assert!(seen.contains(&event.meeting.unwrap().id));
        sequences.push(event.sequence);
    }
    assert!(
        sequences.windows(2).all(|w| w[1] == w[0] + 1),
        "consecutive: {sequences:?}"
    );
}

/// Text that does not compress: letters from a simple generator.
fn incompressible(len: usize, seed: u64) -> String {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    (0..len)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            char::from(b'a' + ((x >> 33) % 26) as u8)
        })
        .collect()
}

/// Bytes the pair index takes, with its TOAST and indexes.
async fn pair_index_bytes(app: &crate::helpers::TestApp) -> i64 {
    sqlx::query_scalar("SELECT pg_total_relation_size('meeting_country_pairs')")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_meeting_of_many_countries_writes_no_copy_per_pair() {
    let app = spawn_app().await;
    let codes: Vec<&str> = rust_iso3166::ALL_ALPHA2.iter().take(60).copied().collect();
    let mut m = meeting("2022-05-05", &codes);
    m.summary = incompressible(20_000, 1);
    let before = pair_index_bytes(&app).await;
    let created = app.create(m.clone()).await;
    let grown = pair_index_bytes(&app).await - before;
    // 1,770 pairs; a copy of the record in each would be some 35 MB.
    assert!(
        grown < 2 * 1024 * 1024,
        "the pair index grew by {grown} bytes"
    );
    let copies: i64 = sqlx::query_scalar(
        "SELECT count(record) FROM meeting_country_pairs WHERE meeting_id = $1::uuid",
    )
    .bind(&created.id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(copies, 0);
    // Every pair still finds it, whole.
    for (a, b) in [(codes[0], codes[59]), (codes[17], codes[42])] {
        let found = app
            .stream(pb::StreamMeetingsByCountryPairRequest {
                country_a: a.into(),
                country_b: b.into(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(found, std::slice::from_ref(&created));
    }
    // The same through an import, with small meetings in the same batch.
    let report = app
        .import(vec![
            pb::ImportMeetingsRequest {
                meeting: Some(m),
                request_id: String::new(),
                ..Default::default()
            },
            pb::ImportMeetingsRequest {
                meeting: Some(meeting("2022-05-06", &[codes[0], codes[59]])),
                request_id: String::new(),
                ..Default::default()
            },
        ])
        .await;
    assert_eq!(report.created_count, 2);
    let found = app
        .stream(pb::StreamMeetingsByCountryPairRequest {
            country_a: codes[0].into(),
            country_b: codes[59].into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(found.len(), 3);
    assert!(
        found
            .iter()
            .all(|f| f.summary.len() == 20_000 || f.summary.is_empty())
    );
}

#[tokio::test]
async fn an_import_the_client_cancels_stores_nothing_unfinished() {
    let app = spawn_app().await;
    let tcp = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let (mut client, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(connection);
    let request = Request::post(format!(
        "http://{}/meetings.v1.MeetingService/ImportMeetings",
        app.addr
    ))
    .header("content-type", "application/grpc")
    .header("te", "trailers")
    .body(())
    .unwrap();
    let (_response, mut send) = client.send_request(request, false).unwrap();
    let body: Vec<u8> = (0..10)
        .flat_map(|i| crate::helpers::grpc_frame(&import_request(i)))
        .collect();
    send.send_data(Bytes::from(body), false).unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    // RST_STREAM (CANCEL), not a half-close: the import did not finish.
    send.send_reset(h2::Reason::CANCEL);
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert_eq!(app.count_meetings().await, 0, "nothing of the cut batch");
    // A stream half-closed normally commits its last batch.
    let report = app
        .import(
            (0..10)
                .map(|i| pb::ImportMeetingsRequest::decode(import_request(i).as_slice()).unwrap())
                .collect(),
        )
        .await;
    assert_eq!(report.created_count, 10);
}

#[tokio::test]
async fn one_connections_calls_use_only_a_share_of_the_pool() {
    let app = crate::helpers::spawn_app_with(crate::helpers::Settings {
        db_pool_size: 16,
        acquire_timeout_ms: 1_000,
        ..Default::default()
    })
    .await;
    let created = app.create(meeting("2022-05-05", &["AZ", "JP"])).await;
    // Forty updates of one locked meeting from one connection: each that
    // reaches the database holds a connection while it waits for the lock.
    let lock = crate::helpers::hold_row_lock(&app, &created.id).await;
    let waiting: Vec<_> = (0..40)
        .map(|i| {
            let mut client = app.client.clone();
            let id = created.id.clone();
            tokio::spawn(async move {
                client
                    .update_meeting(pb::UpdateMeetingRequest {
                        meeting: Some(pb::Meeting {
                            id,
                            summary: format!("update {i}"),
                            ..Default::default()
                        }),
                        update_mask: None,
                    })
                    .await
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    // Another caller (its own connection) is served meanwhile.
    let mut other =
        meetings::pb::meeting_service_client::MeetingServiceClient::new(app.channel().await);
    for _ in 0..5 {
        let listed = other
            .list_meetings(pb::ListMeetingsRequest::default())
            .await;
        assert!(listed.is_ok(), "another connection is served: {listed:?}");
    }
    lock.rollback().await.unwrap();
    for w in waiting {
        w.await.unwrap().expect("each update is served in turn");
    }
}

/// Pages of meetings whose pair rows keep no record end at their byte
/// budget too, and still bring every meeting once, in order.
#[tokio::test]
async fn pages_of_many_country_meetings_are_complete_and_ordered() {
    let app = spawn_app().await;
    let countries = ["AZ", "JP", "FR", "DE", "PL", "TR"];
    let report = app
        .import(
            (0..16)
                .map(|i| {
                    let mut m = meeting(&format!("2022-05-{:02}", 1 + i), &countries);
                    m.summary = incompressible(20_000, i as u64).replace('a', "😀");
                    pb::ImportMeetingsRequest {
                        meeting: Some(m),
                        request_id: String::new(),
                        ..Default::default()
                    }
                })
                .collect(),
        )
        .await;
    assert_eq!(report.created_count, 16);
    for newest_first in [false, true] {
        let streamed = app
            .stream(pb::StreamMeetingsByCountryPairRequest {
                country_a: "PL".into(),
                country_b: "JP".into(),
                newest_first,
                ..Default::default()
            })
            .await
            .unwrap();
        let mut dates: Vec<&str> = streamed.iter().map(|m| m.date.as_str()).collect();
        assert_eq!(dates.len(), 16, "every meeting once");
        if newest_first {
            dates.reverse();
        }
        assert!(dates.windows(2).all(|w| w[0] < w[1]), "in order: {dates:?}");
        assert!(streamed.iter().all(|m| m.summary.chars().count() == 20_000));
    }
}
