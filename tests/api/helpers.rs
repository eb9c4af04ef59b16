//! One running server per test, on its own database, reached through the
//! generated client.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::sync::LazyLock;
use std::time::Duration;

use clap::Parser;
use futures_util::future::join_all;
use meetings::config::{Config, LogFormat};
use meetings::pb;
use meetings::pb::meeting_service_client::MeetingServiceClient;
use meetings::startup::Application;
use sqlx::postgres::{PgConnectOptions, PgPool};
use sqlx::{ConnectOptions, Connection, PgConnection};
use tokio::sync::oneshot;
use tonic::transport::Channel;
use tonic_types::{ErrorDetails, StatusExt};

/// Logs only when TEST_LOG is set (RUST_LOG picks the level).
static TRACING: LazyLock<()> = LazyLock::new(|| {
    if std::env::var_os("TEST_LOG").is_some() {
        // Outside a runtime: OTLP export is not for the in-process tests.
        let _ = meetings::telemetry::init(LogFormat::Text).map(drop);
    }
});

pub struct TestApp {
    pub addr: SocketAddr,
    /// The admin HTTP listener (/metrics, /healthz, /readyz).
    pub admin: SocketAddr,
    pub client: MeetingServiceClient<Channel>,
    /// The server's own pool (a clone shares its connections).
    pub pool: PgPool,
    stop: Option<oneshot::Sender<()>>,
    /// The server's task; it stops when `stop` is sent (on drop).
    _server: tokio::task::JoinHandle<anyhow::Result<()>>,
    database: TestDatabase,
}

/// Where the test's database lives: a fresh database on the server named by
/// DATABASE_URL, or, when it is unset, the embedded default in a temporary
/// directory.
enum TestDatabase {
    Shared {
        admin: Box<PgConnectOptions>,
        name: String,
    },
    Embedded {
        _dir: tempfile::TempDir,
    },
    /// Another instance's database: nothing to clean up.
    Borrowed,
}

/// Test-specific settings on top of the defaults.
#[derive(Clone)]
pub struct Settings {
    pub db_pool_size: u32,
    pub acquire_timeout_ms: u64,
    pub max_concurrent_calls: usize,
    /// None: the server's default share.
    pub max_calls_per_connection: Option<usize>,
    pub max_calls_per_caller: Option<usize>,
    pub max_request_bytes: usize,
    pub request_timeout_ms: u64,
    pub event_retention_hours: f64,
    pub tokens_file: Option<std::path::PathBuf>,
    /// Streaming replicas that serve reads.
    pub replica_urls: Vec<String>,
    pub replica_max_lag_ms: u64,
    pub replica_wait_ms: u64,
    /// Certificate, key and, for mTLS, the client CA.
    pub tls: Option<(
        std::path::PathBuf,
        std::path::PathBuf,
        Option<std::path::PathBuf>,
    )>,
    /// Origins whose pages may call with gRPC-Web.
    pub cors_allowed_origins: Vec<String>,
    pub import_memory_mb: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            db_pool_size: 16,
            acquire_timeout_ms: 3000,
            max_concurrent_calls: 1024,
            max_calls_per_connection: None,
            max_calls_per_caller: None,
            max_request_bytes: 4 * 1024 * 1024,
            request_timeout_ms: 30_000,
            event_retention_hours: 168.0,
            tokens_file: None,
            replica_urls: Vec::new(),
            replica_max_lag_ms: 5_000,
            replica_wait_ms: 100,
            tls: None,
            cors_allowed_origins: Vec::new(),
            import_memory_mb: 256,
        }
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Settings::default()).await
}

pub async fn spawn_app_with(settings: Settings) -> TestApp {
    spawn(settings, None).await
}

/// A server on the database at `url`, which the test owns.
pub async fn spawn_app_on(url: String, settings: Settings) -> TestApp {
    spawn(settings, Some(url)).await
}

impl TestApp {
    /// A second server instance on this one's database.
    pub async fn second_instance(&self) -> TestApp {
        let url = self.pool.connect_options().to_url_lossy().to_string();
        spawn(Settings::default(), Some(url)).await
    }
}

