//! OpenTelemetry: a call that carries a W3C trace context is exported, as
//! a child of the caller's span, to a real OTLP receiver (the collector's
//! gRPC trace service, served here), with its storage spans as its
//! children; its log line carries the trace id.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use meetings::pb;
use meetings::pb::meeting_service_client::MeetingServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;

use crate::helpers::{ServerProcess, eventually, meeting, spawn_app};

/// Every span exported to it.
#[derive(Clone, Default)]
struct Receiver(Arc<Mutex<Vec<Span>>>);

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let spans = request
            .into_inner()
            .resource_spans
            .into_iter()
            .flat_map(|r| r.scope_spans)
            .flat_map(|s| s.spans);
        self.0.lock().unwrap().extend(spans);
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

impl Receiver {
    fn named(&self, name: &str) -> Option<Span> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .find(|s| s.name == name)
            .cloned()
    }
}

fn int_attribute(span: &Span, key: &str) -> Option<i64> {
    span.attributes.iter().find(|a| a.key == key).and_then(|a| {
        match a.value.as_ref()?.value.as_ref()? {
            Value::IntValue(v) => Some(*v),
            _ => None,
        }
    })
}

#[tokio::test]
async fn a_call_with_a_traceparent_is_exported_in_the_callers_trace() {
    use sqlx::ConnectOptions;
    let receiver = Receiver::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(receiver.clone()))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );

    let app = spawn_app().await;
    app.create(meeting("2022-05-05", &["AZ", "JP"])).await;
    let url = app.pool.connect_options().to_url_lossy().to_string();
    let server = ServerProcess::spawn_with_env(
        &url,
        &[],
        "info,meetings=debug",
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    );
    let started = eventually(Duration::from_secs(30), || async {
        server.channel().await.is_ok()
    })
    .await;
    assert!(started, "the server starts");

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent_id = "00f067aa0ba902b7";
    let mut request = tonic::Request::new(pb::GetCountryPairSummaryRequest {
        country_a: "AZ".into(),
        country_b: "JP".into(),
        ..Default::default()
    });
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{trace_id}-{parent_id}-01").parse().unwrap(),
    );
    request
        .metadata_mut()
        .insert("tracestate", "news=platform".parse().unwrap());
    let summary = MeetingServiceClient::new(server.channel().await.unwrap())
        .get_country_pair_summary(request)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(summary.meeting_count, 1);

    let name = "meetings.v1.MeetingService/GetCountryPairSummary";
    let exported = eventually(Duration::from_secs(20), || async {
        receiver.named(name).is_some() && receiver.named("storage.pair_summary").is_some()
    })
    .await;
    assert!(
        exported,
        "the call's spans reach the OTLP receiver; received: {:?}\nserver log:\n{}",
        receiver
            .0
            .lock()
            .unwrap()
            .iter()
            .map(|s| s.name.clone())
            .collect::<Vec<_>>(),
        std::fs::read_to_string(server.log.path()).unwrap_or_default()
    );
    let call = receiver.named(name).unwrap();
    assert_eq!(
        hex::encode(&call.trace_id),
        trace_id,
        "in the caller's trace"
    );
    assert_eq!(
        hex::encode(&call.parent_span_id),
        parent_id,
        "a child of the caller's span"
    );
    assert_eq!(call.kind, SpanKind::Server as i32);
    assert_eq!(call.trace_state, "news=platform");
    assert_eq!(int_attribute(&call, "rpc.grpc.status_code"), Some(0));
    let storage = receiver.named("storage.pair_summary").unwrap();
    assert_eq!(hex::encode(&storage.trace_id), trace_id);
    assert_eq!(
        storage.parent_span_id, call.span_id,
        "the storage span is the call's child"
    );

    // A failed call's span says so.
    let mut request = tonic::Request::new(pb::GetMeetingRequest {
        id: "not an id".into(),
    });
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{trace_id}-{parent_id}-01").parse().unwrap(),
    );
    MeetingServiceClient::new(server.channel().await.unwrap())
        .get_meeting(request)
        .await
        .unwrap_err();
    let failed = eventually(Duration::from_secs(20), || async {
        receiver
            .named("meetings.v1.MeetingService/GetMeeting")
            .is_some()
    })
    .await;
    assert!(failed);
    let get = receiver
        .named("meetings.v1.MeetingService/GetMeeting")
        .unwrap();
    assert_eq!(int_attribute(&get, "rpc.grpc.status_code"), Some(3));

    let logs = std::fs::read_to_string(server.log.path()).unwrap();
    assert!(
        logs.lines()
            .any(|l| l.contains("request finished") && l.contains(trace_id)),
        "the call's log line carries its trace id:\n{logs}"
    );
}
