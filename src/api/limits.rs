//! Per-call limits: how many calls run at once, overall and per connection
//! and caller, and unary deadlines.
//!
//! A call takes a slot of the server's limit and a slot of its
//! connection's and its caller's shares, so that one connection or one
//! caller cannot take every slot: the rest of the limit stays for others.
//! The same shares bound the database connections a connection's or a
//! caller's calls use at once (`Admission::database`): calls beyond them
//! wait, while other callers find connections free.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::auth::Caller;
use crate::error::{Error, Result};

/// Most gRPC clients (grpc-go, grpcio, tonic) refuse messages over 4 MiB
/// by default.
const PAGE_BYTES: usize = 4 * 1024 * 1024;
/// Room left in a page for everything but its meetings (the page token).
const PAGE_OVERHEAD: usize = 16 * 1024;

/// Shared by every call of one server.
/// Default import memory budget: 256 MiB of records in all imports.
const DEFAULT_IMPORT_MEMORY_KIB: u32 = 256 * 1024;

#[derive(Debug, Clone)]
pub struct Limits {
    calls: Arc<Semaphore>,
    max_calls: usize,
    shares: Arc<Shares>,
    timeout: Duration,
    page_bytes: usize,
    /// Import records held in memory (validated, waiting for or in their
    /// transaction), in KiB of request bytes, over all imports.
    import_memory: Arc<Semaphore>,
    import_memory_kib: u32,
    /// Imports waiting for the import memory budget.
    import_waiting: Arc<tokio::sync::watch::Sender<usize>>,
    /// Import batches committing at once, over all imports: half the pool,
    /// so that any number of imports queue here instead of timing out on
    /// the pool (whose acquire timeout is for interactive calls) and leave
    /// connections for every other call.
    import_commits: Arc<Semaphore>,
}

/// How many calls each connection and each caller has open, and the
/// database connections each may use.
#[derive(Debug)]
struct Shares {
    per_connection: usize,
    per_caller: usize,
    db_per_connection: usize,
    db_per_caller: usize,
    open: Mutex<HashMap<ShareKey, (usize, Arc<Semaphore>)>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ShareKey {
    Connection(SocketAddr),
    Caller(Arc<str>),
}

/// Where a call comes from, as far as the limits care.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    /// The peer address of the call's connection (unique while it is open).
    pub connection: Option<SocketAddr>,
    /// The token's caller, when calls need tokens. Without tokens callers
    /// are not told apart: a peer address may be a proxy or a NAT of many
    /// clients, so only the connection's share applies.
    pub caller: Option<Caller>,
}

impl Origin {
    pub fn of<T>(request: &tonic::Request<T>) -> Self {
        Self {
            connection: request.remote_addr(),
            caller: request.extensions().get::<Caller>().cloned(),
        }
    }
}

/// A call's slots; given back when the call ends (or its stream is dropped).
#[derive(Debug)]
pub struct Admission {
    _call: OwnedSemaphorePermit,
    shares: Arc<Shares>,
    keys: Vec<ShareKey>,
    database: DatabaseShare,
}

/// The database connections a call's connection and caller may use.
#[derive(Debug, Clone, Default)]
pub struct DatabaseShare(Vec<Arc<Semaphore>>);

impl DatabaseShare {
    /// Waits for a database slot of the call's connection and of its
    /// caller; held while the call uses the database.
    pub async fn acquire(&self) -> Result<Vec<OwnedSemaphorePermit>> {
        let mut held = Vec::with_capacity(self.0.len());
        for share in &self.0 {
            held.push(
                share
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| Error::ShuttingDown)?,
            );
        }
        Ok(held)
    }
}

impl Admission {
    /// The database share of this call's origin.
    pub fn database(&self) -> &DatabaseShare {
        &self.database
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        let mut open = self.shares.open.lock().unwrap_or_else(|e| e.into_inner());
        for key in &self.keys {
            if let Some((n, _)) = open.get_mut(key) {
                *n -= 1;
                if *n == 0 {
                    open.remove(key);
                }
            }
        }
    }
}