async fn spawn(settings: Settings, shared_url: Option<String>) -> TestApp {
    LazyLock::force(&TRACING);
    let mut config = Config::parse_from(["meetings"]);
    config.listen_addr = "127.0.0.1:0".parse().unwrap();
    config.admin_addr = meetings::config::OptionalAddr(Some("127.0.0.1:0".parse().unwrap()));
    config.database_url = None;
    config.data_dir = None;
    config.db_pool_size = settings.db_pool_size;
    config.db_acquire_timeout_ms = settings.acquire_timeout_ms;
    config.max_concurrent_calls = settings.max_concurrent_calls;
    config.max_calls_per_connection = settings.max_calls_per_connection;
    config.max_calls_per_caller = settings.max_calls_per_caller;
    config.max_request_bytes = settings.max_request_bytes;
    config.request_timeout_ms = settings.request_timeout_ms;
    config.event_retention_hours = settings.event_retention_hours;
    config.tokens_file = settings.tokens_file.clone();
    config.replica_urls = settings.replica_urls.clone();
    config.replica_max_lag_ms = settings.replica_max_lag_ms;
    config.replica_wait_ms = settings.replica_wait_ms;
    if let Some((cert, key, ca)) = settings.tls.clone() {
        config.tls_cert = Some(cert);
        config.tls_key = Some(key);
        config.tls_client_ca = ca;
    }
    config.cors_allowed_origins = settings.cors_allowed_origins.clone();
    config.import_memory_mb = settings.import_memory_mb;
    config.health_interval_ms = 100;
    config.shutdown_timeout_ms = 2000;
    config.log_format = LogFormat::Text;
    let database = if let Some(url) = shared_url {
        config.database_url = Some(url);
        TestDatabase::Borrowed
    } else if let Ok(url) = std::env::var("DATABASE_URL") {
        let admin: PgConnectOptions = url.parse().expect("DATABASE_URL parses");
        let name = format!("meetings_test_{}", uuid::Uuid::now_v7().simple());
        let mut conn = PgConnection::connect_with(&admin)
            .await
            .expect("DATABASE_URL reachable");
        sqlx::query(sqlx::AssertSqlSafe(format!(r#"CREATE DATABASE "{name}""#)))
            .execute(&mut conn)
            .await
            .expect("can create a test database");
        // A throwaway database need not wait for the disk at each commit.
        sqlx::query(sqlx::AssertSqlSafe(format!(
            r#"ALTER DATABASE "{name}" SET synchronous_commit = off"#
        )))
        .execute(&mut conn)
        .await
        .expect("can configure the test database");
        conn.close().await.ok();
        config.database_url = Some(admin.clone().database(&name).to_url_lossy().to_string());
        TestDatabase::Shared {
            admin: Box::new(admin),
            name,
        }
    } else {
        let dir = tempfile::tempdir().unwrap();
        // The embedded server may run as another user: let it reach its directory.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        config.data_dir = Some(dir.path().to_owned());
        TestDatabase::Embedded { _dir: dir }
    };
    let app = Application::build(config)
        .await
        .expect("application builds");
    let addr = app.local_addr();
    let admin = app.admin_addr().expect("the admin listener is on");
    let pool = app.storage().pool().clone();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    // Lazy: a TLS server is reached through a channel of the test's own.
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_lazy();
    let client = MeetingServiceClient::new(channel).max_decoding_message_size(64 * 1024 * 1024);
    TestApp {
        addr,
        admin,
        client,
        pool,
        stop: Some(stop),
        _server: server,
        database,
    }
}

impl TestApp {
    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    pub async fn create(&self, meeting: pb::Meeting) -> pb::Meeting {
        self.try_create(meeting).await.expect("meeting is created")
    }

    /// CreateMeeting without a request_id.
    pub async fn try_create(&self, meeting: pb::Meeting) -> Result<pb::Meeting, tonic::Status> {
        self.client
            .clone()
            .create_meeting(pb::CreateMeetingRequest {
                meeting: Some(meeting),
                request_id: String::new(),
                ..Default::default()
            })
            .await
            .map(|r| r.into_inner().meeting.expect("response has the meeting"))
    }

    /// DeleteMeeting without an etag; the deletion must succeed.
    pub async fn delete(&self, id: &str) {
        self.client
            .clone()
            .delete_meeting(pb::DeleteMeetingRequest {
                id: id.into(),
                etag: String::new(),
            })
            .await
            .expect("meeting is deleted");
    }

    /// ImportMeetings of `requests`, in one stream; the call must succeed.
    pub async fn import(
        &self,
        requests: Vec<pb::ImportMeetingsRequest>,
    ) -> pb::ImportMeetingsResponse {
        self.client
            .clone()
            .import_meetings(tokio_stream::iter(requests))
            .await
            .expect("import succeeds")
            .into_inner()
    }

    pub async fn get(&self, id: &str) -> Result<pb::Meeting, tonic::Status> {
        self.client
            .clone()
            .get_meeting(pb::GetMeetingRequest { id: id.into() })
            .await
            .map(|r| r.into_inner().meeting.expect("response has the meeting"))
    }

    pub async fn stream(
        &self,
        req: pb::StreamMeetingsByCountryPairRequest,
    ) -> Result<Vec<pb::Meeting>, tonic::Status> {
        let mut stream = self
            .client
            .clone()
            .stream_meetings_by_country_pair(req)
            .await?
            .into_inner();
        let mut out = Vec::new();
        while let Some(item) = stream.message().await? {
            out.push(item.meeting.expect("each message has a meeting"));
        }
        Ok(out)
    }

    pub async fn count_meetings(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM meetings")
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // A failed test keeps its database for inspection.
        if let TestDatabase::Shared { admin, name } = &self.database
            && !std::thread::panicking()
        {
            let (admin, name) = (admin.as_ref().clone(), name.clone());
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    if let Ok(mut conn) = PgConnection::connect_with(&admin).await {
                        let sql = format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#);
                        let _ = sqlx::query(sqlx::AssertSqlSafe(sql))
                            .execute(&mut conn)
                            .await;
                    }
                });
            })
            .join()
            .ok();
        }
    }
}

