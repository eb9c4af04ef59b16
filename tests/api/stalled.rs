//! A client that opens streams and then stops reading (never sends an
//! HTTP/2 WINDOW_UPDATE) holds no database connection: every other caller
//! keeps being served and health stays SERVING.

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use meetings::pb;
use prost::Message;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::helpers::{Settings, TestApp, many, meeting, spawn_app_with};

/// Opens `calls` calls of `path` with `body` on one raw HTTP/2 connection
/// whose streams each take `window` bytes, and never reads their responses:
/// each stream's window fills and the server's sending stops. Returns what
/// keeps them open.
async fn open_and_stall(
    app: &TestApp,
    path: &str,
    body: Vec<u8>,
    calls: usize,
    window: u32,
) -> Stalled {
    let tcp = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let (client, connection) = h2::client::Builder::new()
        .initial_window_size(window)
        .initial_connection_window_size(1 << 30)
        .handshake(tcp)
        .await
        .unwrap();
    let connection = tokio::spawn(connection);
    let mut client = client.ready().await.unwrap();
    let framed = crate::helpers::grpc_frame(&body);
    let mut open = Vec::new();
    for _ in 0..calls {
        let request = Request::post(format!("http://{}{path}", app.addr))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(())
            .unwrap();
        client = client.ready().await.unwrap();
        let (response, mut send) = client.send_request(request, false).unwrap();
        send.send_data(Bytes::from(framed.clone()), true).unwrap();
        open.push(response);
    }
    // The responses are held, not read: no capacity is ever released.
    Stalled {
        _client: client,
        open,
        connection,
    }
}

struct Stalled {
    _client: h2::client::SendRequest<Bytes>,
    open: Vec<h2::client::ResponseFuture>,
    connection: tokio::task::JoinHandle<Result<(), h2::Error>>,
}

impl Stalled {
    /// The calls' responses, to look at those already answered.
    fn take_open(&mut self) -> Vec<h2::client::ResponseFuture> {
        std::mem::take(&mut self.open)
    }
}

impl Drop for Stalled {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

/// Unary calls, a whole stream of another pair and health, all served.
async fn others_are_served(app: &TestApp, stored: &pb::Meeting) {
    for round in 0..10 {
        let got = app.get(&stored.id).await;
        assert!(got.is_ok(), "round {round}: GetMeeting failed: {got:?}");
        let created = app.try_create(meeting("2023-01-01", &["FR", "DE"])).await;
        assert!(
            created.is_ok(),
            "round {round}: CreateMeeting failed: {created:?}"
        );
        let listed = app
            .client
            .clone()
            .list_meetings(pb::ListMeetingsRequest {
                country_code: "FR".into(),
                ..Default::default()
            })
            .await;
        assert!(
            listed.is_ok(),
            "round {round}: ListMeetings failed: {listed:?}"
        );
        let streamed = app
            .stream(pb::StreamMeetingsByCountryPairRequest {
                country_a: "FR".into(),
                country_b: "DE".into(),
                ..Default::default()
            })
            .await
            .expect("a stream of another pair is served");
        assert_eq!(streamed.len(), round + 1);
    }
    // The change feed still numbers and delivers: a watcher from the
    // newest event sees the next create.
    let newest: i64 = sqlx::query_scalar(
        "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM meeting_event_sequence",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    let mut watch = app
        .client
        .clone()
        .watch_meetings(pb::WatchMeetingsRequest {
            after_sequence: newest as u64,
            ..Default::default()
        })
        .await
        .expect("a watch starts")
        .into_inner();
    let fresh = app.create(meeting("2023-02-02", &["FR", "DE"])).await;
    let event = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let e = watch.message().await.unwrap().unwrap().event.unwrap();
            if e.meeting.as_ref().unwrap().id == fresh.id {
                return e;
            }
        }
    })
    .await
    .expect("the change feed delivers");
    assert_eq!(event.kind, pb::MeetingEventKind::Created as i32);
    let mut health = HealthClient::new(app.channel().await);
    let status = health
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health answers")
        .into_inner()
        .status;
    assert_eq!(status, ServingStatus::Serving as i32);
}

/// The server's pool connections checked out: the change-feed listener
/// keeps one, and the health check, the sequencer and the change-feed
/// poller each take one for a moment; anything more is held by calls.
fn checked_out(app: &TestApp) -> u32 {
    app.pool.size() - app.pool.num_idle() as u32
}

