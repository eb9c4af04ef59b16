//! The service's edge: one tower layer around every call that
//!
//! - opens the call's `grpc` span and logs its end once, with its status
//!   and its latency from arrival to the last byte;
//! - enforces the client's `grpc-timeout` from the call's arrival, on the
//!   response and on a stream's body alike, answering DEADLINE_EXCEEDED,
//!   and the server's deadline of unary calls (`--request-timeout-ms`)
//!   from the arrival too, so that a request body that never ends cannot
//!   hold a call open; refuses a malformed `grpc-timeout` and a request
//!   that is not gRPC (HTTP 415, as gRPC over HTTP/2 specifies);
//! - gives the statuses that tonic makes itself (a request that does not
//!   decode, an oversized message, an unknown method, an unsupported
//!   compression) the code callers branch on and a `google.rpc.ErrorInfo`,
//!   with a short message of our own instead of the decoder's text.
//!
//! Statuses made by the service carry details already and pass unchanged.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::HeaderMap;
use http_body::Frame;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tonic::body::Body;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};
use tracing::{Instrument, Span, field};

use crate::auth::CallerSlot;
use crate::error::{ERROR_DOMAIN, Error};
use crate::metrics::Metrics;

/// How much earlier than the client's deadline a call is ended. tonic also
/// enforces `grpc-timeout`, outside this layer, and answers CANCELLED; ending
/// a little before it makes the answer DEADLINE_EXCEEDED, as gRPC specifies.
const DEADLINE_MARGIN: Duration = Duration::from_millis(20);

/// Longest status message passed on from tonic (it may quote a header).
const MAX_MESSAGE: usize = 200;

/// The edge of the service; `shutdown`, when cancelled, ends every
/// response stream (health's Watch and reflection's included) with
/// UNAVAILABLE / SHUTTING_DOWN once it has sent what it had ready, so that
/// a graceful stop does not wait for streams that never end by themselves.
/// `unary_timeout` is the server's deadline of calls without streams.
#[derive(Debug, Clone)]
pub struct EdgeLayer {
    shutdown: CancellationToken,
    metrics: Metrics,
    unary_timeout: Duration,
}

impl EdgeLayer {
    pub fn new(shutdown: CancellationToken, metrics: Metrics, unary_timeout: Duration) -> Self {
        Self {
            shutdown,
            metrics,
            unary_timeout,
        }
    }
}

