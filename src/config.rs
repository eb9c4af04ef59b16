//! Configuration, from flags or the environment.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

/// Serve the meetings.v1 gRPC API.
#[derive(Debug, Clone, Parser)]
#[command(name = "meetings", version)]
pub struct Config {
    /// Address to serve gRPC on (port 0 picks a free port).
    #[arg(long, env = "MEETINGS_LISTEN_ADDR", default_value = "127.0.0.1:50051")]
    pub listen_addr: SocketAddr,
    /// Address of the admin HTTP listener (/metrics, /healthz, /readyz);
    /// empty for none. Port 0 picks a free port.
    #[arg(long, env = "MEETINGS_ADMIN_ADDR", default_value = "127.0.0.1:9090", value_parser = optional_addr)]
    pub admin_addr: OptionalAddr,

    /// PostgreSQL URL. When unset, the service starts its own embedded
    /// PostgreSQL from the installed server binaries.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Directory of the embedded PostgreSQL (data and log); only used when
    /// DATABASE_URL is unset. Default: /var/lib/meetings as root, else
    /// $XDG_DATA_HOME/meetings or ~/.local/share/meetings.
    #[arg(long, env = "MEETINGS_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// PostgreSQL streaming replica to serve reads (repeatable; in the
    /// environment, comma-separated): GetMeeting, ListMeetings,
    /// StreamMeetingsByCountryPair and GetCountryPairSummary go to a
    /// replica that answers and lags at most --replica-max-lag-ms; writes,
    /// WatchMeetings and FindDuplicateMeetings to the primary.
    #[arg(
        long = "replica-url",
        env = "MEETINGS_REPLICA_URLS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub replica_urls: Vec<String>,

    /// A replica further behind the primary than this, in milliseconds, is
    /// skipped until it catches up.
    #[arg(long, env = "MEETINGS_REPLICA_MAX_LAG_MS", default_value_t = 5_000)]
    pub replica_max_lag_ms: u64,

    /// How long a read whose x-meetings-min-lsn no replica has replayed yet
    /// waits for one before the primary serves it, in milliseconds.
    #[arg(long, env = "MEETINGS_REPLICA_WAIT_MS", default_value_t = 100)]
    pub replica_wait_ms: u64,

    /// Maximum number of database connections (to the primary, and to each
    /// replica).
    #[arg(long, env = "MEETINGS_DB_POOL_SIZE", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub db_pool_size: u32,

    /// How long a call waits for a database connection before failing with
    /// UNAVAILABLE, in milliseconds.
    #[arg(long, env = "MEETINGS_DB_ACQUIRE_TIMEOUT_MS", default_value_t = 3000)]
    pub db_acquire_timeout_ms: u64,

    /// How often the health check asks the database, in milliseconds.
    #[arg(long, env = "MEETINGS_HEALTH_INTERVAL_MS", default_value_t = 2000)]
    pub health_interval_ms: u64,

    /// On SIGINT or SIGTERM, how long to wait for open calls to finish
    /// before exiting anyway, in milliseconds.
    #[arg(long, env = "MEETINGS_SHUTDOWN_TIMEOUT_MS", default_value_t = 10_000)]
    pub shutdown_timeout_ms: u64,

    /// How long change-feed events are kept for WatchMeetings, in hours
    /// (fractions allowed: 0.25 is 15 minutes).
    #[arg(long, env = "MEETINGS_EVENT_RETENTION_HOURS", default_value_t = 168.0, value_parser = positive_hours)]
    pub event_retention_hours: f64,

    /// TLS certificate chain (PEM). With --tls-key, the service speaks TLS.
    #[arg(long, env = "MEETINGS_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// TLS private key (PEM).
    #[arg(long, env = "MEETINGS_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// CA certificates (PEM) that client certificates must chain to: mutual
    /// TLS; a client without a valid certificate is refused.
    #[arg(long, env = "MEETINGS_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,

    /// An origin whose web pages may call the service with gRPC-Web
    /// (CORS), e.g. https://news.example.org; repeatable. None by default:
    /// gRPC-Web is served to same-origin pages and non-browser clients.
    #[arg(
        long = "cors-allowed-origin",
        env = "MEETINGS_CORS_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    pub cors_allowed_origins: Vec<String>,

    /// Serve plaintext on a non-loopback address (refused by default).
    #[arg(long, env = "MEETINGS_ALLOW_PLAINTEXT")]
    pub allow_plaintext: bool,

