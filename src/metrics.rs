//! Metrics in the Prometheus text format, served on the admin listener
//! (`/metrics`). One registry per application (not the process-wide
//! default), so that several servers in one process (the tests) each count
//! their own calls.
//!
//! Labels are bounded: `method` is the RPC's name (one of the served
//! methods, or `unknown`), `code` a gRPC code's name, `caller` a token's
//! name from the tokens file (`-` without one), `outcome`, `reason` and
//! `replica` come from fixed lists. No ids or tokens.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use tonic::Code;

/// Latency buckets, in seconds: 0.5 ms to 30 s.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0,
];

/// The application's metrics.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    in_flight: IntGaugeVec,
    streams_open: IntGaugeVec,
    stream_messages: IntCounterVec,
    import_records: IntCounterVec,
    import_waits: IntCounter,
    rejected: IntCounterVec,
    watchers: IntGauge,
    events_pending: IntGauge,
    events_numbered: IntGauge,
    pool_size: IntGauge,
    pool_idle: IntGauge,
    pool_max: IntGauge,
    replica_lag: prometheus::GaugeVec,
    replica_serving: IntGaugeVec,
    sequencer_step: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry =
            Registry::new_custom(Some("meetings".to_owned()), None).expect("a valid metric prefix");
        let requests = IntCounterVec::new(
            Opts::new(
                "grpc_requests_total",
                "Calls that ended, by method, gRPC status code and caller.",
            ),
            &["method", "code", "caller"],
        )
        .expect("valid metric");
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "grpc_request_duration_seconds",
                "Time from a call's arrival to its last byte (or the client's going away).",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["method", "code"],
        )
        .expect("valid metric");
        let in_flight = IntGaugeVec::new(
            Opts::new("grpc_requests_in_flight", "Calls not yet ended."),
            &["method"],
        )
        .expect("valid metric");
        let streams_open = IntGaugeVec::new(
            Opts::new(
                "grpc_streams_open",
                "Calls of methods with a request or response stream, not yet ended.",
            ),
            &["method"],
        )
        .expect("valid metric");
        let stream_messages = IntCounterVec::new(
            Opts::new(
                "grpc_stream_messages_sent_total",
                "Messages sent on response streams (one per meeting or event).",
            ),
            &["method"],
        )
        .expect("valid metric");
        let import_records = IntCounterVec::new(
            Opts::new(
                "import_records_total",
                "ImportMeetings records by outcome (created, merged, existing, rejected).",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        let import_waits = IntCounter::new(
            "import_memory_waits_total",
            "Times an import stopped reading until imports released memory (--import-memory-mb).",
        )
        .expect("valid metric");
        let rejected = IntCounterVec::new(
            Opts::new(
                "rejected_calls_total",
                "Calls refused before they ran, by reason (TOO_MANY_CALLS, UNAUTHENTICATED, MISSING_SCOPE, UNKNOWN_METHOD).",
            ),
            &["reason"],
        )
        .expect("valid metric");
        let watchers = IntGauge::new("changefeed_watchers", "WatchMeetings streams connected.")
            .expect("valid metric");
        let events_pending = IntGauge::new(
            "changefeed_events_pending",
            "Change-feed event rows written and not yet numbered (sampled every second).",
        )
        .expect("valid metric");
        let events_numbered = IntGauge::new(
            "changefeed_sequence",
            "The newest number the sequencer gave an event.",
        )
        .expect("valid metric");
        let pool_size = IntGauge::new("db_pool_connections", "Open connections to the primary.")
            .expect("valid metric");
        let pool_idle = IntGauge::new(
            "db_pool_connections_idle",
            "Open connections to the primary not in use.",
        )
        .expect("valid metric");
        let pool_max = IntGauge::new(
            "db_pool_connections_max",
            "Most connections the pool opens (--db-pool-size).",
        )
        .expect("valid metric");
        let replica_lag = prometheus::GaugeVec::new(
            Opts::new(
                "replica_lag_seconds",
                "A replica's lag behind the primary, as last checked (NaN while unknown).",
            ),
            &["replica"],
        )
        .expect("valid metric");
        let replica_serving = IntGaugeVec::new(
            Opts::new(
                "replica_serving",
                "1 while a replica serves reads, 0 while it is skipped.",
            ),
            &["replica"],
        )
        .expect("valid metric");
        let sequencer_step = Histogram::with_opts(
            HistogramOpts::new(
                "changefeed_sequencer_step_seconds",
                "Time of a sequencer step that numbered events.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
        )
        .expect("valid metric");
        let metrics = Self {
            registry,
            requests,
            latency,
            in_flight,
            streams_open,
            stream_messages,
            import_records,
            import_waits,
            rejected,
            watchers,
            events_pending,
            events_numbered,
            pool_size,
            pool_idle,
            pool_max,
            replica_lag,
            replica_serving,
            sequencer_step,
        };
        let collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(metrics.requests.clone()),
            Box::new(metrics.latency.clone()),
            Box::new(metrics.in_flight.clone()),
            Box::new(metrics.streams_open.clone()),
            Box::new(metrics.stream_messages.clone()),
            Box::new(metrics.import_records.clone()),
            Box::new(metrics.import_waits.clone()),
            Box::new(metrics.rejected.clone()),
            Box::new(metrics.watchers.clone()),
            Box::new(metrics.events_pending.clone()),
            Box::new(metrics.events_numbered.clone()),
            Box::new(metrics.pool_size.clone()),
            Box::new(metrics.pool_idle.clone()),
            Box::new(metrics.pool_max.clone()),
            Box::new(metrics.replica_lag.clone()),
            Box::new(metrics.replica_serving.clone()),
            Box::new(metrics.sequencer_step.clone()),
        ];
        for collector in collectors {
            metrics
                .registry
                .register(collector)
                .expect("each metric registered once");
        }
        metrics
    }

    /// The exposition text of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!(error = %e, "cannot render metrics");
        }
        String::from_utf8(out).unwrap_or_default()
    }

    /// A call began.
    pub fn call_started(&self, method: &'static str) {
        self.in_flight.with_label_values(&[method]).inc();
    }

    /// A call ended with `code` after `seconds`.
    pub fn call_finished(&self, method: &'static str, code: Code, caller: &str, seconds: f64) {
        let code = code_name(code);
        self.in_flight.with_label_values(&[method]).dec();
        self.requests
            .with_label_values(&[method, code, caller])
            .inc();
        self.latency
            .with_label_values(&[method, code])
            .observe(seconds);
    }

    /// A call of a streaming method began (`open`) or ended.
    pub fn stream(&self, method: &'static str, open: bool) {
        let gauge = self.streams_open.with_label_values(&[method]);
        if open { gauge.inc() } else { gauge.dec() }
    }

    /// `n` messages went out on a response stream of `method`.
    pub fn stream_messages(&self, method: &'static str, n: u64) {
        self.stream_messages.with_label_values(&[method]).inc_by(n);
    }

    /// `n` imported records ended with `outcome`.
    pub fn import_records(&self, outcome: &'static str, n: u64) {
        if n > 0 {
            self.import_records.with_label_values(&[outcome]).inc_by(n);
        }
    }

    /// A call was refused for `reason` (an ErrorInfo reason).
    /// An import waited for the import memory budget.
    pub fn import_waited(&self) {
        self.import_waits.inc();
    }

    pub fn rejected(&self, reason: &'static str) {
        self.rejected.with_label_values(&[reason]).inc();
    }

    /// A watcher connected (`true`) or left.
    pub fn watcher(&self, connected: bool) {
        if connected {
            self.watchers.inc();
        } else {
            self.watchers.dec();
        }
    }

    /// The change feed's state: rows waiting for a number, and the newest
    /// number.
    pub fn change_feed(&self, pending: i64, newest: i64) {
        self.events_pending.set(pending);
        self.events_numbered.set(newest);
    }

    /// A sequencer step that numbered events took `seconds`.
    pub fn sequencer_step(&self, seconds: f64) {
        self.sequencer_step.observe(seconds);
    }

    /// The primary's pool.
    pub fn pool(&self, size: u32, idle: usize, max: u32) {
        self.pool_size.set(i64::from(size));
        self.pool_idle.set(i64::try_from(idle).unwrap_or(i64::MAX));
        self.pool_max.set(i64::from(max));
    }

    /// A replica's state as last checked: its lag (None while unknown) and
    /// whether it serves reads.
    pub fn replica(&self, replica: &str, lag_seconds: Option<f64>, serving: bool) {
        self.replica_lag
            .with_label_values(&[replica])
            .set(lag_seconds.unwrap_or(f64::NAN));
        self.replica_serving
            .with_label_values(&[replica])
            .set(i64::from(serving));
    }
}

/// The RPC name of a request path for the `method` label: the method of a
/// served service, or `unknown` (a path a client made up), so that the
/// label's values stay bounded.
pub fn method_label(path: &str) -> &'static str {
    crate::auth::served_method(path).unwrap_or("unknown")
}

/// A code's name as the gRPC specification writes it (`NOT_FOUND`).
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_counted_by_method_code_and_caller() {
        let m = Metrics::new();
        m.call_started("GetMeeting");
        m.call_finished("GetMeeting", Code::NotFound, "news", 0.002);
        m.rejected("TOO_MANY_CALLS");
        let text = m.render();
        assert!(text.contains(
            r#"meetings_grpc_requests_total{caller="news",code="NOT_FOUND",method="GetMeeting"} 1"#
        ));
        assert!(text.contains(r#"meetings_grpc_requests_in_flight{method="GetMeeting"} 0"#));
        assert!(text.contains(
            r#"meetings_grpc_request_duration_seconds_bucket{code="NOT_FOUND",method="GetMeeting",le="0.0025"} 1"#
        ));
        assert!(text.contains(r#"meetings_rejected_calls_total{reason="TOO_MANY_CALLS"} 1"#));
    }
}
