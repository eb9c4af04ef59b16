//! Reads on PostgreSQL streaming replicas.
//!
//! Every instance watches its replicas: a few times a second it reads each
//! replica's replay position, then the primary's WAL position, and keeps
//! the primary's recent positions with the time it saw them. A replica that
//! has replayed a position the primary had at time `t` holds every commit
//! made before `t`, so its lag is at most `now - t`: a bound that needs no
//! clock shared between hosts and reads 0 while the primary is idle. A
//! replica that answers, is in recovery and lags at most the configured
//! bound serves reads; any other is skipped until a later check passes.
//!
//! A read that names a position (`x-meetings-min-lsn`) goes to a replica
//! that has replayed it; while one of them is catching up the read waits,
//! at most the configured time, with the checks running every few
//! milliseconds, and is then served by the primary. A read that fails on a
//! replica runs again on the primary, so no read fails because a replica
//! did.

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use super::Storage;
use crate::error::{Error, Result};

/// How often replicas and the primary are checked.
const CHECK_INTERVAL: Duration = Duration::from_millis(200);
/// How often replicas are checked while a read waits for a position.
const WAITING_CHECK_INTERVAL: Duration = Duration::from_millis(2);
/// A check that takes longer counts as failed: the replica is skipped.
const CHECK_TIMEOUT: Duration = Duration::from_secs(1);
/// A read on a replica that takes longer is given up and served by the
/// primary, and the replica is skipped until a check passes: a replica
/// that stops answering (a partition, a paused host) must not hold reads
/// until the TCP connection gives up. Every read the service sends a
/// replica (a page, a summary, a lookup) takes milliseconds.
const READ_TIMEOUT: Duration = Duration::from_secs(2);
/// Connections a replica's pool keeps for the checks and for reads that
/// could not find one free in time fall back to the primary.
const REPLICA_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(1);

const REPLICA_POSITION: &str =
    "SELECT pg_is_in_recovery(), (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint";
/// The end of the WAL inserted so far: at or past the commit record of
/// every transaction committed before it is read, even an asynchronous
/// commit whose record is not written yet. A write's position.
const WRITE_POSITION: &str = "SELECT (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint";
/// The end of the WAL flushed so far, the most a replica can have
/// replayed, and measured as replay positions are (the end of a record,
/// where the insert position at a page boundary points past the page's
/// header): a replica that has replayed everything reaches it exactly.
/// The lag samples.
const FLUSHED_POSITION: &str = "SELECT (pg_current_wal_flush_lsn() - '0/0'::pg_lsn)::bigint";

/// A position in PostgreSQL's write-ahead log, written as PostgreSQL
/// writes it (`16/B374D848`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Lsn(pub u64);

impl Lsn {
    /// A position no replica reaches: sent by a write that committed but
    /// could not read its position, it sends the caller's reads to the
    /// primary at once.
    pub const PRIMARY: Self = Self(u64::MAX);
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

impl FromStr for Lsn {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, String> {
        // Quoted short: the header can be as long as the client likes.
        let bad = || {
            format!(
                "{} is not a WAL position like \"16/B374D848\"",
                crate::domain::quote(raw)
            )
        };
        let (high, low) = raw.trim().split_once('/').ok_or_else(bad)?;
        let part = |s: &str| {
            (!s.is_empty() && s.len() <= 8)
                .then(|| u32::from_str_radix(s, 16).ok())
                .flatten()
                .ok_or_else(bad)
        };
        Ok(Self((u64::from(part(high)?) << 32) | u64::from(part(low)?)))
    }
}

/// Replica settings.
#[derive(Debug, Clone)]
pub struct ReplicaSettings {
    pub replicas: Vec<PgConnectOptions>,
    /// Replicas that lag more are skipped.
    pub max_lag: Duration,
    /// How long a read that names a position waits for a replica to reach
    /// it before the primary serves it.
    pub wait: Duration,
}

/// What the last check found of a replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaState {
    /// Not checked yet.
    Unknown,
    /// Did not answer (or a read on it failed as unreachable).
    Unreachable,
    /// Answers, but is not in recovery: a promoted or misconfigured server,
    /// whose data no longer follows the primary.
    NotReplica,
    /// Behind the primary by more than the bound, or by an unknown amount.
    Lagging { lag: Option<Duration> },
    /// Serves reads.
    Serving { lag: Duration },
}

