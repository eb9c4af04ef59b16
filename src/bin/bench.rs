//! bench: the service's rates next to PostgreSQL's own, side by side in one
//! run. See the README's performance section.
//!
//! It starts a fresh database (an embedded PostgreSQL in a temporary
//! directory, or a new database on the server DATABASE_URL names), starts
//! the service on it as a child process (this binary, re-executed), loads
//! data through the service's RPCs, and measures each figure next to its
//! reference, round after round, quoting medians.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::{NaiveDate, Utc};
use clap::Parser;
use meetings::api::stored_record;
use meetings::domain::NewMeeting;
use meetings::embedded::EmbeddedPostgres;
use meetings::pb;
use meetings::storage::{NewRow, PoolSettings, Storage};
use prost::Message;
use sqlx::ConnectOptions;
use sqlx::postgres::PgConnectOptions;
use tokio::sync::Mutex;
use tonic::transport::Channel;
use uuid::Uuid;

#[derive(Debug, Parser)]
#[command(about = "Measure the meetings service against PostgreSQL's own rates")]
struct Args {
    /// A small, fast run (CI runs this to keep the benchmark working).
    #[arg(long)]
    quick: bool,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Aim at a running server instead of starting one; its database must be
    /// DATABASE_URL (for the references). No RSS figures then.
    #[arg(long)]
    addr: Option<String>,
    /// Rounds per figure; medians are quoted.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Measure only these figures (comma-separated); all when absent.
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Phase>,
    /// HTTP/2 connections the concurrent callers share (at most 32).
    #[arg(long, default_value_t = CLIENTS)]
    connections: usize,
    /// Internal: run as the service (the child process).
    #[arg(long, hide = true)]
    serve: bool,
}

/// The figures a run can measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Phase {
    Create,
    Import,
    Get,
    Stream,
    Rss,
}

/// Sizes of one run.
struct Plan {
    creates_concurrent: usize,
    creates_single: usize,
    gets: usize,
    imports: usize,
    stream_meetings: usize,
    rss_meetings: usize,
}

const CLIENTS: usize = 32;
/// The service's import batch size (see api::IMPORT_BATCH).
const IMPORT_BATCH: usize = 500;
const STREAM_PAIR: (&str, &str) = ("AZ", "JP");

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if args.serve {
        return runtime.block_on(serve());
    }
    runtime.block_on(run(args))
}