impl<S> tower::Layer<S> for EdgeLayer {
    type Service = Edge<S>;
    fn layer(&self, inner: S) -> Edge<S> {
        Edge {
            inner,
            shutdown: self.shutdown.clone(),
            metrics: self.metrics.clone(),
            unary_timeout: self.unary_timeout,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Edge<S> {
    inner: S,
    shutdown: CancellationToken,
    metrics: Metrics,
    unary_timeout: Duration,
}

impl<S> tower::Service<http::Request<Body>> for Edge<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<http::Response<Body>, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let arrival = Instant::now();
        let method = crate::metrics::method_label(request.uri().path());
        let streaming = STREAMING.contains(&method);
        let client_timeout = grpc_timeout(request.headers());
        let refusal = refusal(request.headers(), &client_timeout);
        // The client's deadline bounds the response and its body; the
        // server's deadline of unary calls bounds the response (the
        // handler's work) but not the body, which a slow reader takes at
        // its pace, as the handler's own deadline did.
        let deadline = client_timeout.ok().flatten().map(|t| {
            arrival
                + t.saturating_sub(DEADLINE_MARGIN)
                    .max(Duration::from_millis(1))
        });
        let response_deadline = [deadline, (!streaming).then(|| arrival + self.unary_timeout)]
            .into_iter()
            .flatten()
            .min();
        let path = request.uri().path();
        // `otel.*` and `rpc.*` name the span as OpenTelemetry's semantic
        // conventions for gRPC servers want it in an exported trace.
        let span = tracing::info_span!(
            "grpc",
            method = path,
            caller = field::Empty,
            status = field::Empty,
            latency_ms = field::Empty,
            trace_id = field::Empty,
            otel.name = path.trim_start_matches('/'),
            otel.kind = "server",
            otel.status_code = field::Empty,
            rpc.system = "grpc",
            rpc.grpc.status_code = field::Empty,
        );
        crate::telemetry::continue_trace(&span, request.headers());
        let caller = CallerSlot::default();
        let mut request = request.map(|body| Body::new(ResetAware(body)));
        request.extensions_mut().insert(caller.clone());
        self.metrics.call_started(method);
        if streaming {
            self.metrics.stream(method, true);
        }
        let response = match refusal {
            // Answered here, before tonic (whose own timeout would answer
            // a deadline within DEADLINE_MARGIN CANCELLED) sees the call.
            Some(refused) => futures_util::future::Either::Left(std::future::ready(Ok(refused))),
            None => futures_util::future::Either::Right(
                span.in_scope(|| self.inner.call(request))
                    .instrument(span.clone()),
            ),
        };
        let call = Call {
            arrival,
            span,
            method,
            caller,
            metrics: self.metrics.clone(),
            streaming,
            done: false,
        };
        let shutdown = self.shutdown.clone();
        Box::pin(async move {
            let response = match response_deadline {
                Some(deadline) => tokio::time::timeout_at(deadline, response)
                    .await
                    .unwrap_or_else(|_| Ok(Status::from(Error::DeadlineExceeded).into_http())),
                None => response.await,
            };
            let Ok(mut response) = response;
            let ends_here = rewrite(response.headers_mut());
            if let Some((code, reason)) = ends_here {
                // A trailers-only response: the call ends with it.
                call.finished(code, reason);
                return Ok(response);
            }
            let (parts, body) = response.into_parts();
            let body = EdgeBody {
                inner: Some(body),
                deadline: deadline.map(|d| Box::pin(tokio::time::sleep_until(d))),
                shutdown: Box::pin(shutdown.cancelled_owned()),
                call: Some(call),
            };
            Ok(http::Response::from_parts(parts, Body::new(body)))
        })
    }
}

/// The answer to a call refused before the service sees it: a request
/// that is not gRPC, a malformed `grpc-timeout`, or a deadline too short
/// to do anything in.
fn refusal(
    headers: &HeaderMap,
    client_timeout: &Result<Option<Duration>, String>,
) -> Option<http::Response<Body>> {
    // application/grpc, alone or followed by a subtype (+proto) or
    // parameters, in any case (media types are case-insensitive).
    let is_grpc = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.get(..GRPC_CONTENT_TYPE.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(GRPC_CONTENT_TYPE))
                && matches!(
                    v.as_bytes().get(GRPC_CONTENT_TYPE.len()),
                    None | Some(b'+' | b';')
                )
        });
    if !is_grpc {
        let mut v = crate::domain::Violations::new();
        v.add(
            "content-type",
            "must be application/grpc (or application/grpc+proto)",
        );
        let mut response = Status::from(Error::invalid_request(v)).into_http();
        *response.status_mut() = http::StatusCode::UNSUPPORTED_MEDIA_TYPE;
        return Some(response);
    }
    let error = match client_timeout {
        Err(problem) => {
            let mut v = crate::domain::Violations::new();
            v.add("grpc-timeout", problem);
            Error::invalid_request(v)
        }
        Ok(Some(t)) if *t <= DEADLINE_MARGIN => Error::DeadlineExceeded,
        Ok(_) => return None,
    };
    Some(Status::from(error).into_http())
}

/// What every gRPC request's content-type begins with.
const GRPC_CONTENT_TYPE: &str = "application/grpc";

/// How tonic-web's errors about a request body begin.
const GRPC_WEB_ERROR: &str = "tonic-web:";

/// What a request body reports when the client reset its stream.
pub(crate) const CLIENT_RESET: &str = "the client reset the stream";

/// A request body that tells a cut stream apart from its end. tonic
/// reports a client's RST_STREAM (CANCEL) as CANCELLED, which its request
/// decoder then turns into a normal end of stream: a client stream cut by
/// its client would look complete; a closed connection comes as another
/// code, which would read as a malformed request. The raw body fails only
/// for the transport's sake (messages are decoded later), so every failure
/// reaches the handler as ABORTED with `CLIENT_RESET`, the error it is.
struct ResetAware(Body);