impl ReplicaState {
    pub fn serving(self) -> bool {
        matches!(self, Self::Serving { .. })
    }
}

/// One replica: its pool and what the last check found.
#[derive(Debug)]
pub struct Replica {
    pool: PgPool,
    /// host:port/database, for logs (never the password).
    name: String,
    status: Mutex<(ReplicaState, u64)>,
}

impl Replica {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What the last check found.
    pub fn state(&self) -> ReplicaState {
        self.lock().0
    }

    fn replayed(&self) -> u64 {
        self.lock().1
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (ReplicaState, u64)> {
        self.status.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets the state, logging a change.
    fn set(&self, state: ReplicaState, replayed: Option<u64>) {
        let mut status = self.lock();
        let before = status.0;
        status.0 = state;
        if let Some(replayed) = replayed {
            status.1 = replayed;
        }
        drop(status);
        let ms = |lag: Option<Duration>| lag.map(|l| l.as_millis() as u64);
        match state {
            ReplicaState::Serving { lag } if !before.serving() => {
                tracing::info!(replica = %self.name, lag_ms = ms(Some(lag)), "replica serves reads");
            }
            ReplicaState::Lagging { lag } if !matches!(before, ReplicaState::Lagging { .. }) => {
                tracing::warn!(replica = %self.name, lag_ms = ms(lag), "replica lags too far behind; reads skip it");
            }
            ReplicaState::Unreachable if before != state => {
                tracing::warn!(replica = %self.name, "replica unreachable; reads skip it");
            }
            ReplicaState::NotReplica if before != state => {
                tracing::warn!(replica = %self.name, "server is not in recovery (not a replica); reads skip it");
            }
            _ => {}
        }
    }
}

/// The replicas of a deployment and what their checks found.
#[derive(Debug)]
pub struct Replicas {
    set: Vec<Replica>,
    max_lag: Duration,
    wait: Duration,
    /// Round-robin position among the serving replicas.
    next: AtomicUsize,
    /// Reads waiting for a position: the checks run often while any does.
    waiting: AtomicUsize,
    /// Wakes the checks when a read starts waiting.
    wake: Notify,
    /// Bumped after every check.
    checked: watch::Sender<u64>,
    /// The primary's recent WAL positions and when each was read, oldest
    /// first.
    primary: Mutex<VecDeque<(Instant, u64)>>,
}

impl Replicas {
    pub fn new(settings: &ReplicaSettings, max_connections: u32) -> Self {
        let set = settings
            .replicas
            .iter()
            .map(|options| {
                let name = format!(
                    "{}:{}/{}",
                    options.get_host(),
                    options.get_port(),
                    options.get_database().unwrap_or_default()
                );
                // Lazy: a replica that is down when the service starts is
                // skipped until it answers, not a reason not to start.
                // No ping before each use: it would cost every read a
                // round trip, and a connection broken since (a replica
                // restarted) fails its read, which the primary then serves.
                let pool = PgPoolOptions::new()
                    .max_connections(max_connections)
                    .test_before_acquire(false)
                    .acquire_timeout(REPLICA_ACQUIRE_TIMEOUT)
                    .connect_lazy_with(options.clone());
                Replica {
                    pool,
                    name,
                    status: Mutex::new((ReplicaState::Unknown, 0)),
                }
            })
            .collect();
        Self {
            set,
            max_lag: settings.max_lag,
            wait: settings.wait,
            next: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            wake: Notify::new(),
            checked: watch::channel(0).0,
            primary: Mutex::new(VecDeque::new()),
        }
    }

    pub fn replicas(&self) -> &[Replica] {
        &self.set
    }

    /// A serving replica that has replayed `at` (any serving one without
    /// it), waiting up to the configured time for one to reach `at`; None
    /// when the primary must serve the read.
    async fn pick(&self, at: Option<Lsn>) -> Option<&Replica> {
        if at == Some(Lsn::PRIMARY) {
            return None;
        }
        let deadline = tokio::time::Instant::now() + self.wait;
        let mut checked = self.checked.subscribe();
        let mut waiting = None;
        loop {
            checked.borrow_and_update();
            let serving: Vec<&Replica> = self.set.iter().filter(|r| r.state().serving()).collect();
            let ready: Vec<&Replica> = serving
                .iter()
                .copied()
                .filter(|r| at.is_none_or(|at| r.replayed() >= at.0))
                .collect();
            if !ready.is_empty() {
                let i = self.next.fetch_add(1, Ordering::Relaxed) % ready.len();
                return Some(ready[i]);
            }
            if serving.is_empty() || at.is_none() {
                return None;
            }
            if waiting.is_none() {
                waiting = Some(Waiting::new(self));
            }
            if tokio::time::timeout_at(deadline, checked.changed())
                .await
                .is_err()
            {
                return None;
            }
        }
    }

    /// Checks every replica and, with `sample`, reads the primary's
    /// position at the same time; sets each replica's state.
    async fn check(&self, primary: &PgPool, sample: bool) {
        // A commit made before `asked` is in the position read after it.
        let asked = Instant::now();
        let sampled = async {
            if !sample {
                return None;
            }
            tokio::time::timeout(
                CHECK_TIMEOUT,
                sqlx::query_scalar::<_, i64>(FLUSHED_POSITION).fetch_one(primary),
            )
            .await
            .ok()?
            .ok()
        };
        let positions = join_all(self.set.iter().map(|r| async {
            tokio::time::timeout(
                CHECK_TIMEOUT,
                sqlx::query_as::<_, (bool, Option<i64>)>(REPLICA_POSITION).fetch_one(&r.pool),
            )
            .await
        }));
        let (sampled, positions) = tokio::join!(sampled, positions);
        let now = Instant::now();
        let mut samples = self.primary.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(position) = sampled {
            samples.push_back((asked, position as u64));
        }
        // Older positions could only show lags past the bound; the newest
        // is kept whatever its age. While the primary does not answer,
        // nothing new is committed, and it still bounds each replica's
        // lag.
        let keep = self.max_lag + Duration::from_secs(1);
        while samples.len() > 1
            && samples
                .front()
                .is_some_and(|(at, _)| now.duration_since(*at) > keep)
        {
            samples.pop_front();
        }
        let newest = samples.back().copied();
        for (replica, position) in self.set.iter().zip(positions) {
            let (state, replayed) = match position {
                Ok(Ok((true, Some(replayed)))) => {
                    let replayed = replayed as u64;
                    let lag = if let Some((at, p)) = newest
                        && replayed >= p
                    {
                        // Caught up with the newest sample: as fresh as
                        // that sample is old. A sample that keeps failing
                        // (the primary overloaded or down) lets the bound
                        // grow rather than vouch for a stale replica.
                        Some(now.duration_since(at))
                    } else {
                        // The newest position it has replayed: it holds
                        // every commit made before that position was seen.
                        samples
                            .iter()
                            .rev()
                            .find(|(_, p)| *p <= replayed)
                            .map(|(at, _)| now.duration_since(*at))
                    };
                    let state = match lag {
                        Some(lag) if lag <= self.max_lag => ReplicaState::Serving { lag },
                        lag => ReplicaState::Lagging { lag },
                    };
                    (state, Some(replayed))
                }
                Ok(Ok((true, None))) => (ReplicaState::Lagging { lag: None }, None),
                Ok(Ok((false, _))) => (ReplicaState::NotReplica, None),
                Ok(Err(_)) | Err(_) => (ReplicaState::Unreachable, None),
            };
            replica.set(state, replayed);
        }
        drop(samples);
        self.checked.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// Counts a read that waits for a position while it waits.
struct Waiting<'a>(&'a Replicas);

impl<'a> Waiting<'a> {
    fn new(replicas: &'a Replicas) -> Self {
        replicas.waiting.fetch_add(1, Ordering::SeqCst);
        replicas.wake.notify_one();
        Self(replicas)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Storage {
    /// Runs `read` on a replica (one that has replayed `at`, when given),
    /// or on the primary when none can serve it or the read failed there.
    pub async fn read_at<T, F, Fut>(&self, at: Option<Lsn>, read: F) -> Result<T>
    where
        F: Fn(Storage) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        if let Some(replicas) = &self.replicas
            && let Some(replica) = replicas.pick(at).await
        {
            let on_replica = Storage {
                pool: replica.pool.clone(),
                replicas: None,
                ..self.clone()
            };
            // Handled here, logged once: the primary answers instead.
            match tokio::time::timeout(READ_TIMEOUT, read(on_replica)).await {
                Err(_) => {
                    tracing::warn!(replica = %replica.name, timeout_ms = READ_TIMEOUT.as_millis() as u64, "read on a replica timed out; the primary serves it");
                    replica.set(ReplicaState::Unreachable, None);
                }
                Ok(Err(Error::Unavailable(cause))) => {
                    tracing::warn!(replica = %replica.name, error = %cause, "replica unavailable; the primary serves the read");
                    replica.set(ReplicaState::Unreachable, None);
                }
                Ok(Err(Error::Internal(cause))) => {
                    // A hot standby cancels a query whose rows replay must
                    // remove (a recovery conflict, SQLSTATE 40001).
                    tracing::warn!(replica = %replica.name, error = format!("{cause:#}"), "read failed on a replica; the primary serves it");
                }
                Ok(outcome) => return outcome,
            }
        }
        read(self.clone()).await
    }

    /// The primary's WAL position now: at or past the commit of every write
    /// that has returned.
    pub async fn write_position(&self) -> Result<Lsn> {
        let position: i64 = sqlx::query_scalar(WRITE_POSITION)
            .fetch_one(&self.pool)
            .await?;
        Ok(Lsn(position as u64))
    }

    /// The replicas, when configured.
    pub fn replicas(&self) -> Option<&Arc<Replicas>> {
        self.replicas.as_ref()
    }

    /// Checks the replicas until `stop`: every 200 ms, and every 2 ms while
    /// a read waits for a position.
    pub async fn watch_replicas(self, stop: CancellationToken) {
        let Some(replicas) = self.replicas.clone() else {
            return;
        };
        let mut sampled: Option<Instant> = None;
        loop {
            // While reads wait, only the replicas are asked every time: a
            // waiting read compares replay positions, not lags.
            let sample = sampled.is_none_or(|at| at.elapsed() >= CHECK_INTERVAL);
            if sample {
                sampled = Some(Instant::now());
            }
            replicas.check(&self.pool, sample).await;
            let interval = if replicas.waiting.load(Ordering::SeqCst) > 0 {
                WAITING_CHECK_INTERVAL
            } else {
                CHECK_INTERVAL
            };
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(interval) => {}
                () = replicas.wake.notified() => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Lsn;

    #[test]
    fn a_position_reads_and_writes_as_postgresql_writes_it() {
        let lsn: Lsn = "16/B374D848".parse().unwrap();
        assert_eq!(lsn.0, (0x16 << 32) | 0xB374_D848);
        assert_eq!(lsn.to_string(), "16/B374D848");
        assert_eq!("0/0".parse::<Lsn>().unwrap(), Lsn(0));
        assert!("0/0".parse::<Lsn>().unwrap() < "0/1".parse().unwrap());
        for bad in ["", "16", "/1", "1/", "x/1", "1/123456789", "-1/0", "1/2/3"] {
            assert!(bad.parse::<Lsn>().is_err(), "{bad:?} parsed");
        }
    }
}
