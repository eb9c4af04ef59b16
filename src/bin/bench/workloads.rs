//! One function per measured workload: the service through its RPCs, and
//! its reference through sqlx or psql.

#[allow(unused_imports)]
use super::*;

/// One round's outcome: a rate and, for calls, latencies.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sample {
    pub(crate) rate: f64,
    pub(crate) p50_ms: Option<f64>,
    pub(crate) p99_ms: Option<f64>,
}

impl Sample {
    pub(crate) fn rate(count: usize, elapsed: Duration) -> Self {
        Self {
            rate: count as f64 / elapsed.as_secs_f64(),
            ..Self::default()
        }
    }

    pub(crate) fn calls(mut latencies: Vec<Duration>, elapsed: Duration) -> Self {
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
pub(crate) async fn concurrently<T, W, F>(
    workers: usize,
    items: Vec<T>,
    work: W,
) -> anyhow::Result<Sample>
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
pub(crate) async fn run_creates(
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
                ..Default::default()
            }
            .encode_to_vec()
        })
        .collect();
    raw_calls(addr, connections, callers, "CreateMeeting", messages).await
}

/// Meetings as the service stores them: validated, with id and record.
pub(crate) fn rows_for(meetings: impl IntoIterator<Item = pb::Meeting>) -> Vec<NewRow> {
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
pub(crate) async fn run_direct_inserts(
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
pub(crate) async fn run_import(
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
            ..Default::default()
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

/// ImportMeetings of `meetings` with `policy`, through the generated client
/// (encoding is not what this figure is about); the response.
pub(crate) async fn run_import_with(
    addr: &str,
    meetings: Vec<pb::Meeting>,
    policy: pb::DuplicatePolicy,
) -> anyhow::Result<pb::ImportMeetingsResponse> {
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    let requests = meetings
        .into_iter()
        .map(move |m| pb::ImportMeetingsRequest {
            meeting: Some(m),
            duplicates: policy as i32,
            ..Default::default()
        });
    let report = pb::meeting_service_client::MeetingServiceClient::new(channel)
        .max_decoding_message_size(64 << 20)
        .import_meetings(tokio_stream::iter(requests))
        .await?
        .into_inner();
    if report.rejected_count > 0 {
        bail!(
            "import rejected {} reports: {:?}",
            report.rejected_count,
            report.rejected.first()
        );
    }
    Ok(report)
}

/// The reference for ImportMeetings: the same rows through the service's own
/// multi-row insert, in batches of the same size, prepared beforehand.
pub(crate) async fn run_direct_batches(
    storage: &Storage,
    start: usize,
    n: usize,
) -> anyhow::Result<Sample> {
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
pub(crate) async fn settle(storage: &Storage) {
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
pub(crate) async fn wal_stats(storage: &Storage) -> Result<[i64; 3], sqlx::Error> {
    let (bytes, fpi, records): (i64, i64, i64) = sqlx::query_as(
        "SELECT (pg_current_wal_lsn() - '0/0')::int8, wal_fpi, wal_records FROM pg_stat_wal",
    )
    .fetch_one(storage.pool())
    .await?;
    Ok([bytes, fpi, records])
}

pub(crate) async fn sample_ids(storage: &Storage, n: i64) -> anyhow::Result<Vec<Uuid>> {
    Ok(
        sqlx::query_scalar("SELECT id FROM meetings ORDER BY random() LIMIT $1")
            .bind(n)
            .fetch_all(storage.pool())
            .await?,
    )
}

pub(crate) fn spread(ids: &[Uuid], n: usize) -> Vec<Uuid> {
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
/// GetMeeting of `n` ids spread over `ids`.
pub(crate) async fn run_gets(
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

pub(crate) async fn run_direct_gets(
    storage: &Storage,
    ids: &[Uuid],
    n: usize,
) -> anyhow::Result<Sample> {
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
pub(crate) async fn load_pair(addr: &str, n: usize, seq: &mut usize) -> anyhow::Result<f64> {
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
pub(crate) struct Skipped {}

pub(crate) struct StreamRun {
    pub(crate) records: usize,
    pub(crate) elapsed: Duration,
    pub(crate) first_record: Duration,
}

pub(crate) async fn run_stream(
    channel: &Channel,
    newest_first: Option<bool>,
) -> anyhow::Result<StreamRun> {
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

/// psql's own export of the same full records: each meeting's columns,
/// participants and topics, and its stored record (the only copy of its
/// summary and sources), in stream order, to /dev/null.
pub(crate) fn run_psql_copy(options: &PgConnectOptions, expected: usize) -> anyhow::Result<Sample> {
    let (low, high) = if STREAM_PAIR.0 < STREAM_PAIR.1 {
        STREAM_PAIR
    } else {
        (STREAM_PAIR.1, STREAM_PAIR.0)
    };
    let query = format!(
        "\\copy (SELECT m.id, m.date, m.location_city, m.location_country_code, m.anniversary_years, \
         m.anniversary_occasion, m.country_codes, m.create_time, m.update_time, \
         m.end_date, m.format, \
         (SELECT json_agg(json_build_object('name', p.name, 'title', p.title, 'party', p.code) ORDER BY p.i) \
            FROM unnest(m.participant_names, m.participant_titles, m.participant_country_codes) \
                 WITH ORDINALITY AS p (name, title, code, i)), \
         m.topics, m.record \
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