impl http_body::Body for ResetAware {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        match Pin::new(&mut self.0).poll_frame(cx) {
            // gRPC-Web's decoding of its body (base64 of grpc-web-text)
            // is the request's fault, not the transport's: it passes on,
            // to be answered INVALID_ARGUMENT.
            Poll::Ready(Some(Err(status))) if status.message().starts_with(GRPC_WEB_ERROR) => {
                Poll::Ready(Some(Err(status)))
            }
            Poll::Ready(Some(Err(status))) => {
                tracing::debug!(code = ?status.code(), message = status.message(), "request stream cut");
                Poll::Ready(Some(Err(Status::aborted(CLIENT_RESET))))
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.0.size_hint()
    }
}

/// Methods with a request or response stream (`grpc_streams_open`).
const STREAMING: [&str; 5] = [
    "StreamMeetingsByCountryPair",
    "WatchMeetings",
    "ImportMeetings",
    "ServerReflectionInfo",
    "Watch",
];

/// Refusals counted as `rejected_calls_total`, by their ErrorInfo reason.
const REJECTIONS: [&str; 4] = [
    "TOO_MANY_CALLS",
    "UNAUTHENTICATED",
    "MISSING_SCOPE",
    "UNKNOWN_METHOD",
];

/// What is logged and counted when a call ends.
struct Call {
    arrival: Instant,
    span: Span,
    method: &'static str,
    caller: CallerSlot,
    metrics: Metrics,
    /// Counted in `grpc_streams_open` until it ends.
    streaming: bool,
    /// Logged and counted already.
    done: bool,
}

impl Call {
    fn finished(mut self, code: Code, reason: Option<String>) {
        self.end(code, reason);
    }

    fn end(&mut self, code: Code, reason: Option<String>) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let elapsed = self.arrival.elapsed().as_secs_f64();
        self.span.record("status", field::debug(code));
        self.span.record("latency_ms", elapsed * 1e3);
        self.span.record("rpc.grpc.status_code", code as i32);
        if matches!(
            code,
            Code::Unknown
                | Code::DeadlineExceeded
                | Code::Unimplemented
                | Code::Internal
                | Code::Unavailable
                | Code::DataLoss
        ) {
            // The server errors of the gRPC conventions; a caller's mistake
            // (INVALID_ARGUMENT, NOT_FOUND...) leaves the span unset.
            self.span.record("otel.status_code", "ERROR");
        }
        // Thousands of successful calls a second would flood the log: the
        // metrics count them; failures stay visible.
        match code {
            Code::Ok => tracing::debug!(parent: &self.span, "request finished"),
            Code::Internal | Code::Unknown | Code::DataLoss | Code::Unavailable => {
                tracing::warn!(parent: &self.span, "request finished")
            }
            _ => tracing::info!(parent: &self.span, "request finished"),
        }
        if self.streaming {
            self.metrics.stream(self.method, false);
        }
        if let Some(reason) = reason.and_then(|r| REJECTIONS.into_iter().find(|known| *known == r))
        {
            self.metrics.rejected(reason);
        }
        let caller = self.caller.get().unwrap_or("-");
        self.metrics
            .call_finished(self.method, code, caller, elapsed);
    }
}

impl Drop for Call {
    /// A call dropped before its end was seen: the client reset the stream
    /// or closed the connection, before the response (the handler's future
    /// is dropped) or during its body. Without this, its in-flight and
    /// open-stream gauges would never come down.
    fn drop(&mut self) {
        self.end(Code::Cancelled, None);
    }
}

/// A response body that ends at the client's deadline and rewrites the
/// status in its trailers like the headers of a trailers-only response.
struct EdgeBody {
    inner: Option<Body>,
    deadline: Option<Pin<Box<Sleep>>>,
    shutdown: Pin<Box<WaitForCancellationFutureOwned>>,
    /// Taken when the call's end is logged.
    call: Option<Call>,
}

impl EdgeBody {
    /// Ends the stream with `error`'s status: dropping the inner body
    /// stops its work.
    fn end_with(&mut self, error: Error) -> Frame<Bytes> {
        let status = Status::from(error);
        let mut trailers = HeaderMap::new();
        if let Err(e) = status.add_header(&mut trailers) {
            tracing::warn!(error = %e, "cannot write a status");
        }
        self.finish(status.code(), reason_of(&status));
        Frame::trailers(trailers)
    }

