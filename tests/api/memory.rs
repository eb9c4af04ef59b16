//! Memory stays bounded under many concurrent imports of large records:
//! the server (a real process, so that its memory is its own) holds at
//! most its import memory budget in records, however many imports run.

use std::time::Duration;

use meetings::pb;
use meetings::pb::meeting_service_client::MeetingServiceClient;

use crate::helpers::{ServerProcess, Settings, meeting, spawn_app, spawn_app_with};

const STREAMS: usize = 64;
const RECORDS_PER_STREAM: usize = 80;
/// The budget the server runs with here (--import-memory-mb).
const BUDGET_MB: u64 = 32;
/// What the test allows the server's resident memory to grow by. The
/// records sent come to about 64 × 80 × 118 kB = 600 MB; without the
/// budget the server grows by about 1,000 MB (its batches cap at 4 MiB and
/// four commit at once per import). Within the budget, growth is the
/// budget's records in their decoded forms (about three times their
/// bytes), plus each stream's HTTP/2 receive window and decoding buffer,
/// plus the allocator's slack: 350 MB alone, 430 MB while the rest of the
/// suite runs (see docs/robustness.md).
const MAX_GROWTH_MB: u64 = 600;

/// A record near the size limits: a 20,000-character summary, 200
/// participants with long names and titles, 100 topics.
fn large(stream: usize, i: usize) -> pb::ImportMeetingsRequest {
    let day = stream * RECORDS_PER_STREAM + i;
    let date = chrono::NaiveDate::from_ymd_opt(1990, 1, 1).unwrap() + chrono::Days::new(day as u64);
    let mut m = meeting(&date.format("%Y-%m-%d").to_string(), &["AZ", "JP"]);
    m.summary = "外交関係樹立三十周年記念会談。".repeat(20_000 / 15);
    m.participants = (0..200)
        .map(|p| pb::Participant {
            name: format!("Delegate {p} {}", "Abcdefghij ".repeat(12).trim_end()),
            title: format!(
                "Deputy Minister {}",
                "of Foreign Affairs ".repeat(6).trim_end()
            ),
            country_code: if p % 2 == 0 { "AZ" } else { "JP" }.into(),
            ..Default::default()
        })
        .collect();
    m.topics = (0..100).map(|t| format!("topic {t} {day}")).collect();
    pb::ImportMeetingsRequest {
        meeting: Some(m),
        ..Default::default()
    }
}

/// Resident and peak resident memory of process `pid`, in kB.
fn rss_kb(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in /proc/{pid}/status"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

#[tokio::test]
async fn sixty_four_concurrent_imports_of_large_records_stay_within_the_memory_bound() {
    use sqlx::ConnectOptions;
    let app = spawn_app().await;
    let url = app.pool.connect_options().to_url_lossy().to_string();
    let budget = BUDGET_MB.to_string();
    let server = ServerProcess::start(
        &url,
        &["--import-memory-mb".as_ref(), budget.as_ref()],
        "warn",
    )
    .await;
    let pid = server.child.id().unwrap();
    let size = prost::Message::encoded_len(&large(0, 0));
    assert!(size > 100_000, "large records ({size} bytes)");

    // Warm up (pools, caches, allocator arenas) with one import.
    let mut client = MeetingServiceClient::new(server.channel().await.unwrap())
        .max_decoding_message_size(64 << 20);
    let warm = client
        .import_meetings(tokio_stream::iter(
            (0..RECORDS_PER_STREAM).map(|i| large(STREAMS, i)),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(warm.created_count, RECORDS_PER_STREAM as u64);
    let (baseline, _) = rss_kb(pid);

    let mut imports = Vec::new();
    for stream in 0..STREAMS {
        // A connection each, as separate clients would.
        let channel = server.channel().await.unwrap();
        imports.push(tokio::spawn(async move {
            let requests = (0..RECORDS_PER_STREAM).map(move |i| large(stream, i));
            MeetingServiceClient::new(channel)
                .import_meetings(tokio_stream::iter(requests))
                .await
                .map(|r| r.into_inner())
        }));
    }
    let mut created = 0;
    for import in imports {
        let report = tokio::time::timeout(Duration::from_secs(300), import)
            .await
            .expect("imports finish")
            .unwrap()
            .unwrap_or_else(|status| {
                let log = std::fs::read_to_string(server.log.path()).unwrap_or_default();
                panic!("every import succeeds: {status:?}\nserver log:\n{log}")
            });
        assert_eq!(report.rejected_count, 0, "{report:?}");
        created += report.created_count;
    }
    assert_eq!(created, (STREAMS * RECORDS_PER_STREAM) as u64);
    let (_, peak) = rss_kb(pid);
    let growth_mb = peak.saturating_sub(baseline) / 1024;
    println!(
        "{STREAMS} imports of {RECORDS_PER_STREAM} records of {size} bytes: \
         resident memory {} MB before, peak {} MB, growth {growth_mb} MB (budget {BUDGET_MB} MB)",
        baseline / 1024,
        peak / 1024
    );
    assert!(
        growth_mb < MAX_GROWTH_MB,
        "the server grew by {growth_mb} MB under {STREAMS} concurrent imports (bound {MAX_GROWTH_MB} MB)"
    );
    assert_eq!(
        app.count_meetings().await,
        ((STREAMS + 1) * RECORDS_PER_STREAM) as i64
    );
}

/// Imports that share one HTTP/2 connection, with a budget a few records
/// fill: an import waiting for the budget stops reading, which stops the
/// connection's data for the others, so they must give their share back
/// without their next records. Every import finishes, with every record.
#[tokio::test]
async fn imports_on_one_connection_never_deadlock_on_the_budget() {
    let app = spawn_app_with(Settings {
        import_memory_mb: 1,
        ..Settings::default()
    })
    .await;
    let imports: Vec<_> = (0..32)
        .map(|stream| {
            // The app's client: one connection for all.
            let mut client = app.client.clone();
            tokio::spawn(async move {
                let requests = (0..20).map(move |i| large(stream, i));
                client
                    .import_meetings(tokio_stream::iter(requests))
                    .await
                    .map(|r| r.into_inner())
            })
        })
        .collect();
    let mut created = 0;
    for import in imports {
        let report = tokio::time::timeout(Duration::from_secs(120), import)
            .await
            .expect("imports sharing a connection finish")
            .unwrap()
            .expect("every import succeeds");
        created += report.created_count;
    }
    assert_eq!(created, 640);
    assert_eq!(app.count_meetings().await, 640);
}