impl Limits {
    /// `per_connection` and `per_caller` are the most calls one connection
    /// and one caller may have open, each at most `max_concurrent_calls`.
    /// `max_response_bytes` bounds what one response may hold.
    /// `pool_size` is the database pool's; a connection may use a quarter
    /// of it and a caller half.
    pub fn new(
        max_concurrent_calls: usize,
        per_connection: usize,
        per_caller: usize,
        pool_size: usize,
        timeout: Duration,
        max_response_bytes: usize,
    ) -> Self {
        let max = max_concurrent_calls.max(1);
        Self {
            calls: Arc::new(Semaphore::new(max)),
            max_calls: max,
            shares: Arc::new(Shares {
                per_connection: per_connection.clamp(1, max),
                per_caller: per_caller.clamp(1, max),
                db_per_connection: (pool_size / 4).max(1),
                db_per_caller: (pool_size / 2).max(1),
                open: Mutex::default(),
            }),
            timeout,
            page_bytes: max_response_bytes
                .min(PAGE_BYTES)
                .saturating_sub(PAGE_OVERHEAD)
                .max(1),
            import_memory: Arc::new(Semaphore::new(DEFAULT_IMPORT_MEMORY_KIB as usize)),
            import_memory_kib: DEFAULT_IMPORT_MEMORY_KIB,
            import_waiting: Arc::new(tokio::sync::watch::Sender::new(0)),
            import_commits: Arc::new(Semaphore::new((pool_size / 2).max(1))),
        }
    }

    /// Sets the memory all imports together may hold in records, in bytes
    /// of request messages (`--import-memory-mb`).
    pub fn with_import_memory(mut self, bytes: usize) -> Self {
        let kib = u32::try_from(bytes / 1024)
            .unwrap_or(u32::MAX)
            .clamp(1, Semaphore::MAX_PERMITS as u32);
        self.import_memory = Arc::new(Semaphore::new(kib as usize));
        self.import_memory_kib = kib;
        self
    }

    /// The share of the import memory budget a record of `bytes` takes (at
    /// least 1 KiB, at most the whole budget), at once if free.
    pub fn try_hold_import(&self, bytes: usize) -> Option<OwnedSemaphorePermit> {
        self.import_memory
            .clone()
            .try_acquire_many_owned(self.import_kib(bytes))
            .ok()
    }

