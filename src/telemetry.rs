//! Logs and traces: the tracing subscriber, and OpenTelemetry. (Each
//! call's span is opened by `api::EdgeLayer`, which continues the caller's
//! trace with `continue_trace`.)
//!
//! Traces are exported over OTLP/gRPC when `OTEL_EXPORTER_OTLP_ENDPOINT`
//! (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, with the exporter's
//! and SDK's other standard variables (`OTEL_SERVICE_NAME`,
//! `OTEL_BSP_SCHEDULE_DELAY`, ...). Without it no OpenTelemetry layer is
//! installed: spans cost what they cost before, and a caller's
//! `traceparent` only gives log lines its `trace_id`.

use http::HeaderMap;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TraceId, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, fmt};

use crate::config::LogFormat;

/// What must outlive serving: the trace exporter, flushed on `shutdown`.
#[must_use]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Whether spans are exported.
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Sends the spans not yet exported (at the end of the process).
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(e) = provider.shutdown()
        {
            tracing::warn!(error = %e, "spans not exported at shutdown");
        }
    }
}

/// Whether the environment asks for OTLP export.
fn otlp_configured() -> bool {
    [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()))
}

/// Installs the global subscriber: log lines (RUST_LOG sets the level,
/// default info) and, when configured, the OTLP trace export. Does nothing
/// if a subscriber is installed already (as in tests). Must run inside the
/// Tokio runtime (the OTLP exporter is a tonic client).
pub fn init(format: LogFormat) -> anyhow::Result<Telemetry> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour codes only for a terminal: a file or a log collector would
    // get escape sequences in every line.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let logs = match format {
        LogFormat::Text => fmt::layer().with_ansi(ansi).boxed(),
        LogFormat::Json => fmt::layer().json().flatten_event(true).boxed(),
    };
    let provider = if otlp_configured() {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .build()
            .map_err(|e| anyhow::anyhow!("OTLP exporter: {e}"))?;
        let mut resource = opentelemetry_sdk::Resource::builder();
        if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
            resource = resource.with_service_name("meetings");
        }
        Some(
            SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(resource.build())
                .build(),
        )
    } else {
        None
    };
    // RUST_LOG filters spans for both: per-layer filters (a different
    // level for traces than for log lines) lose the call's span from the
    // log lines in tracing-subscriber 0.3 when both layers are present.
    let traces = provider
        .as_ref()
        .map(|provider| tracing_opentelemetry::layer().with_tracer(provider.tracer("meetings")));
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(logs)
        .with(traces)
        .try_init();
    Ok(Telemetry { provider })
}

/// Request metadata as the propagator reads it.
struct Metadata<'a>(&'a HeaderMap);

impl Extractor for Metadata<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// Makes the caller's trace (W3C `traceparent` and `tracestate` in
/// `headers`) the parent of a call's `span`, and records the span's
/// `trace_id`: the exported trace's, or without export the caller's, so
/// that log lines can be matched with the caller's trace.
pub fn continue_trace(span: &Span, headers: &HeaderMap) {
    let parent = headers
        .contains_key("traceparent")
        .then(|| TraceContextPropagator::new().extract(&Metadata(headers)));
    if let Some(parent) = &parent {
        // Fails only without the OpenTelemetry layer (no export).
        let _ = span.set_parent(parent.clone());
    }
    let own = span.context().span().span_context().trace_id();
    let trace_id = if own != TraceId::INVALID {
        Some(own)
    } else {
        parent
            .map(|cx| cx.span().span_context().trace_id())
            .filter(|id| *id != TraceId::INVALID)
    };
    if let Some(id) = trace_id {
        span.record("trace_id", tracing::field::display(id));
    }
}
