//! Logs: a tracing subscriber, and one span per gRPC request carrying its
//! method, status and latency.

use std::time::Duration;

use http::{HeaderMap, Request, Response};
use tower_http::classify::{GrpcErrorsAsFailures, SharedClassifier};
use tower_http::trace::TraceLayer;
use tracing::{Span, field};
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber; RUST_LOG sets the level (default info).
/// Does nothing if one is already installed (as in tests).
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

type GrpcTraceLayer = TraceLayer<
    SharedClassifier<GrpcErrorsAsFailures>,
    fn(&Request<tonic::body::Body>) -> Span,
    (),
    fn(&Response<tonic::body::Body>, Duration, &Span),
    (),
    fn(Option<&HeaderMap>, Duration, &Span),
    (),
>;

/// One `grpc` span per request: `method`, then `status` and `latency_ms`
/// recorded when the call ends, with an event at that point.
pub fn grpc_trace_layer() -> GrpcTraceLayer {
    TraceLayer::new_for_grpc()
        .make_span_with(make_span as fn(&Request<tonic::body::Body>) -> Span)
        .on_request(())
        .on_response(on_response as fn(&Response<tonic::body::Body>, Duration, &Span))
        .on_body_chunk(())
        .on_eos(on_eos as fn(Option<&HeaderMap>, Duration, &Span))
        .on_failure(())
}

fn make_span(req: &Request<tonic::body::Body>) -> Span {
    tracing::info_span!(
        "grpc",
        method = req.uri().path(),
        status = field::Empty,
        latency_ms = field::Empty,
    )
}

/// A trailers-only response (every error, and nothing else) carries its
/// status in the headers and has no end-of-stream event.
fn on_response(res: &Response<tonic::body::Body>, latency: Duration, span: &Span) {
    if res.headers().contains_key("grpc-status") {
        finished(Some(res.headers()), latency, span);
    }
}

fn on_eos(trailers: Option<&HeaderMap>, latency: Duration, span: &Span) {
    finished(trailers, latency, span);
}

fn finished(headers: Option<&HeaderMap>, latency: Duration, span: &Span) {
    let code = headers
        .and_then(|h| h.get("grpc-status"))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .map(tonic::Code::from_i32)
        .unwrap_or(tonic::Code::Unknown);
    span.record("status", field::debug(code));
    span.record("latency_ms", latency.as_secs_f64() * 1e3);
    tracing::info!(parent: span, "request finished");
}

/// Gives tonic's answer to a request over the decoding limit (OUT_OF_RANGE)
/// the code gRPC specifies and callers branch on, RESOURCE_EXHAUSTED, when
/// it comes as a trailers-only response (unary calls, and client streams
/// that fail before answering). Deadlines are handled in `api::Limits`.
pub fn grpc_status_codes<B>(mut res: Response<B>) -> Response<B> {
    let headers = res.headers_mut();
    let message = headers
        .get("grpc-message")
        .and_then(|v| v.to_str().ok())
        .map(|m| m.replace("%20", " "))
        .unwrap_or_default();
    let status = headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let code = match status {
        "11" if message.contains("message length too large") => "8",
        _ => return res,
    };
    headers.insert("grpc-status", http::HeaderValue::from_static(code));
    res
}