/// Once the stalled calls have run into their windows (reads in progress
/// end; on a loaded machine that can take well over the usual second, so
/// this waits up to 30 s for it), every sample over a second: a connection
/// held by a stalled call is never given back and would show (without the
/// separate page reads, all 16 were).
async fn assert_no_connection_held(app: &TestApp, stalled: &str) {
    for _ in 0..300 {
        if checked_out(app) <= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for _ in 0..20 {
        let held = checked_out(app);
        assert!(
            held <= 4,
            "stalled {stalled} hold {held} database connections"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A stream window that runs out just as the server has sent the records of
/// a stream's first page but its last few, which are encoded after the next
/// page's read has started: the moment a stream that reads its pages inside
/// the response body stops being polled with a query in flight. Messages of
/// `message_len` bytes; tonic sends a chunk once it holds 32 KiB, and
/// `page` rows make the first page.
fn window_stalling_mid_read(message_len: usize, page: usize) -> u32 {
    const CHUNK: usize = 32 * 1024;
    let framed = message_len + 5;
    let per_chunk = CHUNK.div_ceil(framed);
    assert_ne!(page % per_chunk, 0, "the page ends inside a chunk");
    let full_chunks = page / per_chunk;
    // Halfway through the last full chunk of the page.
    u32::try_from((2 * full_chunks - 1) * per_chunk * framed / 2).unwrap()
}

/// Records of about 11 kB: three make a chunk.
fn large(n: usize) -> Vec<pb::ImportMeetingsRequest> {
    many(n)
        .into_iter()
        .map(|mut m| {
            m.summary = "A long report of the talks. ".repeat(400);
            pb::ImportMeetingsRequest {
                meeting: Some(m),
                request_id: String::new(),
                ..Default::default()
            }
        })
        .collect()
}

#[tokio::test]
async fn stalled_pair_streams_hold_no_database_connection() {
    let app = spawn_app_with(Settings {
        db_pool_size: 16,
        acquire_timeout_ms: 1000,
        ..Settings::default()
    })
    .await;
    let report = app.import(large(600)).await;
    assert_eq!(report.created_count, 600);
    let stored = app.create(meeting("2022-05-05", &["AZ", "JP"])).await;
    let first = app
        .stream(pb::StreamMeetingsByCountryPairRequest {
            country_a: "AZ".into(),
            country_b: "JP".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .remove(0);
    let message_len = pb::StreamMeetingsByCountryPairResponse {
        meeting: Some(first),
    }
    .encoded_len();

    let body = pb::StreamMeetingsByCountryPairRequest {
        country_a: "AZ".into(),
        country_b: "JP".into(),
        ..Default::default()
    }
    .encode_to_vec();
    let stalled = open_and_stall(
        &app,
        "/meetings.v1.MeetingService/StreamMeetingsByCountryPair",
        body,
        40,
        window_stalling_mid_read(message_len, 32),
    )
    .await;
    // Let every stalled stream run into its full window.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_no_connection_held(&app, "streams").await;
    others_are_served(&app, &stored).await;
    drop(stalled);
}

#[tokio::test]
async fn stalled_watchers_hold_no_database_connection() {
    let app = spawn_app_with(Settings {
        db_pool_size: 16,
        acquire_timeout_ms: 1000,
        ..Settings::default()
    })
    .await;
    let report = app.import(large(600)).await;
    assert_eq!(report.created_count, 600);
    let stored = app.create(meeting("2022-05-05", &["AZ", "JP"])).await;
    // Every event numbered, so each watcher has 601 to send.
    let mut watch = app
        .client
        .clone()
        .watch_meetings(pb::WatchMeetingsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let first = watch.message().await.unwrap().expect("events follow");
    let message_len = first.encoded_len();
    for _ in 1..601 {
        watch.message().await.unwrap().expect("events follow");
    }
    drop(watch);

    let body = pb::WatchMeetingsRequest::default().encode_to_vec();
    let stalled = open_and_stall(
        &app,
        "/meetings.v1.MeetingService/WatchMeetings",
        body,
        40,
        // A watcher reads 256 sequence numbers a page.
        window_stalling_mid_read(message_len, 256),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_no_connection_held(&app, "watchers").await;
    others_are_served(&app, &stored).await;
    drop(stalled);
}

#[tokio::test]
async fn one_connection_cannot_take_every_call_slot() {
    let app = spawn_app_with(Settings {
        max_concurrent_calls: 40,
        ..Settings::default()
    })
    .await;
    app.import(large(100)).await;
    let stored = app.create(meeting("2022-05-05", &["AZ", "JP"])).await;
    let body = pb::StreamMeetingsByCountryPairRequest {
        country_a: "AZ".into(),
        country_b: "JP".into(),
        ..Default::default()
    }
    .encode_to_vec();
    // More streams than the server serves at once, all on one connection.
    let mut stalled = open_and_stall(
        &app,
        "/meetings.v1.MeetingService/StreamMeetingsByCountryPair",
        body,
        60,
        65_535,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    // The calls beyond the connection's share (40 / 4) were refused at once.
    let mut refused = 0;
    for response in stalled.take_open() {
        if let Ok(Ok(r)) = tokio::time::timeout(Duration::from_millis(200), response).await
            && let Some(status) = tonic::Status::from_header_map(r.headers())
        {
            let details =
                crate::helpers::assert_error(&status, Code::ResourceExhausted, "TOO_MANY_CALLS");
            assert_eq!(
                details.error_info().unwrap().metadata["scope"],
                "connection"
            );
            refused += 1;
        }
    }
    assert_eq!(refused, 50, "60 calls, a share of 10");
    let got = app.get(&stored.id).await;
    assert!(
        got.is_ok(),
        "another connection is served while one connection holds its share: {got:?}"
    );
    let status = app
        .client
        .clone()
        .list_meetings(pb::ListMeetingsRequest::default())
        .await
        .map(|_| Code::Ok)
        .unwrap_or_else(|s| s.code());
    assert_eq!(status, Code::Ok);
    drop(stalled);
}

/// A call dropped at any point of its transaction's start (a client that
/// cancels or goes away) hands the pool a connection outside any
/// transaction: the next call on that connection, here the pool's only
/// one, runs in a transaction of its own. sqlx 0.9.0 alone returns the
/// connection inside the dropped call's transaction when the drop comes
/// while BEGIN is on the wire: the next caller's statements then run in
/// it, and a snapshot read can fail.
#[tokio::test]
async fn a_call_dropped_while_its_transaction_begins_leaves_none_open() {
    use meetings::domain::{Party, PartyPair};
    use meetings::storage::{PoolSettings, Storage};

    let app = spawn_app_with(Settings::default()).await;
    app.create(meeting("2022-05-05", &["AZ", "JP"])).await;
    let storage = Storage::connect(
        (*app.pool.connect_options()).clone(),
        &PoolSettings {
            max_connections: 1,
            acquire_timeout: Duration::from_secs(10),
        },
        None,
    )
    .await
    .unwrap();
    let pair = PartyPair::new(
        Party::from_key("AZ").unwrap(),
        Party::from_key("JP").unwrap(),
    )
    .unwrap();
    // The n-th call is dropped after n polls, each after a turn of the
    // runtime (which reads what the database sent), until a call ends
    // before its drop: one of the drops lands while BEGIN awaits its
    // answer, a round trip of many turns. The sweep is made a few times,
    // as the turns a round trip takes vary.
    for sweep in 0..6 {
        sweep_drops(&storage, pair, sweep).await;
    }
    let summary = storage.pair_summary(pair, 5).await.unwrap();
    assert_eq!(summary.counts.count, 1);
}

async fn sweep_drops(
    storage: &meetings::storage::Storage,
    pair: meetings::domain::PartyPair,
    sweep: usize,
) {
    use futures_util::FutureExt;
    let mut polls = 0;
    loop {
        polls += 1;
        assert!(polls < 5000, "no call ended within {polls} polls");
        let mut call = Box::pin(storage.pair_summary(pair, 5));
        let mut ended = false;
        for _ in 0..polls {
            if call.as_mut().now_or_never().is_some() {
                ended = true;
                break;
            }
            tokio::task::yield_now().await;
        }
        drop(call);
        // The pool's one connection, once the dropped call gave it back,
        // runs this statement in a transaction of its own, which began just
        // now (one left open began before the pause).
        let mut conn = storage.pool().acquire().await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        let own: bool = sqlx::query_scalar("SELECT clock_timestamp() - now() < interval '3 ms'")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert!(
            own,
            "a call dropped after {polls} polls (sweep {sweep}) left a transaction open"
        );
        drop(conn);
        if ended {
            break;
        }
    }
}
