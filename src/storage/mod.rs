//! All SQL of the service, behind one handle, `Storage`. Queries are static
//! and parameterised (the long ones whole, in `queries/`); callers get
//! domain values, named rows or the stored record bytes.
//!
//! By concern: `meetings` (insert, get, list, update, delete, keys),
//! `pairs` (pair pages), `figures` (pair summaries, kept as meetings are
//! written), `events` (the change feed's numbering and pages),
//! `partitions` (the change feed's time partitions, made and dropped), `batch` (the columns of a multi-row
//! insert), `model` (row types), `error` (PostgreSQL's error codes).

mod batch;
mod error;
mod events;
mod figures;
mod meetings;
mod model;
mod pairs;
mod partitions;
mod record;
mod replicas;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Transaction};
use tokio::sync::Notify;

use crate::error::{Error, Result};

pub use error::is_unavailable;
pub use meetings::Tx;
pub use model::{
    AnniversaryCount, Asked, Candidate, Cursor, EventKind, EventPage, EventRow, FormatCount,
    IdRecord, Inserted, ListFilter, LockedCandidate, LockedMeeting, NewRow, PairCounts, PairPage,
    PairQuery, PairSummary, RecordRow, StoredKey, TopicCount, UpdatedRow, YearCount,
};
pub use partitions::partition_span;
pub use replicas::{Lsn, Replica, ReplicaSettings, ReplicaState, Replicas};

/// Meetings of at most this many countries keep a copy of their record in
/// each pair row (at most 6 copies); larger ones' pair rows point to the
/// meeting (see queries/insert_meetings.sql).
pub const RECORD_COPY_MAX_COUNTRIES: i32 = 4;

/// The records of the meetings among $1 that exist, in no order.
const RECORDS_BY_ID: &str = "SELECT id, record FROM meetings WHERE id = ANY($1)";

/// Most bytes of records in one page of a stream (a pair's or a
/// watcher's): a page ends early past it.
pub const PAGE_BYTES: usize = 1024 * 1024;

/// Begins a transaction (with `statement` instead of a plain BEGIN when
/// given) in a task of its own. sqlx 0.9.0 counts a transaction only once
/// BEGIN's answer is read: a caller dropped while BEGIN is on the wire (a
/// client that cancels or stops reading a stream) would return a connection
/// inside a transaction nobody ends, to be handed to the next caller
/// (transact-rs/sqlx#4393). The task always reads the answer; a
/// transaction nobody awaits any more is then dropped and rolled back.
async fn begin(
    pool: &PgPool,
    statement: Option<&'static str>,
) -> Result<Transaction<'static, Postgres>> {
    let pool = pool.clone();
    let began = tokio::spawn(async move {
        match statement {
            Some(statement) => pool.begin_with(statement).await,
            None => pool.begin().await,
        }
    })
    .await
    .map_err(Error::internal)?;
    Ok(began?)
}

/// Settings of every session the service opens, on the primary or a
/// replica.
fn session_options(options: PgConnectOptions) -> PgConnectOptions {
    // NOTICEs (a search word too long to index, say) are not ours to log:
    // they would reach the log at INFO, once per call. The application name
    // tells an operator (pg_stat_activity) which sessions are the service's.
    options
        .options([("client_min_messages", "warning")])
        .application_name("meetings")
}

/// Key material, never printed.
#[derive(Clone)]
struct Secret(Arc<[u8]>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Handle to the meetings database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Storage {
    pool: PgPool,
    /// This deployment's key for signing page tokens (shared by every
    /// instance on the database).
    page_token_key: Secret,
    /// Wakes this instance's event sequencer when a write added events.
    events_written: Arc<Notify>,
    /// Streaming replicas that serve reads (see `read_at`); None on a
    /// handle that reads a replica itself.
    replicas: Option<Arc<Replicas>>,
    /// Whether the primary stopped answering the health probe (see
    /// `answering`).
    lost: Arc<tokio::sync::watch::Sender<bool>>,
    /// The health probe's own connection (see `probe`).
    probe: Arc<tokio::sync::Mutex<Option<sqlx::PgConnection>>>,
}

/// Pool settings.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
}