/// The example article (tests/fixtures/azertac-2022-05-05-azerbaijan-japan.json,
/// the README's walk-through) as a CreateMeetingRequest.
pub fn azertac_request() -> pb::CreateMeetingRequest {
    let json: serde_json::Value = serde_json::from_str(include_str!(
        "../fixtures/azertac-2022-05-05-azerbaijan-japan.json"
    ))
    .unwrap();
    let s = |v: &serde_json::Value, key: &str| v[key].as_str().unwrap_or_default().to_owned();
    let m = &json["meeting"];
    let meeting = pb::Meeting {
        date: s(m, "date"),
        location: Some(pb::Location {
            city: s(&m["location"], "city"),
            country_code: s(&m["location"], "countryCode"),
        }),
        participants: m["participants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| pb::Participant {
                name: s(p, "name"),
                title: s(p, "title"),
                country_code: s(p, "countryCode"),
                ..Default::default()
            })
            .collect(),
        anniversary: Some(pb::Anniversary {
            years: m["anniversary"]["years"].as_u64().unwrap() as u32,
            occasion: s(&m["anniversary"], "occasion"),
        }),
        topics: m["topics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_owned())
            .collect(),
        summary: s(m, "summary"),
        sources: m["sources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| pb::Source {
                name: s(x, "name"),
                url: s(x, "url"),
            })
            .collect(),
        ..Default::default()
    };
    pb::CreateMeetingRequest {
        meeting: Some(meeting),
        request_id: s(&json, "requestId"),
        ..Default::default()
    }
}

/// A small valid meeting between the given countries on `date`.
pub fn meeting(date: &str, countries: &[&str]) -> pb::Meeting {
    pb::Meeting {
        date: date.to_owned(),
        participants: countries
            .iter()
            .enumerate()
            .map(|(i, c)| pb::Participant {
                name: format!("Delegate {i} of {c}"),
                title: "Minister of Foreign Affairs".to_owned(),
                country_code: (*c).to_owned(),
                ..Default::default()
            })
            .collect(),
        topics: vec!["trade".to_owned()],
        ..Default::default()
    }
}

/// The error details of a failed call, checked to carry our ErrorInfo with
/// `reason`.
pub fn assert_error(status: &tonic::Status, code: tonic::Code, reason: &str) -> ErrorDetails {
    assert_eq!(status.code(), code, "unexpected status: {status:?}");
    let details = status.get_error_details();
    let info = details.error_info().expect("every error carries ErrorInfo");
    assert_eq!(info.reason, reason);
    assert_eq!(info.domain, "meetings.v1");
    // A retry can get past these, after the delay the status gives; no
    // other error says to retry.
    let retry = details.retry_info().and_then(|r| r.retry_delay);
    if ["TOO_MANY_CALLS", "DATABASE_UNAVAILABLE", "SHUTTING_DOWN"].contains(&reason) {
        assert!(
            retry.is_some_and(|d| !d.is_zero()),
            "{reason} carries RetryInfo with a delay"
        );
    } else {
        assert_eq!(retry, None, "{reason} carries no RetryInfo");
    }
    details
}

/// The fields named by a BadRequest detail, in order.
pub fn violated_fields(details: &ErrorDetails) -> Vec<String> {
    details
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}

/// Polls `check` until it holds or `within` passes; returns whether it held.
pub async fn eventually<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Creates meetings concurrently; returns them in creation order.
pub async fn create_all(app: &TestApp, meetings: Vec<pb::Meeting>) -> Vec<pb::Meeting> {
    let mut out = Vec::with_capacity(meetings.len());
    let mut queue = meetings.into_iter();
    loop {
        let batch: Vec<_> = queue.by_ref().take(32).map(|m| app.create(m)).collect();
        if batch.is_empty() {
            return out;
        }
        out.extend(join_all(batch).await);
    }
}

/// `n` meetings between AZ and JP, spread over 40,000 days from 1900.
pub fn many(n: usize) -> Vec<pb::Meeting> {
    (0..n)
        .map(|i| {
            let day = chrono::NaiveDate::from_ymd_opt(1900, 1, 1).unwrap()
                + chrono::Days::new((i % 40_000) as u64);
            meeting(&day.to_string(), &["AZ", "JP"])
        })
        .collect()
}