    /// The same, waiting until imports release enough.
    pub async fn hold_import(&self, bytes: usize) -> OwnedSemaphorePermit {
        /// Counts this import among the waiting until it is dropped.
        struct Waiting<'a>(&'a tokio::sync::watch::Sender<usize>);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.send_modify(|n| *n -= 1);
            }
        }
        self.import_waiting.send_modify(|n| *n += 1);
        let _waiting = Waiting(&self.import_waiting);
        self.import_memory
            .clone()
            .acquire_many_owned(self.import_kib(bytes))
            .await
            .expect("the import budget is never closed")
    }

    /// Completes once some import waits for the import memory budget, and
    /// `idle` after that.
    pub async fn import_pressure(&self, idle: Duration) {
        let mut waiting = self.import_waiting.subscribe();
        let pressed = waiting.wait_for(|n| *n > 0).await.is_ok();
        if pressed {
            tokio::time::sleep(idle).await;
        } else {
            // Never: the sender lives as long as the limits.
            std::future::pending::<()>().await;
        }
    }

    /// A turn to commit an import batch, waiting as long as it takes.
    pub async fn import_commit_turn(&self) -> OwnedSemaphorePermit {
        self.import_commits
            .clone()
            .acquire_owned()
            .await
            .expect("the import commit turns are never closed")
    }

    fn import_kib(&self, bytes: usize) -> u32 {
        u32::try_from(bytes / 1024 + 1)
            .unwrap_or(u32::MAX)
            .min(self.import_memory_kib)
    }

    /// The most bytes of meetings one page of a response may hold: under
    /// the server's response limit, and under the 4 MiB that most gRPC
    /// clients accept by default.
    pub fn page_bytes(&self) -> usize {
        self.page_bytes
    }

    /// Slots for one call (a stream keeps them until it ends), or
    /// RESOURCE_EXHAUSTED at once rather than a queue that grows.
    pub fn admit(&self, origin: &Origin) -> Result<Admission> {
        let mut wanted = Vec::with_capacity(2);
        if let Some(addr) = origin.connection {
            wanted.push((
                ShareKey::Connection(addr),
                self.shares.per_connection,
                self.shares.db_per_connection,
            ));
        }
        if let Some(caller) = &origin.caller {
            wanted.push((
                ShareKey::Caller(caller.name()),
                self.shares.per_caller,
                self.shares.db_per_caller,
            ));
        }
        let call = self
            .calls
            .clone()
            .try_acquire_owned()
            .map_err(|_| Error::Overloaded {
                scope: "server",
                limit: self.max_calls,
            })?;
        let mut open = self.shares.open.lock().unwrap_or_else(|e| e.into_inner());
        for (key, limit, _) in &wanted {
            if open.get(key).map_or(0, |(n, _)| *n) >= *limit {
                let scope = match key {
                    ShareKey::Connection(_) => "connection",
                    ShareKey::Caller(_) => "caller",
                };
                return Err(Error::Overloaded {
                    scope,
                    limit: *limit,
                });
            }
        }
        let mut database = Vec::with_capacity(wanted.len());
        for (key, _, db) in &wanted {
            let (n, share) = open
                .entry(key.clone())
                .or_insert_with(|| (0, Arc::new(Semaphore::new(*db))));
            *n += 1;
            database.push(share.clone());
        }
        drop(open);
        Ok(Admission {
            _call: call,
            shares: self.shares.clone(),
            keys: wanted.into_iter().map(|(key, _, _)| key).collect(),
            database: DatabaseShare(database),
        })
    }

    /// Runs a unary call's work within the server's deadline. `api::edge`
    /// enforces the same deadline, and a client's grpc-timeout, from the
    /// call's arrival, so it fires first; this one keeps the handler's
    /// work bounded whatever layers serve it.
    pub async fn within_deadline<T>(&self, call: impl Future<Output = Result<T>>) -> Result<T> {
        tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| Error::DeadlineExceeded)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(port: u16, caller: Option<&str>) -> Origin {
        Origin {
            connection: Some(SocketAddr::from(([127, 0, 0, 1], port))),
            caller: caller.map(Caller::new),
        }
    }

    #[test]
    fn admission_is_bounded() {
        let limits = Limits::new(2, 2, 2, 16, Duration::from_secs(1), 1 << 20);
        let a = limits.admit(&Origin::default()).unwrap();
        let _b = limits.admit(&Origin::default()).unwrap();
        assert!(matches!(
            limits.admit(&Origin::default()),
            Err(Error::Overloaded {
                scope: "server",
                ..
            })
        ));
        drop(a);
        assert!(limits.admit(&Origin::default()).is_ok());
    }

    #[test]
    fn one_connection_or_caller_gets_its_share_only() {
        let limits = Limits::new(10, 2, 3, 16, Duration::from_secs(1), 1 << 20);
        let a = limits.admit(&from(1, None)).unwrap();
        let _b = limits.admit(&from(1, None)).unwrap();
        assert!(matches!(
            limits.admit(&from(1, None)),
            Err(Error::Overloaded {
                scope: "connection",
                limit: 2
            })
        ));
        // Another connection is still served; a refused call took no slot.
        let _c = limits.admit(&from(2, Some("news"))).unwrap();
        let _d = limits.admit(&from(3, Some("news"))).unwrap();
        let _e = limits.admit(&from(4, Some("news"))).unwrap();
        assert!(matches!(
            limits.admit(&from(5, Some("news"))),
            Err(Error::Overloaded {
                scope: "caller",
                limit: 3
            })
        ));
        drop(a);
        assert!(limits.admit(&from(1, Some("other"))).is_ok());
        assert!(limits.shares.open.lock().unwrap().len() <= 6);
    }

    #[tokio::test]
    async fn a_connection_uses_a_quarter_of_the_pool_and_a_caller_half() {
        let limits = Limits::new(100, 100, 100, 16, Duration::from_secs(1), 1 << 20);
        let calls: Vec<Admission> = (0..10)
            .map(|_| limits.admit(&from(1, Some("a"))).unwrap())
            .collect();
        let mut held = Vec::new();
        for call in &calls[..4] {
            held.push(call.database().acquire().await.unwrap());
        }
        let fifth = calls[4].database().acquire();
        assert!(
            tokio::time::timeout(Duration::from_millis(50), fifth)
                .await
                .is_err(),
            "a fifth database slot for one connection waits"
        );
        // Another connection of the same caller gets the caller's other four.
        let other: Vec<Admission> = (0..5)
            .map(|_| limits.admit(&from(2, Some("a"))).unwrap())
            .collect();
        for call in &other[..4] {
            held.push(call.database().acquire().await.unwrap());
        }
        assert!(
            tokio::time::timeout(Duration::from_millis(50), other[4].database().acquire())
                .await
                .is_err(),
            "the caller's half is taken"
        );
        // Another caller is not held up.
        let stranger = limits.admit(&from(3, Some("b"))).unwrap();
        let _slots = stranger.database().acquire().await.unwrap();
        drop(held);
        let _again = calls[4].database().acquire().await.unwrap();
    }

    #[test]
    fn slots_are_given_back() {
        let limits = Limits::new(4, 4, 4, 16, Duration::from_secs(1), 1 << 20);
        for _ in 0..100 {
            let _a = limits.admit(&from(1, Some("x"))).unwrap();
        }
        assert!(limits.shares.open.lock().unwrap().is_empty());
        assert_eq!(limits.calls.available_permits(), 4);
    }
}
