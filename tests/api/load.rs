//! Load: many idle streams, and a bounded soak of mixed traffic against a
//! server process whose memory is read from /proc.

use std::time::{Duration, Instant};

use meetings::pb;
use meetings::pb::meeting_service_client::MeetingServiceClient;
use sqlx::ConnectOptions;
use tonic::transport::Channel;

use crate::helpers::{ServerProcess, meeting, spawn_app};

/// Server-side queries running now on the test's database, other than the
/// one asking.
async fn active_queries(app: &crate::helpers::TestApp) -> i64 {
    use sqlx::{ConnectOptions, Connection};
    let mut conn = app.pool.connect_options().connect().await.unwrap();
    let active = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
         AND state = 'active' AND pid <> pg_backend_pid()",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    conn.close().await.ok();
    active
}

#[tokio::test]
async fn a_thousand_idle_streams_do_not_exhaust_the_pool() {
    let app = spawn_app().await;
    // A thousand meetings of the pair: far more than the HTTP/2 windows of
    // 250 streams on one connection hold, so flow control holds every
    // pair stream open; the watchers have as many events to send.
    let report = app
        .import(
            crate::helpers::many(1_000)
                .into_iter()
                .map(|m| pb::ImportMeetingsRequest {
                    meeting: Some(m),
                    request_id: String::new(),
                    ..Default::default()
                })
                .collect(),
        )
        .await;
    assert_eq!(report.created_count, 1_000);
    let created = app.create(meeting("2022-05-05", &["FR", "DE"])).await;
    let mut watchers = Vec::new();
    let mut pair_streams = Vec::new();
    for c in 0..4 {
        let channel = app.channel().await;
        for _ in 0..250 {
            let mut client = MeetingServiceClient::new(channel.clone());
            if c % 2 == 0 {
                watchers.push(
                    client
                        .watch_meetings(pb::WatchMeetingsRequest::default())
                        .await
                        .expect("the watch opens")
                        .into_inner(),
                );
            } else {
                // Pair streams whose reader does not read.
                pair_streams.push(
                    client
                        .stream_meetings_by_country_pair(pb::StreamMeetingsByCountryPairRequest {
                            country_a: "AZ".into(),
                            country_b: "JP".into(),
                            ..Default::default()
                        })
                        .await
                        .expect("the stream opens")
                        .into_inner(),
                );
            }
        }
    }
    assert_eq!(watchers.len() + pair_streams.len(), 1_000);
    tokio::time::sleep(Duration::from_secs(2)).await;
    // While they wait, at most one query runs at any moment (the health
    // check's or the change feed's).
    let mut most = 0;
    for _ in 0..20 {
        most = most.max(active_queries(&app).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        most <= 1,
        "{most} queries ran at once while 1,000 streams waited"
    );
    let started = Instant::now();
    let got = app
        .get(&created.id)
        .await
        .expect("a unary call is served while 1,000 streams are open");
    assert_eq!(got, created);
    assert!(started.elapsed() < Duration::from_secs(10));
    // The streams were open, not ended: a few read to their end find every
    // meeting of the pair.
    for stream in pair_streams.iter_mut().take(3) {
        let mut n = 0;
        while let Some(item) = stream.message().await.unwrap() {
            assert!(item.meeting.is_some());
            n += 1;
        }
        assert_eq!(n, 1_000);
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Mixed traffic from one client task until `until`; returns unexpected errors.
async fn traffic(channel: Channel, worker: usize, until: Instant) -> Vec<String> {
    let mut client = MeetingServiceClient::new(channel).max_decoding_message_size(64 << 20);
    let mut unexpected = Vec::new();
    let mut ids = Vec::new();
    let mut i = 0usize;
    while Instant::now() < until {
        i += 1;
        let result = match i % 4 {
            0 | 1 => client
                .create_meeting(pb::CreateMeetingRequest {
                    meeting: Some(meeting(
                        &format!("2022-01-{:02}", 1 + i % 28),
                        &["AZ", "JP"],
                    )),
                    request_id: format!("soak-{worker}-{i}"),
                    ..Default::default()
                })
                .await
                .map(|r| ids.push(r.into_inner().meeting.unwrap().id)),
            2 => match ids.last() {
                Some(id) => client
                    .get_meeting(pb::GetMeetingRequest { id: id.clone() })
                    .await
                    .map(drop),
                None => Ok(()),
            },
            _ => {
                let stream = client
                    .stream_meetings_by_country_pair(pb::StreamMeetingsByCountryPairRequest {
                        country_a: "JP".into(),
                        country_b: "AZ".into(),
                        from_date: "2022-01-20".into(),
                        ..Default::default()
                    })
                    .await;
                match stream {
                    Ok(s) => {
                        let mut s = s.into_inner();
                        let mut r = Ok(());
                        for _ in 0..50 {
                            match s.message().await {
                                Ok(Some(_)) => {}
                                Ok(None) => break,
                                Err(e) => {
                                    r = Err(e);
                                    break;
                                }
                            }
                        }
                        r
                    }
                    Err(e) => Err(e),
                }
            }
        };
        if let Err(status) = result {
            unexpected.push(format!("{:?}: {}", status.code(), status.message()));
        }
    }
    unexpected
}

#[tokio::test]
async fn a_soak_of_mixed_traffic_has_no_errors_and_bounded_memory() {
    let app = spawn_app().await;
    let url = app.pool.connect_options().to_url_lossy().to_string();
    let mut server = ServerProcess::start(&url, &[], "warn").await;
    let pid = server.child.id().unwrap();
    let mut channels = Vec::new();
    for _ in 0..4 {
        channels.push(server.channel().await.unwrap());
    }

    let run = |seconds: u64| {
        let until = Instant::now() + Duration::from_secs(seconds);
        let tasks: Vec<_> = (0..16)
            .map(|w| tokio::spawn(traffic(channels[w % channels.len()].clone(), w, until)))
            .collect();
        async move {
            let mut unexpected = Vec::new();
            for t in tasks {
                unexpected.extend(t.await.unwrap());
            }
            unexpected
        }
    };
    // Warm-up, then the soak itself.
    let warm = run(3).await;
    assert!(warm.is_empty(), "{warm:?}");
    let after_warm_up = rss_kib(pid);
    let unexpected = run(12).await;
    let at_end = rss_kib(pid);
    assert!(unexpected.is_empty(), "unexpected errors: {unexpected:?}");
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the server is still running"
    );
    // Stated bound: at most 32 MiB above the memory after warm-up.
    assert!(
        at_end <= after_warm_up + 32 * 1024,
        "RSS grew from {after_warm_up} KiB after warm-up to {at_end} KiB"
    );
    server.child.kill().await.unwrap();
}