/// Locks a meeting's row until the returned transaction ends, so that a
/// write to it has to wait.
pub async fn hold_row_lock(app: &TestApp, id: &str) -> sqlx::Transaction<'static, sqlx::Postgres> {
    let mut tx = app.pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM meetings WHERE id = $1 FOR UPDATE")
        .bind(uuid::Uuid::parse_str(id).unwrap())
        .execute(&mut *tx)
        .await
        .unwrap();
    tx
}

/// The `meetings` binary serving on `database_url` as its own process, with
/// `extra` flags and RUST_LOG=`log_level`; its logs go to a file (a pipe
/// nobody reads would fill and stall it). Returns once it accepts
/// connections.
pub struct ServerProcess {
    pub child: tokio::process::Child,
    pub addr: String,
    pub log: tempfile::NamedTempFile,
}

impl ServerProcess {
    /// Starts the binary on a free port, without waiting for it.
    pub fn spawn(database_url: &str, extra: &[&std::ffi::OsStr], log_level: &str) -> Self {
        Self::spawn_with_env(database_url, extra, log_level, &[])
    }

    /// The same, with more environment variables.
    pub fn spawn_with_env(
        database_url: &str,
        extra: &[&std::ffi::OsStr],
        log_level: &str,
        env: &[(&str, &str)],
    ) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let log = tempfile::NamedTempFile::new().unwrap();
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_meetings"))
            .args([
                "serve",
                "--listen-addr",
                &addr,
                "--admin-addr",
                "127.0.0.1:0",
                "--database-url",
                database_url,
            ])
            .args(extra)
            .env("RUST_LOG", log_level)
            .envs(env.iter().copied())
            .stdout(log.reopen().unwrap())
            .stderr(log.reopen().unwrap())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        Self { child, addr, log }
    }

    /// Starts the binary and waits until it serves plaintext gRPC.
    pub async fn start(database_url: &str, extra: &[&std::ffi::OsStr], log_level: &str) -> Self {
        let server = Self::spawn(database_url, extra, log_level);
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while server.channel().await.is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "the server process did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        server
    }

    pub async fn channel(&self) -> Result<Channel, tonic::transport::Error> {
        Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
    }
}

/// A pair stream request for `a` and `b`, everything else default.
pub fn pair(a: &str, b: &str) -> pb::StreamMeetingsByCountryPairRequest {
    pb::StreamMeetingsByCountryPairRequest {
        country_a: a.into(),
        country_b: b.into(),
        ..Default::default()
    }
}

/// The ids of `meetings`, in order.
pub fn ids(meetings: &[pb::Meeting]) -> Vec<String> {
    meetings.iter().map(|m| m.id.clone()).collect()
}

/// `message` (encoded) as one gRPC frame: uncompressed, with its length.
pub fn grpc_frame(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + message.len());
    out.push(0);
    out.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
    out.extend_from_slice(message);
    out
}

/// The gRPC status of a raw HTTP/2 response: from its headers when it is
/// trailers-only, else from its trailers after the body is read (capacity
/// released as it arrives). None when there is none.
pub async fn raw_grpc_status(response: http::Response<h2::RecvStream>) -> Option<tonic::Status> {
    if let Some(status) = tonic::Status::from_header_map(response.headers()) {
        return Some(status);
    }
    let mut body = response.into_body();
    while let Some(chunk) = body.data().await {
        let _ = body.flow_control().release_capacity(chunk.unwrap().len());
    }
    let trailers = body.trailers().await.unwrap();
    trailers.as_ref().and_then(tonic::Status::from_header_map)
}

/// A tokens file with a new token for each (scopes, name); the tokens, in
/// order, and the file (removed when dropped).
pub fn tokens_file(tokens: &[(&str, &str)]) -> (Vec<String>, tempfile::NamedTempFile) {
    use std::io::Write;
    let mut file = tempfile::NamedTempFile::new().unwrap();
    let tokens = tokens
        .iter()
        .map(|(scopes, name)| {
            let (token, line) = meetings::auth::new_token(scopes, name).unwrap();
            writeln!(file, "{line}").unwrap();
            token
        })
        .collect();
    (tokens, file)
}

/// An app whose calls need the tokens of `tokens_file(tokens)`; the tokens,
/// in order, and the file, which must outlive the app's reloads.
pub async fn spawn_app_with_tokens(
    tokens: &[(&str, &str)],
) -> (TestApp, Vec<String>, tempfile::NamedTempFile) {
    let (tokens, file) = tokens_file(tokens);
    let app = spawn_app_with(Settings {
        tokens_file: Some(file.path().to_owned()),
        ..Settings::default()
    })
    .await;
    (app, tokens, file)
}