    fn finish(&mut self, code: Code, reason: Option<String>) {
        self.inner = None;
        self.deadline = None;
        if let Some(call) = self.call.take() {
            call.finished(code, reason);
        }
    }
}

impl http_body::Body for EdgeBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let span = this
            .call
            .as_ref()
            .map_or_else(Span::none, |c| c.span.clone());
        // The deadline first: a stream that always has a message ready
        // must end at it too.
        if let Some(deadline) = this.deadline.as_mut()
            && deadline.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(Some(Ok(this.end_with(Error::DeadlineExceeded))));
        }
        let polled = span.in_scope(|| Pin::new(inner).poll_frame(cx));
        match polled {
            Poll::Ready(Some(Ok(frame))) => match frame.into_trailers() {
                Ok(mut trailers) => {
                    let (code, reason) = rewrite(&mut trailers).unwrap_or((Code::Ok, None));
                    this.finish(code, reason);
                    Poll::Ready(Some(Ok(Frame::trailers(trailers))))
                }
                Err(frame) => Poll::Ready(Some(Ok(frame))),
            },
            Poll::Ready(Some(Err(status))) => {
                this.finish(status.code(), reason_of(&status));
                Poll::Ready(Some(Err(status)))
            }
            Poll::Ready(None) => {
                this.finish(Code::Ok, None);
                Poll::Ready(None)
            }
            // Nothing ready: on shutdown, the stream ends here.
            Poll::Pending if this.shutdown.as_mut().poll(cx).is_ready() => {
                Poll::Ready(Some(Ok(this.end_with(Error::ShuttingDown))))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| http_body::SizeHint::with_exact(0), |b| b.size_hint())
    }
}

/// If `headers` carry a final status, makes it one a caller can act on and
/// returns its code and ErrorInfo reason. Statuses with details are the
/// service's own and stay.
fn rewrite(headers: &mut HeaderMap) -> Option<(Code, Option<String>)> {
    let status = Status::from_header_map(headers)?;
    if status.code() == Code::Ok {
        return Some((Code::Ok, None));
    }
    if !status.details().is_empty() {
        return Some((status.code(), reason_of(&status)));
    }
    let status = made_by_tonic(&status);
    for name in ["grpc-status", "grpc-message", "grpc-status-details-bin"] {
        headers.remove(name);
    }
    if let Err(e) = status.add_header(headers) {
        tracing::warn!(error = %e, "cannot write a rewritten status");
    }
    Some((status.code(), reason_of(&status)))
}

/// The ErrorInfo reason of a status, if it has one.
fn reason_of(status: &Status) -> Option<String> {
    status.get_details_error_info().map(|info| info.reason)
}

/// The status a caller gets for one that tonic made without details.
fn made_by_tonic(status: &Status) -> Status {
    let message = status.message();
    let (code, reason, text): (Code, &str, String) = match status.code() {
        // Decoding failures (prost's errors, a truncated frame, a compressed
        // flag without an encoding) are the request's fault, not ours.
        Code::Internal if is_decode_failure(message) => (
            Code::InvalidArgument,
            "INVALID_REQUEST",
            decode_problem(message).into(),
        ),
        Code::OutOfRange | Code::ResourceExhausted
            if message.contains("too large") || message.contains("size limit") =>
        {
            let text = if message.contains("encoded message") {
                "the response would exceed the server's message size limit"
            } else {
                "the request message exceeds the server's message size limit"
            };
            (Code::ResourceExhausted, "MESSAGE_TOO_LARGE", text.into())
        }
        Code::Unimplemented if message.contains("compressed with") => (
            Code::Unimplemented,
            "UNSUPPORTED_ENCODING",
            "the request's grpc-encoding is not supported (see grpc-accept-encoding)".into(),
        ),
        Code::Unimplemented => (
            Code::Unimplemented,
            "UNKNOWN_METHOD",
            "this server has no such method".into(),
        ),
        // A unary request's body cut by its client (ResetAware), failed in
        // tonic's decoding: the client went away, not a conflict.
        Code::Cancelled | Code::Aborted if code_is_cancel(status) => (
            Code::Cancelled,
            "CANCELLED",
            "the call was cancelled".into(),
        ),
        Code::Internal | Code::Unknown => {
            tracing::error!(message = %short(message), "tonic failed a call");
            (Code::Internal, "INTERNAL", "internal error".into())
        }
        code => (code, code_name(code), short(message)),
    };
    let mut details = ErrorDetails::new();
    details.set_error_info(reason, ERROR_DOMAIN, HashMap::new());
    let mut out = Status::with_error_details(code, text, details);
    // Keep what tells a client how to retry (grpc-accept-encoding).
    *out.metadata_mut() = status.metadata().clone();
    out
}