impl Storage {
    /// Connects and applies pending migrations (embedded in the binary).
    /// With `replicas`, reads may be served by them (see `read_at`).
    pub async fn connect(
        options: PgConnectOptions,
        settings: &PoolSettings,
        replicas: Option<&ReplicaSettings>,
    ) -> Result<Self, anyhow::Error> {
        let options = session_options(options);
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(settings.acquire_timeout)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        let page_token_key = Self::secret(&pool, "page_token_key").await?;
        let storage = Self {
            pool,
            page_token_key,
            events_written: Arc::new(Notify::new()),
            lost: Arc::new(tokio::sync::watch::Sender::new(false)),
            probe: Arc::new(tokio::sync::Mutex::new(None)),
            replicas: replicas.filter(|r| !r.replicas.is_empty()).map(|r| {
                let r = ReplicaSettings {
                    replicas: r.replicas.iter().cloned().map(session_options).collect(),
                    ..r.clone()
                };
                Arc::new(Replicas::new(&r, settings.max_connections))
            }),
        };
        storage.refresh_topic_keys().await?;
        storage.refresh_name_tokens().await?;
        storage.build_pair_figures().await?;
        Ok(storage)
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The key page tokens are signed with.
    pub fn page_token_key(&self) -> &[u8] {
        &self.page_token_key.0
    }

    /// A random secret of this deployment, made by the first instance that
    /// asks for it and read by every later one.
    async fn secret(pool: &PgPool, name: &str) -> Result<Secret, anyhow::Error> {
        let mut fresh = [0u8; 32];
        getrandom::fill(&mut fresh).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
        sqlx::query(
            "INSERT INTO service_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(&fresh[..])
        .execute(pool)
        .await?;
        let value: Vec<u8> =
            sqlx::query_scalar("SELECT value FROM service_secrets WHERE name = $1")
                .bind(name)
                .fetch_one(pool)
                .await?;
        Ok(Secret(Arc::from(value)))
    }

    /// Whether the service can serve: the database answers and every
    /// migration this version knows is applied; else why not (for an
    /// operator: no internals). Asked on the probe's connection, so that a
    /// pool busy with calls does not make a busy instance look unready.
    pub async fn ready(&self) -> std::result::Result<(), &'static str> {
        if *self.lost.borrow() {
            return Err("the database does not answer");
        }
        let known = sqlx::migrate!("./migrations").iter().count();
        match self
            .probe_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
            .await
        {
            Ok(applied) if usize::try_from(applied).is_ok_and(|n| n >= known) => Ok(()),
            Ok(_) => Err("migrations are not all applied"),
            Err(_) => Err("the database does not answer"),
        }
    }

    /// Asks the primary for an answer on a connection of its own, outside
    /// the pool, so that a pool busy with slow calls does not look like a
    /// database that stopped answering.
    pub async fn probe(&self) -> Result<()> {
        self.probe_scalar("SELECT 1::int8").await.map(drop)
    }

    /// One number from `sql`, asked on the probe's connection. The
    /// connection is taken for the question and kept only if it answered:
    /// one dropped mid-question (a probe that timed out) is closed, never
    /// asked again, and the next question opens a fresh one.
    async fn probe_scalar(&self, sql: &'static str) -> Result<i64> {
        use sqlx::Connection;
        let mut slot = self.probe.lock().await;
        let mut conn = match slot.take() {
            Some(conn) => conn,
            None => sqlx::PgConnection::connect_with(&self.pool.connect_options()).await?,
        };
        let value = sqlx::query_scalar(sql).fetch_one(&mut conn).await?;
        *slot = Some(conn);
        Ok(value)
    }

    /// Records what the last health probe found: the primary answers
    /// (`true`) or not.
    pub fn set_answering(&self, answering: bool) {
        self.lost.send_if_modified(|lost| {
            let changed = *lost == answering;
            *lost = !answering;
            changed
        });
    }

    /// `work` (a call's statements), ended with UNAVAILABLE as soon as the
    /// health probe finds the primary not answering, or at once if it is
    /// already so. A database that stops answering without closing its
    /// connections (a network partition: packets dropped, no reset) would
    /// otherwise hold a statement until the kernel gives up on the TCP
    /// connection, many minutes later: sqlx sets no TCP keepalive or user
    /// timeout on its sockets, so the probe (`--health-interval-ms`) bounds
    /// the wait instead. The statement's connection is dropped with it.
    pub fn answering<F, T>(&self, work: F) -> impl Future<Output = Result<T>> + use<F, T>
    where
        F: Future<Output = Result<T>>,
    {
        let mut lost = self.lost.subscribe();
        async move {
            tokio::select! {
                biased;
                result = work => result,
                Ok(_) = lost.wait_for(|lost| *lost) => Err(Error::Unavailable(sqlx::Error::Io(
                    std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the database stopped answering the health probe",
                    ),
                ))),
            }
        }
    }

    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}
