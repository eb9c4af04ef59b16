//! Per-call limits: how many calls run at once, and unary deadlines.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::metadata::MetadataMap;

use crate::error::{Error, Result};

/// How much earlier than the client's deadline a call is ended.
const DEADLINE_MARGIN: Duration = Duration::from_millis(20);

/// Shared by every call of one server.
#[derive(Debug, Clone)]
pub struct Limits {
    calls: Arc<Semaphore>,
    timeout: Duration,
}

impl Limits {
    pub fn new(max_concurrent_calls: usize, timeout: Duration) -> Self {
        Self {
            calls: Arc::new(Semaphore::new(max_concurrent_calls.max(1))),
            timeout,
        }
    }

    /// A slot for one call (a stream keeps it until it ends), or
    /// RESOURCE_EXHAUSTED at once rather than a queue that grows.
    pub fn admit(&self) -> Result<OwnedSemaphorePermit> {
        self.calls
            .clone()
            .try_acquire_owned()
            .map_err(|_| Error::Overloaded)
    }

    /// Runs a unary call within its deadline: the server's timeout or the
    /// client's grpc-timeout, whichever is shorter.
    pub async fn within_deadline<T>(
        &self,
        metadata: &MetadataMap,
        call: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        // tonic also enforces grpc-timeout, in a layer outside ours, and
        // answers CANCELLED; ending a little before the client's deadline
        // makes the answer DEADLINE_EXCEEDED, as gRPC specifies. (That layer
        // polls the call before its own timer, so the earlier timer wins.)
        let deadline = grpc_timeout(metadata).map_or(self.timeout, |t| {
            t.saturating_sub(DEADLINE_MARGIN)
                .max(Duration::from_millis(1))
                .min(self.timeout)
        });
        tokio::time::timeout(deadline, call)
            .await
            .map_err(|_| Error::DeadlineExceeded)?
    }
}

/// The client's `grpc-timeout` header ("100m", "5S", ...), if valid.
fn grpc_timeout(metadata: &MetadataMap) -> Option<Duration> {
    let value = metadata.get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    let n: u64 = digits.parse().ok().filter(|_| digits.len() <= 8)?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &str) -> MetadataMap {
        let mut m = MetadataMap::new();
        m.insert("grpc-timeout", value.parse().unwrap());
        m
    }

    #[test]
    fn grpc_timeout_units() {
        assert_eq!(
            grpc_timeout(&with("100m")),
            Some(Duration::from_millis(100))
        );
        assert_eq!(grpc_timeout(&with("2S")), Some(Duration::from_secs(2)));
        assert_eq!(grpc_timeout(&with("1H")), Some(Duration::from_secs(3600)));
        assert_eq!(grpc_timeout(&with("5x")), None);
        assert_eq!(grpc_timeout(&with("123456789S")), None, "at most 8 digits");
        assert_eq!(grpc_timeout(&MetadataMap::new()), None);
    }

    #[test]
    fn admission_is_bounded() {
        let limits = Limits::new(2, Duration::from_secs(1));
        let a = limits.admit().unwrap();
        let _b = limits.admit().unwrap();
        assert!(matches!(limits.admit(), Err(Error::Overloaded)));
        drop(a);
        assert!(limits.admit().is_ok());
    }
}