/// What is wrong with a request that does not decode, from tonic's report:
/// the framing, the compression or the message itself, in our words (the
/// decoder's text names its internals).
fn decode_problem(message: &str) -> &'static str {
    if message.contains("compressed-flag") {
        "a message is marked compressed but the request has no grpc-encoding"
    } else if message.contains("compression flag") {
        "a message's compressed flag is neither 0 nor 1"
    } else if message.contains("Error decompressing") {
        "a message does not decompress with the request's grpc-encoding"
    } else if message.contains("Unexpected EOF decoding") {
        "the request ends inside a message frame"
    } else if message.contains("Missing request message") {
        "the request has no message"
    } else if message.contains(GRPC_WEB_ERROR) {
        "the gRPC-Web body does not decode (grpc-web-text must be base64)"
    } else {
        "the request is not a valid protobuf message of this method's request type"
    }
}

/// Whether a status without details says the client cancelled the call.
fn code_is_cancel(status: &Status) -> bool {
    status.code() == Code::Cancelled || status.message().contains(CLIENT_RESET)
}

/// Whether an INTERNAL status is tonic's report of a request that does not
/// decode.
pub(crate) fn is_decode_failure(message: &str) -> bool {
    [
        "failed to decode",
        "compressed-flag",
        "compression flag",
        "Unexpected EOF decoding",
        "Missing request message",
        "Error decompressing",
        GRPC_WEB_ERROR,
    ]
    .iter()
    .any(|m| message.contains(m))
}

fn short(message: &str) -> String {
    match message.char_indices().nth(MAX_MESSAGE) {
        Some((end, _)) => format!("{}…", &message[..end]),
        None => message.to_owned(),
    }
}

/// A code's name as gRPC spells it, e.g. `NOT_FOUND`.
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