    /// Tokens file (see `meetings token`): bearer tokens' SHA-256 and their
    /// scopes. Without it, every caller may read and write.
    #[arg(long, env = "MEETINGS_TOKENS_FILE")]
    pub tokens_file: Option<PathBuf>,

    /// Largest request message accepted, in bytes (larger: RESOURCE_EXHAUSTED).
    #[arg(long, env = "MEETINGS_MAX_REQUEST_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_request_bytes: usize,

    /// Largest response message sent, in bytes.
    #[arg(long, env = "MEETINGS_MAX_RESPONSE_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub max_response_bytes: usize,

    /// Memory all ImportMeetings streams together may hold in records
    /// waiting for or in their transaction, in MiB of request messages; an
    /// import past it stops reading until others commit.
    #[arg(long, env = "MEETINGS_IMPORT_MEMORY_MB", default_value_t = 256)]
    pub import_memory_mb: usize,

    /// Calls and open streams served at once; more get RESOURCE_EXHAUSTED.
    #[arg(long, env = "MEETINGS_MAX_CONCURRENT_CALLS", default_value_t = 1024)]
    pub max_concurrent_calls: usize,

    /// Calls and open streams one connection may have at once; more get
    /// RESOURCE_EXHAUSTED. Default: a quarter of --max-concurrent-calls.
    #[arg(long, env = "MEETINGS_MAX_CALLS_PER_CONNECTION")]
    pub max_calls_per_connection: Option<usize>,

    /// Calls and open streams one caller (one token's name) may have at
    /// once, over all its connections; more get RESOURCE_EXHAUSTED.
    /// Default: half of --max-concurrent-calls.
    #[arg(long, env = "MEETINGS_MAX_CALLS_PER_CALLER")]
    pub max_calls_per_caller: Option<usize>,

    /// HTTP/2 streams (concurrent calls) allowed per connection.
    #[arg(
        long,
        env = "MEETINGS_MAX_STREAMS_PER_CONNECTION",
        default_value_t = 256
    )]
    pub max_streams_per_connection: u32,

    /// Deadline of unary calls, in milliseconds; a shorter grpc-timeout from
    /// the client wins. Past it: DEADLINE_EXCEEDED.
    #[arg(long, env = "MEETINGS_REQUEST_TIMEOUT_MS", default_value_t = 30_000)]
    pub request_timeout_ms: u64,

    /// HTTP/2 keep-alive ping interval, in milliseconds (0: off).
    #[arg(long, env = "MEETINGS_HTTP2_KEEPALIVE_MS", default_value_t = 30_000)]
    pub http2_keepalive_ms: u64,

    /// How long a keep-alive ping may go unanswered before the connection is
    /// closed, in milliseconds.
    #[arg(
        long,
        env = "MEETINGS_HTTP2_KEEPALIVE_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub http2_keepalive_timeout_ms: u64,

    /// Log format; the level comes from RUST_LOG (default "info").
    #[arg(long, env = "MEETINGS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// A number of hours above zero.
/// An address, or none (an empty value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionalAddr(pub Option<SocketAddr>);

fn optional_addr(raw: &str) -> Result<OptionalAddr, String> {
    if raw.trim().is_empty() {
        return Ok(OptionalAddr(None));
    }
    raw.trim()
        .parse()
        .map(|addr| OptionalAddr(Some(addr)))
        .map_err(|_| format!("{raw:?} is not an address (host:port), nor empty for none"))
}

fn positive_hours(raw: &str) -> Result<f64, String> {
    match raw.parse::<f64>() {
        Ok(h) if h.is_finite() && h > 0.0 => Ok(h),
        _ => Err(format!("{raw:?} is not a positive number of hours")),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl Config {
    pub fn db_acquire_timeout(&self) -> Duration {
        Duration::from_millis(self.db_acquire_timeout_ms)
    }

    pub fn health_interval(&self) -> Duration {
        Duration::from_millis(self.health_interval_ms.max(50))
    }

    /// The share of the call slots one connection may hold.
    pub fn calls_per_connection(&self) -> usize {
        self.max_calls_per_connection
            .unwrap_or(self.max_concurrent_calls / 4)
            .max(1)
    }

    /// The share of the call slots one caller may hold.
    pub fn calls_per_caller(&self) -> usize {
        self.max_calls_per_caller
            .unwrap_or(self.max_concurrent_calls / 2)
            .max(1)
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    pub fn event_retention(&self) -> Duration {
        Duration::try_from_secs_f64(self.event_retention_hours * 3600.0).unwrap_or(Duration::MAX)
    }

    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_millis(self.shutdown_timeout_ms)
    }
}