/// The child: the service exactly as `meetings` runs it, configured by the
/// environment.
async fn serve() -> anyhow::Result<()> {
    let config = meetings::config::Config::parse_from(["meetings"]);
    meetings::telemetry::init(config.log_format);
    let app = meetings::startup::Application::build(config).await?;
    app.run_until_stopped(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}

async fn run(args: Args) -> anyhow::Result<()> {
    let plan = if args.quick {
        Plan {
            creates_concurrent: 1_000,
            creates_single: 200,
            gets: 4_000,
            imports: 5_000,
            stream_meetings: 5_000,
            rss_meetings: 5_000,
        }
    } else {
        Plan {
            creates_concurrent: 10_000,
            creates_single: 1_000,
            gets: 40_000,
            imports: 100_000,
            stream_meetings: 200_000,
            rss_meetings: 1_000_000,
        }
    };
    let rounds = args.rounds.max(1);

    let db = Database::fresh().await?;
    let storage = Storage::connect(
        db.options.clone(),
        &PoolSettings {
            max_connections: CLIENTS as u32,
            acquire_timeout: Duration::from_secs(30),
        },
    )
    .await?;
    let server = match &args.addr {
        Some(addr) => Server::Remote(addr.clone()),
        None => Server::spawn(&db.options).await?,
    };
    let connections = args.connections.clamp(1, CLIENTS);
    let channel = server.channel().await?;
    let mut report = Report::default();
    println!(
        "bench: {} run, {rounds} rounds, {} cores",
        if args.quick { "quick" } else { "full" },
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    // CreateMeeting at 32 and at 1 client, next to the same statement
    // through sqlx at the same concurrency.
    let runs = |phase| args.only.is_empty() || args.only.contains(&phase);
    let mut seq = 0usize;
    for (clients, n, name) in [
        (
            CLIENTS,
            plan.creates_concurrent,
            "CreateMeeting, 32 clients",
        ),
        (1, plan.creates_single, "CreateMeeting, 1 client"),
    ] {
        if !runs(Phase::Create) {
            break;
        }
        let mut svc = Vec::new();
        let mut reference = Vec::new();
        for _ in 0..rounds {
            let batch = sample_meetings(seq, n, None);
            seq += n;
            svc.push(run_creates(server.addr(), connections, clients, batch).await?);
            let batch = sample_meetings(seq, n, None);
            seq += n;
            reference.push(run_direct_inserts(&storage, clients, batch).await?);
        }
        report.add_rates(
            name,
            "meetings/s",
            &svc,
            &reference,
            0.75,
            "the same INSERT through sqlx",
        );
    }

    // ImportMeetings from one client, next to the same rows through the
    // service's multi-row insert; and against one-by-one CreateMeeting from
    // one client, run just before each import round so that each ratio
    // compares two rates taken in the same minute on the same data; its
    // median is quoted. The database settles before each of the two.
    if runs(Phase::Import) {
        let mut svc = Vec::new();
        let mut reference = Vec::new();
        let mut ratios = Vec::new();
        let postmaster = db.postmaster_pid();
        let mut cpu_us = Vec::new();
        for round in 1..=rounds {
            let batch = sample_meetings(seq, 3 * plan.creates_single, None);
            seq += 3 * plan.creates_single;
            settle(&storage).await;
            let single = run_creates(server.addr(), 1, 1, batch).await?;
            settle(&storage).await;
            let cpu = Cpu::read(postmaster, server.pid());
            let wal = wal_stats(&storage).await;
            let import = run_import(server.addr(), seq, plan.imports, None).await?;
            let import_cpu = cpu.map(|c| c.per_record(plan.imports));
            if let (Ok(before), Ok(after)) = (wal, wal_stats(&storage).await) {
                let per = |i: usize| (after[i] - before[i]) as f64 / plan.imports as f64;
                println!(
                    "  WAL a record: {:.0} bytes, {:.2} full-page images, {:.1} records",
                    per(0),
                    per(1),
                    per(2)
                );
            }
            seq += plan.imports;
            let cpu = Cpu::read(postmaster, None);
            reference.push(run_direct_batches(&storage, seq, plan.imports).await?);
            let reference_cpu = cpu.map(|c| c.per_record(plan.imports));
            seq += plan.imports;
            println!(
                "round {round}: ImportMeetings {:.0} records/s, CreateMeeting 1 client {:.0}/s: {:.1}×",
                import.rate,
                single.rate,
                import.rate / single.rate
            );
            if let (Some((db, service)), Some((db_reference, _))) = (import_cpu, reference_cpu) {
                println!(
                    "  CPU µs a record: PostgreSQL {db:.0} (reference {db_reference:.0}), service {service:.0}"
                );
                cpu_us.push((db, db_reference, service));
            }
            ratios.push(import.rate / single.rate);
            svc.push(import);
        }
        report.add_rates(
            &format!("ImportMeetings, {} records, 1 client", plan.imports),
            "records/s",
            &svc,
            &reference,
            0.75,
            "the same rows through the multi-row INSERT, 500 a statement",
        );
        report.add_figure(
            "  ImportMeetings / CreateMeeting 1 client, same round (target ≥ 10)",
            median(&ratios),
            "×",
        );
        if !cpu_us.is_empty() {
            let column =
                |f: fn(&(f64, f64, f64)) -> f64| median(&cpu_us.iter().map(f).collect::<Vec<_>>());
            report.add_figure(
                "  PostgreSQL CPU a record, ImportMeetings",
                column(|c| c.0),
                "µs",
            );
            report.add_figure(
                "  PostgreSQL CPU a record, reference",
                column(|c| c.1),
                "µs",
            );
            report.add_figure(
                "  service CPU a record, ImportMeetings",
                column(|c| c.2),
                "µs",
            );
        }
    }

    // GetMeeting at 32 clients, next to the same SELECT through sqlx.
    if runs(Phase::Get) {
        if seq == 0 {
            run_import(server.addr(), seq, 10_000, None).await?;
            seq += 10_000;
        }
        let ids = sample_ids(&storage, 10_000).await?;
        let mut svc = Vec::new();
        let mut reference = Vec::new();
        for _ in 0..rounds {
            svc.push(run_gets(server.addr(), connections, CLIENTS, &ids, plan.gets).await?);
            reference.push(run_direct_gets(&storage, &ids, plan.gets).await?);
        }
        report.add_rates(
            "GetMeeting, 32 clients",
            "calls/s",
            &svc,
            &reference,
            0.75,
            "the same SELECT through sqlx",
        );
    }

    // StreamMeetingsByCountryPair over one pair, next to psql's \copy of the
    // same full records.
    let mut in_pair = 0;
    if runs(Phase::Stream) {
        let load = load_pair(server.addr(), plan.stream_meetings, &mut seq).await?;
        in_pair = plan.stream_meetings;
        println!(
            "loaded {} {}-{} meetings at {:.0}/s through ImportMeetings",
            plan.stream_meetings, STREAM_PAIR.0, STREAM_PAIR.1, load
        );
        let mut svc = Vec::new();
        let mut reference = Vec::new();
        let mut first = Vec::new();
        for _ in 0..rounds {
            let s = run_stream(&channel, None).await?;
            if s.records != plan.stream_meetings {
                bail!(
                    "the stream returned {} meetings, expected {}",
                    s.records,
                    plan.stream_meetings
                );
            }
            first.push(s.first_record.as_secs_f64() * 1e3);
            svc.push(Sample::rate(s.records, s.elapsed));
            reference.push(run_psql_copy(&db.options, plan.stream_meetings)?);
        }
        report.add_rates(
            &format!(
                "StreamMeetingsByCountryPair, {} meetings",
                plan.stream_meetings
            ),
            "meetings/s",
            &svc,
            &reference,
            1.5,
            "psql \\copy of the same full records to /dev/null",
        );
        report.add_figure("  time to first record", median(&first), "ms");
    }

    // Memory of the server process while it streams a large pair.
    if let Some(pid) = server.pid().filter(|_| runs(Phase::Rss)) {
        if plan.rss_meetings > in_pair {
            load_pair(server.addr(), plan.rss_meetings - in_pair, &mut seq).await?;
        }
        let rest = rss_kib(pid)?;
        let peak = Arc::new(Mutex::new(rest));
        let sampler = {
            let peak = peak.clone();
            tokio::spawn(async move {
                loop {
                    if let Ok(kib) = rss_kib(pid) {
                        let mut p = peak.lock().await;
                        *p = (*p).max(kib);
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        };
        let s = run_stream(&channel, None).await?;
        sampler.abort();
        let peak = *peak.lock().await;
        report.add_figure("server RSS at rest", rest as f64 / 1024.0, "MiB");
        report.add_figure(
            &format!(
                "server RSS peak above rest, streaming {} meetings (target < 64)",
                s.records
            ),
            peak.saturating_sub(rest) as f64 / 1024.0,
            "MiB",
        );
    }

    report.print();
    if let Some(path) = &args.json {
        std::fs::write(path, report.json())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    server.stop();
    storage.pool().close().await;
    db.drop().await;
    Ok(())
}

// ---------------------------------------------------------------- data

const TOPICS: [&str; 16] = [
    "energy",
    "alternative energy",
    "economy",
    "humanitarian cooperation",
    "inter-parliamentary relations",
    "energy security",
    "liberated territories",
    "restoration and reconstruction",
    "demining",
    "ecology and environmental protection",
    "cultural heritage",
    "normalization of relations",
    "regional peace and development",
    "cooperation within international organizations",
    "regional issues",
    "situation in Ukraine",
];

const OTHER_PAIRS: [(&str, &str); 6] = [
    ("TR", "GE"),
    ("FR", "DE"),
    ("US", "CA"),
    ("IN", "BR"),
    ("KZ", "UZ"),
    ("IT", "ES"),
];

/// Meetings shaped like the AZERTAC example (2 participants, 16 topics, a
/// summary, a source), on the given pair or spread over other pairs.
fn sample_meetings(start: usize, n: usize, pair: Option<(&str, &str)>) -> Vec<pb::Meeting> {
    (start..start + n)
        .map(|i| sample_meeting(i, pair))
        .collect()
}

fn sample_meeting(i: usize, pair: Option<(&str, &str)>) -> pb::Meeting {
    {
        {
            let (a, b) = pair.unwrap_or(OTHER_PAIRS[i % OTHER_PAIRS.len()]);
            let date = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap()
                + chrono::Days::new((i * 7 % 45_000) as u64);
            pb::Meeting {
                date: date.to_string(),
                location: Some(pb::Location { city: "Baku".into(), country_code: a.into() }),
                participants: vec![
                    pb::Participant { name: format!("Minister {i}"), title: "Minister of Foreign Affairs".into(), country_code: a.into() },
                    pb::Participant {
                        name: format!("Vice-Minister {i}"),
                        title: "Parliamentary Vice-Minister for Foreign Affairs".into(),
                        country_code: b.into(),
                    },
                ],
                anniversary: Some(pb::Anniversary { years: 30, occasion: "establishment of diplomatic relations".into() }),
                topics: TOPICS.iter().map(|t| (*t).to_owned()).collect(),
                summary: "The sides exchanged views on cooperation in energy, alternative energy, the economy, humanitarian \
                          and inter-parliamentary relations, the reconstruction of the liberated territories and demining, \
                          cooperation within international organizations and regional issues, including the situation in Ukraine."
                    .into(),
                sources: vec![pb::Source { name: "AZERTAC".into(), url: format!("https://azertag.az/en/{i}") }],
                ..Default::default()
            }
        }
    }
}

// ---------------------------------------------------------------- runs

/// One round's outcome: a rate and, for calls, latencies.
#[derive(Debug, Clone, Default)]
struct Sample {
    rate: f64,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
}

impl Sample {
    fn rate(count: usize, elapsed: Duration) -> Self {
        Self {
            rate: count as f64 / elapsed.as_secs_f64(),
            ..Self::default()
        }
    }

    fn calls(mut latencies: Vec<Duration>, elapsed: Duration) -> Self {
        latencies.sort();
        let pick = |q: f64| {
            latencies
                .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
                .map(|d| d.as_secs_f64() * 1e3)
        };
        Self {
            rate: latencies.len() as f64 / elapsed.as_secs_f64(),
            p50_ms: pick(0.50),
            p99_ms: pick(0.99),
        }
    }
}

/// Runs `work` over `items` on `workers` concurrent tasks, timing each call.
async fn concurrently<T, W, F>(workers: usize, items: Vec<T>, work: W) -> anyhow::Result<Sample>
where
    T: Send + 'static,
    W: Fn(usize, T) -> F + Send + Sync + Clone + 'static,
    F: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let queue = Arc::new(Mutex::new(items.into_iter()));
    let started = Instant::now();
    let tasks: Vec<_> = (0..workers)
        .map(|w| {
            let queue = queue.clone();
            let work = work.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let Some(item) = queue.lock().await.next() else {
                        break;
                    };
                    let t = Instant::now();
                    work(w, item).await?;
                    latencies.push(t.elapsed());
                }
                anyhow::Ok(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await??);
    }
    Ok(Sample::calls(latencies, started.elapsed()))
}

/// CreateMeeting of each of `meetings`, `callers` at a time.
async fn run_creates(
    addr: &str,
    connections: usize,
    callers: usize,
    meetings: Vec<pb::Meeting>,
) -> anyhow::Result<Sample> {
    let messages = meetings
        .into_iter()
        .map(|m| {
            pb::CreateMeetingRequest {
                meeting: Some(m),
                request_id: String::new(),
            }
            .encode_to_vec()
        })
        .collect();
    raw_calls(addr, connections, callers, "CreateMeeting", messages).await
}

/// Meetings as the service stores them: validated, with id and record.
fn rows_for(meetings: impl IntoIterator<Item = pb::Meeting>) -> Vec<NewRow> {
    let today = Utc::now().date_naive();
    let now = Utc::now();
    meetings
        .into_iter()
        .map(|m| {
            let meeting =
                NewMeeting::parse(m, "meeting", today).expect("sample meetings are valid");
            let id = Uuid::now_v7();
            let record = stored_record(&meeting, id, now, now, 1).encode_to_vec();
            NewRow {
                id,
                meeting,
                create_time: now,
                update_time: now,
                version: 1,
                record,
                request_id: None,
                request_digest: None,
            }
        })
        .collect()
}

/// The reference for CreateMeeting: the service's own insert statement,
/// through sqlx, with the rows prepared beforehand.
async fn run_direct_inserts(
    storage: &Storage,
    workers: usize,
    meetings: Vec<pb::Meeting>,
) -> anyhow::Result<Sample> {
    let storage = storage.clone();
    concurrently(workers, rows_for(meetings), move |_, row| {
        let storage = storage.clone();
        async move {
            storage.insert_meetings(std::slice::from_ref(&row)).await?;
            Ok(())
        }
    })
    .await
}

/// ImportMeetings of `n` meetings from one client; returns records/s. The
/// requests are encoded before the clock starts and sent as one HTTP/2
/// stream as fast as flow control allows (as `raw_calls` does for unary
/// calls), so the figure is the service's, not the bench client's: the
/// reference's rows are prepared beforehand too.
async fn run_import(
    addr: &str,
    start: usize,
    n: usize,
    pair: Option<(&'static str, &'static str)>,
) -> anyhow::Result<Sample> {
    let mut body = bytes::BytesMut::new();
    for i in start..start + n {
        let message = pb::ImportMeetingsRequest {
            meeting: Some(sample_meeting(i, pair)),
            request_id: String::new(),
        }
        .encode_to_vec();
        body.extend_from_slice(&grpc_frame(&message)?);
    }
    let mut body = body.freeze();
    let mut sender = h2_connect(addr).await?.ready().await?;
    let started = Instant::now();
    let (response, mut send) =
        sender.send_request(grpc_request(method_uri(addr, "ImportMeetings")?)?, false)?;
    while !body.is_empty() {
        send.reserve_capacity(body.len().min(1 << 20));
        let Some(capacity) = std::future::poll_fn(|cx| send.poll_capacity(cx)).await else {
            break; // the server ended the call early; its status says why
        };
        let chunk = body.split_to(capacity?.min(body.len()));
        send.send_data(chunk, body.is_empty())?;
    }
    let (_, message, status) = grpc_response(response.await?, true).await?;
    let elapsed = started.elapsed();
    let report = match status.as_deref() {
        Some("0") => pb::ImportMeetingsResponse::decode(message.get(5..).unwrap_or_default())?,
        _ => bail!("ImportMeetings: grpc-status {status:?}"),
    };
    if report.created_count != n as u64 {
        bail!(
            "import created {} of {n} meetings: {report:?}",
            report.created_count
        );
    }
    Ok(Sample::rate(n, elapsed))
}

/// The reference for ImportMeetings: the same rows through the service's own
/// multi-row insert, in batches of the same size, prepared beforehand.
async fn run_direct_batches(storage: &Storage, start: usize, n: usize) -> anyhow::Result<Sample> {
    let mut elapsed = Duration::ZERO;
    for chunk_start in (start..start + n).step_by(IMPORT_BATCH) {
        let end = (chunk_start + IMPORT_BATCH).min(start + n);
        let rows = rows_for((chunk_start..end).map(|i| sample_meeting(i, None)));
        let started = Instant::now();
        storage.insert_meetings(&rows).await?;
        elapsed += started.elapsed();
    }
    Ok(Sample::rate(n, elapsed))
}

/// Lets the database settle before a measured run: flushes what earlier
/// runs wrote, and waits (up to a minute) for autovacuum workers that their
/// inserts started, so that neither lands on the next run. CHECKPOINT needs
/// superuser or pg_checkpoint on a shared server; without them the runs go
/// on as they are.
async fn settle(storage: &Storage) {
    let _ = sqlx::query("CHECKPOINT").execute(storage.pool()).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let busy: Result<bool, _> = sqlx::query_scalar(
            "SELECT exists(SELECT 1 FROM pg_stat_activity WHERE backend_type = 'autovacuum worker')",
        )
        .fetch_one(storage.pool())
        .await;
        if !matches!(busy, Ok(true)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// WAL written so far: bytes (exact, from the insert position), full-page
/// images and records (pg_stat_wal, as backends have reported them).
async fn wal_stats(storage: &Storage) -> Result<[i64; 3], sqlx::Error> {
    let (bytes, fpi, records): (i64, i64, i64) = sqlx::query_as(
        "SELECT (pg_current_wal_lsn() - '0/0')::int8, wal_fpi, wal_records FROM pg_stat_wal",
    )
    .fetch_one(storage.pool())
    .await?;
    Ok([bytes, fpi, records])
}

async fn sample_ids(storage: &Storage, n: i64) -> anyhow::Result<Vec<Uuid>> {
    Ok(
        sqlx::query_scalar("SELECT id FROM meetings ORDER BY random() LIMIT $1")
            .bind(n)
            .fetch_all(storage.pool())
            .await?,
    )
}

fn spread(ids: &[Uuid], n: usize) -> Vec<Uuid> {
    (0..n).map(|i| ids[(i * 7919) % ids.len()]).collect()
}

/// Unary calls from a minimal HTTP/2 client: gRPC framing by hand, `callers`
/// concurrent callers over `connections` connections, each response checked
/// for its grpc-status and a non-empty message, whose bytes are not parsed (as
/// the references take the record column from PostgreSQL). A tonic client
/// spends about a third of the 2 shared cores on its own at GetMeeting's
/// rate, and its request hops through a buffer task before reaching the
/// connection; this one leaves the cores to the server and PostgreSQL, as
/// h2load would.
async fn raw_calls(
    addr: &str,
    connections: usize,
    callers: usize,
    method: &str,
    messages: Vec<Vec<u8>>,
) -> anyhow::Result<Sample> {
    let mut senders = Vec::with_capacity(connections);
    for _ in 0..connections {
        senders.push(h2_connect(addr).await?);
    }
    let uri = method_uri(addr, method)?;
    let method = method.to_owned();
    let frames = messages
        .iter()
        .map(|m| grpc_frame(m).map(bytes::Bytes::from))
        .collect::<anyhow::Result<Vec<_>>>()?;
    concurrently(callers, frames, move |w, frame| {
        let sender = senders[w % senders.len()].clone();
        let request = grpc_request(uri.clone());
        let method = method.clone();
        async move {
            let mut sender = sender.ready().await?;
            let (response, mut send) = sender.send_request(request?, false)?;
            send.send_data(frame, true)?;
            let (received, _, status) = grpc_response(response.await?, false).await?;
            if status.as_deref() != Some("0") || received <= 5 {
                bail!("{method}: grpc-status {status:?}, {received} bytes");
            }
            Ok(())
        }
    })
    .await
}

/// One HTTP/2 connection, without TCP's Nagle delay.
async fn h2_connect(addr: &str) -> anyhow::Result<h2::client::SendRequest<bytes::Bytes>> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let (sender, connection) = h2::client::handshake(tcp).await?;
    tokio::spawn(connection);
    Ok(sender)
}

/// The path of `method` of the service on the server at `addr`.
fn method_uri(addr: &str, method: &str) -> anyhow::Result<http::Uri> {
    Ok(format!("http://{addr}/meetings.v1.MeetingService/{method}").parse()?)
}

/// The headers of a gRPC call to `uri` (see `method_uri`).
fn grpc_request(uri: http::Uri) -> anyhow::Result<http::Request<()>> {
    Ok(http::Request::post(uri)
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())?)
}

/// A message with gRPC's 5-byte prefix (uncompressed, length).
fn grpc_frame(message: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut frame = Vec::with_capacity(5 + message.len());
    frame.push(0);
    frame.extend_from_slice(&u32::try_from(message.len())?.to_be_bytes());
    frame.extend_from_slice(message);
    Ok(frame)
}

/// A call's response: its length, its body if `keep` (unparsed), and its
/// grpc-status (from the trailers, or from the headers of a call that
/// failed at once).
async fn grpc_response(
    response: http::Response<h2::RecvStream>,
    keep: bool,
) -> anyhow::Result<(usize, Vec<u8>, Option<String>)> {
    let status = |h: &http::HeaderMap| {
        h.get("grpc-status")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let early = status(response.headers());
    let mut body = response.into_body();
    let mut received = 0;
    let mut kept = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk?;
        received += chunk.len();
        if keep {
            kept.extend_from_slice(&chunk);
        }
        let _ = body.flow_control().release_capacity(chunk.len());
    }
    let trailers = body.trailers().await?;
    Ok((
        received,
        kept,
        early.or_else(|| trailers.as_ref().and_then(status)),
    ))
}

/// GetMeeting of `n` ids spread over `ids`.
async fn run_gets(
    addr: &str,
    connections: usize,
    callers: usize,
    ids: &[Uuid],
    n: usize,
) -> anyhow::Result<Sample> {
    let messages = spread(ids, n)
        .into_iter()
        .map(|id| pb::GetMeetingRequest { id: id.to_string() }.encode_to_vec())
        .collect();
    raw_calls(addr, connections, callers, "GetMeeting", messages).await
}

async fn run_direct_gets(storage: &Storage, ids: &[Uuid], n: usize) -> anyhow::Result<Sample> {
    let storage = storage.clone();
    concurrently(CLIENTS, spread(ids, n), move |_, id| {
        let storage = storage.clone();
        async move {
            storage
                .get_meeting(id)
                .await?
                .context("sampled id exists")?;
            Ok(())
        }
    })
    .await
}

/// Stores `n` meetings on the stream pair through ImportMeetings, at most
/// 100,000 a call (each call's requests are encoded up front); returns the
/// rate.
async fn load_pair(addr: &str, n: usize, seq: &mut usize) -> anyhow::Result<f64> {
    let mut seconds = 0.0;
    for chunk in (0..n).step_by(100_000) {
        let size = (n - chunk).min(100_000);
        seconds += size as f64 / run_import(addr, *seq, size, Some(STREAM_PAIR)).await?.rate;
        *seq += size;
    }
    Ok(n as f64 / seconds)
}

/// A message whose fields are skipped: the client receives every record
/// without spending CPU on decoding it, as psql writing to /dev/null does.
#[derive(Clone, PartialEq, prost::Message)]
struct Skipped {}

struct StreamRun {
    records: usize,
    elapsed: Duration,
    first_record: Duration,
}

async fn run_stream(channel: &Channel, newest_first: Option<bool>) -> anyhow::Result<StreamRun> {
    let mut grpc = tonic::client::Grpc::new(channel.clone()).max_decoding_message_size(64 << 20);
    grpc.ready().await?;
    let request = pb::StreamMeetingsByCountryPairRequest {
        country_a: STREAM_PAIR.0.into(),
        country_b: STREAM_PAIR.1.into(),
        newest_first: newest_first.unwrap_or(false),
        ..Default::default()
    };
    let started = Instant::now();
    let path = http::uri::PathAndQuery::from_static(
        "/meetings.v1.MeetingService/StreamMeetingsByCountryPair",
    );
    let codec =
        tonic_prost::ProstCodec::<pb::StreamMeetingsByCountryPairRequest, Skipped>::default();
    let mut stream = grpc
        .server_streaming(tonic::Request::new(request), path, codec)
        .await?
        .into_inner();
    let mut records = 0;
    let mut first_record = Duration::ZERO;
    while stream.message().await?.is_some() {
        if records == 0 {
            first_record = started.elapsed();
        }
        records += 1;
    }
    Ok(StreamRun {
        records,
        elapsed: started.elapsed(),
        first_record,
    })
}

/// psql's own export of the same full records: each meeting with its
/// participants, topics and sources, in stream order, to /dev/null.
fn run_psql_copy(options: &PgConnectOptions, expected: usize) -> anyhow::Result<Sample> {
    let (low, high) = if STREAM_PAIR.0 < STREAM_PAIR.1 {
        STREAM_PAIR
    } else {
        (STREAM_PAIR.1, STREAM_PAIR.0)
    };
    let query = format!(
        "\\copy (SELECT m.id, m.date, m.location_city, m.location_country_code, m.anniversary_years, \
         m.anniversary_occasion, m.summary, m.country_codes, m.create_time, m.update_time, \
         (SELECT json_agg(json_build_object('name', p.name, 'title', p.title, 'country_code', p.code) ORDER BY p.i) \
            FROM unnest(m.participant_names, m.participant_titles, m.participant_country_codes) \
                 WITH ORDINALITY AS p (name, title, code, i)), \
         m.topics, m.source_names, m.source_urls \
         FROM meeting_country_pairs cp JOIN meetings m ON m.id = cp.meeting_id \
         WHERE cp.country_low = '{low}' AND cp.country_high = '{high}' \
         ORDER BY cp.date, cp.meeting_id) TO '/dev/null'"
    );
    let mut cmd = Command::new("psql");
    cmd.args(["-X", "-q", "-v", "ON_ERROR_STOP=1"])
        .arg("-h")
        .arg(
            options
                .get_socket()
                .map(|p| p.to_path_buf())
                .unwrap_or_else(|| options.get_host().into()),
        )
        .args([
            "-p",
            &options.get_port().to_string(),
            "-U",
            options.get_username(),
        ])
        .args([
            "-d",
            options.get_database().unwrap_or("postgres"),
            "-c",
            &query,
        ])
        .stdout(Stdio::piped());
    let started = Instant::now();
    let out = cmd
        .output()
        .context("cannot run psql (install PostgreSQL's client)")?;
    let elapsed = started.elapsed();
    if !out.status.success() {
        bail!("psql failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let copied: usize = String::from_utf8_lossy(&out.stdout)
        .trim()
        .trim_start_matches("COPY ")
        .parse()
        .unwrap_or(expected);
    if copied != expected {
        bail!("psql copied {copied} records, expected {expected}");
    }
    Ok(Sample::rate(copied, elapsed))
}

fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS")
}

/// CPU seconds of PostgreSQL (the postmaster and its children) and of the
/// service process, at one moment.
#[derive(Clone, Copy)]
struct Cpu {
    db: f64,
    service: f64,
    service_pid: Option<u32>,
    postmaster: u32,
}

impl Cpu {
    /// None without an embedded server (no postmaster to read).
    fn read(postmaster: Option<u32>, service_pid: Option<u32>) -> Option<Self> {
        let postmaster = postmaster?;
        Some(Self {
            db: cpu_seconds(postmaster, true).ok()?,
            service: service_pid.map_or(Some(0.0), |p| cpu_seconds(p, false).ok())?,
            service_pid,
            postmaster,
        })
    }

    /// Microseconds of CPU a record since `self`: (PostgreSQL, service).
    fn per_record(self, records: usize) -> (f64, f64) {
        let now = Self::read(Some(self.postmaster), self.service_pid).unwrap_or(self);
        let us = |seconds: f64| seconds * 1e6 / records as f64;
        (us(now.db - self.db), us(now.service - self.service))
    }
}

/// Linux's USER_HZ: /proc reports CPU times in these ticks.
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU time (user and system) spent so far by process `pid` and, with
/// `children`, by its children: those alive now and those it has reaped.
/// For the postmaster, that is the whole PostgreSQL server.
fn cpu_seconds(pid: u32, children: bool) -> anyhow::Result<f64> {
    // Fields after the command's closing parenthesis, from field 3 (state).
    let fields = |pid: &str| -> anyhow::Result<Vec<u64>> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        let rest = stat.rsplit_once(')').context("malformed stat")?.1;
        Ok(rest
            .split_whitespace()
            .skip(1)
            .map(|f| f.parse().unwrap_or(0))
            .collect())
    };
    // Field n of proc(5) at n - 4: ppid 0, utime 10, stime 11, cutime 12, cstime 13.
    let own = fields(&pid.to_string())?;
    let mut ticks = own[10] + own[11];
    if children {
        ticks += own[12] + own[13];
        for entry in std::fs::read_dir("/proc")? {
            let name = entry?.file_name();
            let Some(name) = name
                .to_str()
                .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
            else {
                continue;
            };
            // A process may exit between the listing and the read.
            if let Ok(f) = fields(name)
                && f[0] == u64::from(pid)
            {
                ticks += f[10] + f[11];
            }
        }
    }
    Ok(ticks as f64 / TICKS_PER_SECOND)
}

// ---------------------------------------------------------------- setup

struct Database {
    options: PgConnectOptions,
    embedded: Option<(EmbeddedPostgres, tempfile::TempDir)>,
    shared: Option<(PgConnectOptions, String)>,
}

impl Database {
    async fn fresh() -> anyhow::Result<Self> {
        use sqlx::Connection;
        if let Ok(url) = std::env::var("DATABASE_URL") {
            let admin: PgConnectOptions = url.parse()?;
            let name = format!("meetings_bench_{}", Uuid::now_v7().simple());
            let mut conn = sqlx::PgConnection::connect_with(&admin).await?;
            sqlx::query(sqlx::AssertSqlSafe(format!(r#"CREATE DATABASE "{name}""#)))
                .execute(&mut conn)
                .await?;
            return Ok(Self {
                options: admin.clone().database(&name),
                embedded: None,
                shared: Some((admin, name)),
            });
        }
        let dir = tempfile::tempdir()?;
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )?;
        let pg = EmbeddedPostgres::start(dir.path(), &[]).await?;
        Ok(Self {
            options: pg.connect_options(),
            embedded: Some((pg, dir)),
            shared: None,
        })
    }

    /// The embedded server's postmaster, whose CPU time covers PostgreSQL's.
    fn postmaster_pid(&self) -> Option<u32> {
        let (pg, _) = self.embedded.as_ref()?;
        let pid = std::fs::read_to_string(pg.data_dir().join("pgdata/postmaster.pid")).ok()?;
        pid.lines().next()?.trim().parse().ok()
    }

    async fn drop(self) {
        use sqlx::Connection;
        if let Some((pg, _dir)) = self.embedded {
            pg.stop().await;
        }
        if let Some((admin, name)) = self.shared
            && let Ok(mut conn) = sqlx::PgConnection::connect_with(&admin).await
        {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#
            )))
            .execute(&mut conn)
            .await;
        }
    }
}

enum Server {
    Child(Child, String),
    Remote(String),
}

impl Server {
    async fn spawn(options: &PgConnectOptions) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let addr = format!("127.0.0.1:{port}");
        let child = Command::new(std::env::current_exe()?)
            .arg("--serve")
            .env("DATABASE_URL", options.to_url_lossy().to_string())
            .env("MEETINGS_LISTEN_ADDR", &addr)
            .env("MEETINGS_DB_POOL_SIZE", CLIENTS.to_string())
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .spawn()?;
        let server = Self::Child(child, addr);
        let deadline = Instant::now() + Duration::from_secs(60);
        while server.channel().await.is_err() {
            if Instant::now() > deadline {
                bail!("the service did not start");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(server)
    }

    fn addr(&self) -> &str {
        match self {
            Self::Child(_, addr) | Self::Remote(addr) => addr,
        }
    }

    fn pid(&self) -> Option<u32> {
        match self {
            Self::Child(child, _) => Some(child.id()),
            Self::Remote(_) => None,
        }
    }

    /// A tonic channel (one HTTP/2 connection), for the streams.
    async fn channel(&self) -> anyhow::Result<Channel> {
        Ok(Channel::from_shared(format!("http://{}", self.addr()))?
            .connect()
            .await?)
    }

    fn stop(self) {
        if let Self::Child(mut child, _) = self {
            if let Ok(pid) = i32::try_from(child.id()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGINT,
                );
            }
            let _ = child.wait();
        }
    }
}

// ---------------------------------------------------------------- report

#[derive(Default)]
struct Report {
    rows: Vec<Row>,
}

struct Row {
    what: String,
    unit: &'static str,
    service: f64,
    reference: Option<(f64, f64, &'static str)>,
    latency: Option<(f64, f64)>,
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

impl Report {
    fn add_rates(
        &mut self,
        what: &str,
        unit: &'static str,
        svc: &[Sample],
        reference: &[Sample],
        target: f64,
        reference_name: &'static str,
    ) {
        let service = median(&svc.iter().map(|s| s.rate).collect::<Vec<_>>());
        let reference_rate = median(&reference.iter().map(|s| s.rate).collect::<Vec<_>>());
        let latency = svc[0].p50_ms.map(|_| {
            (
                median(&svc.iter().filter_map(|s| s.p50_ms).collect::<Vec<_>>()),
                median(&svc.iter().filter_map(|s| s.p99_ms).collect::<Vec<_>>()),
            )
        });
        self.rows.push(Row {
            what: what.into(),
            unit,
            service,
            reference: Some((reference_rate, target, reference_name)),
            latency,
        });
    }

    fn add_figure(&mut self, what: &str, value: f64, unit: &'static str) {
        self.rows.push(Row {
            what: what.into(),
            unit,
            service: value,
            reference: None,
            latency: None,
        });
    }

    fn print(&self) {
        println!();
        println!("| what | service | p50 / p99 ms | reference | ratio | target |");
        println!("|---|---|---|---|---|---|");
        for r in &self.rows {
            let latency = r
                .latency
                .map_or(String::new(), |(p50, p99)| format!("{p50:.2} / {p99:.2}"));
            match r.reference {
                Some((reference, target, name)) => println!(
                    "| {} | {:.0} {} | {latency} | {:.0} ({name}) | {:.2} | ≥ {target} |",
                    r.what,
                    r.service,
                    r.unit,
                    reference,
                    r.service / reference
                ),
                None => println!(
                    "| {} | {:.1} {} | {latency} | | | |",
                    r.what, r.service, r.unit
                ),
            }
        }
    }

    fn json(&self) -> String {
        let rows: Vec<String> = self
            .rows
            .iter()
            .map(|r| {
                let mut fields = vec![
                    format!("\"what\": {:?}", r.what),
                    format!("\"unit\": {:?}", r.unit),
                    format!("\"service\": {:.3}", r.service),
                ];
                if let Some((reference, target, name)) = r.reference {
                    fields.push(format!("\"reference\": {reference:.3}"));
                    fields.push(format!("\"reference_is\": {name:?}"));
                    fields.push(format!("\"ratio\": {:.3}", r.service / reference));
                    fields.push(format!("\"target_ratio\": {target}"));
                }
                if let Some((p50, p99)) = r.latency {
                    fields.push(format!("\"p50_ms\": {p50:.3}"));
                    fields.push(format!("\"p99_ms\": {p99:.3}"));
                }
                format!("  {{{}}}", fields.join(", "))
            })
            .collect();
        format!("[\n{}\n]\n", rows.join(",\n"))
    }
}