/// The client's `grpc-timeout` header ("100m", "5S", ...), if any; what is
/// wrong with it if it is no number and unit. gRPC specifies at most 8
/// digits, but clients send more (connect-es writes any number of
/// milliseconds, fractions included): longer values are taken as the
/// longest timeout 8 digits can say, and a fraction is kept.
fn grpc_timeout(headers: &HeaderMap) -> Result<Option<Duration>, String> {
    let Some(value) = headers.get("grpc-timeout") else {
        return Ok(None);
    };
    let bad = || {
        let shown = value
            .to_str()
            .map_or_else(|_| "(not text)".to_owned(), crate::domain::quote);
        format!("{shown} is not a timeout: digits and a unit (H, M, S, m, u or n)")
    };
    let value = value.to_str().map_err(|_| bad())?.trim();
    let Some((number, unit)) = value.len().checked_sub(1).map(|end| value.split_at(end)) else {
        return Err(bad());
    };
    let number = number.strip_prefix('+').unwrap_or(number);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) || number.ends_with('.') {
        return Err(bad());
    }
    let seconds_per_unit = match unit {
        "H" => 3600.0,
        "M" => 60.0,
        "S" => 1.0,
        "m" => 1e-3,
        "u" => 1e-6,
        "n" => 1e-9,
        _ => return Err(bad()),
    };
    let units: f64 = number.parse().map_err(|_| bad())?;
    Ok(Some(Duration::from_secs_f64(
        units.min(99_999_999.0) * seconds_per_unit,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert("grpc-timeout", value.parse().unwrap());
        m
    }

    #[test]
    fn grpc_timeout_units() {
        assert_eq!(
            grpc_timeout(&with("100m")),
            Ok(Some(Duration::from_millis(100)))
        );
        assert_eq!(grpc_timeout(&with("2S")), Ok(Some(Duration::from_secs(2))));
        assert_eq!(
            grpc_timeout(&with("1H")),
            Ok(Some(Duration::from_secs(3600)))
        );
        assert_eq!(grpc_timeout(&with("0n")), Ok(Some(Duration::ZERO)));
        assert_eq!(grpc_timeout(&HeaderMap::new()), Ok(None));
        // What clients send beyond the specification.
        assert_eq!(
            grpc_timeout(&with("2.5S")),
            Ok(Some(Duration::from_millis(2500)))
        );
        assert_eq!(grpc_timeout(&with("+5S")), Ok(Some(Duration::from_secs(5))));
        assert_eq!(
            grpc_timeout(&with("123456789012S")),
            Ok(Some(Duration::from_secs(99_999_999))),
            "past 8 digits: the longest 8 digits say"
        );
        for bad in [
            "5x", "S", "", "-5S", "5s", "5", "abc", "1.S", ".5S", "1e3S", "NaNS",
        ] {
            let problem = grpc_timeout(&with(bad)).expect_err(bad);
            assert!(problem.contains("digits and a unit"), "{bad}: {problem}");
        }
    }

    /// Every method with a stream is in STREAMING: one left out would get
    /// the deadline of unary calls.
    #[test]
    fn every_streaming_method_is_listed() {
        use prost::Message as _;
        let set = prost_types::FileDescriptorSet::decode(crate::pb::FILE_DESCRIPTOR_SET).unwrap();
        let mut streaming: Vec<&str> = set
            .file
            .iter()
            .flat_map(|f| &f.service)
            .flat_map(|s| &s.method)
            .filter(|m| m.client_streaming() || m.server_streaming())
            .map(|m| m.name())
            .collect();
        // Health's Watch and reflection's ServerReflectionInfo come from
        // their crates' descriptors.
        streaming.extend(["Watch", "ServerReflectionInfo"]);
        streaming.sort_unstable();
        let mut listed = STREAMING.to_vec();
        listed.sort_unstable();
        assert_eq!(listed, streaming);
    }

    fn rewritten(status: Status) -> Status {
        let mut headers = HeaderMap::new();
        status.add_header(&mut headers).unwrap();
        rewrite(&mut headers);
        Status::from_header_map(&headers).unwrap()
    }

    fn reason(status: &Status) -> String {
        status
            .get_error_details()
            .error_info()
            .unwrap()
            .reason
            .clone()
    }

    #[test]
    fn tonics_statuses_get_our_codes_and_error_info() {
        let s = rewritten(Status::internal(
            "failed to decode Protobuf message: invalid string value: data is not UTF-8 encoded",
        ));
        assert_eq!(s.code(), Code::InvalidArgument);
        assert_eq!(reason(&s), "INVALID_REQUEST");
        assert!(!s.message().contains("UTF-8"), "no decoder internals");

        let s = rewritten(Status::internal("Unexpected EOF decoding stream."));
        assert_eq!(s.code(), Code::InvalidArgument);
        assert_eq!(s.message(), "the request ends inside a message frame");
        let s = rewritten(Status::internal(
            "protocol error: received message with compressed-flag but no grpc-encoding was specified",
        ));
        assert_eq!(
            s.message(),
            "a message is marked compressed but the request has no grpc-encoding"
        );

        let s = rewritten(Status::out_of_range(
            "Error, decoded message length too large: found 5 bytes, the limit is: 4 bytes",
        ));
        assert_eq!(s.code(), Code::ResourceExhausted);
        assert_eq!(reason(&s), "MESSAGE_TOO_LARGE");

        let s = rewritten(Status::unimplemented(""));
        assert_eq!(reason(&s), "UNKNOWN_METHOD");

        let s = rewritten(Status::internal("something else"));
        assert_eq!((s.code(), s.message()), (Code::Internal, "internal error"));
    }

    #[test]
    fn the_services_own_statuses_pass_unchanged() {
        let ours = Status::from(Error::MeetingNotFound(uuid::Uuid::nil()));
        let s = rewritten(ours.clone());
        assert_eq!(s.code(), ours.code());
        assert_eq!(s.message(), ours.message());
        assert_eq!(s.details(), ours.details());
    }
}
