//! The admin HTTP listener (`--admin-addr`), for orchestrators and
//! Prometheus, apart from the gRPC port:
//!
//! - `/metrics`: every metric, in the Prometheus text format;
//! - `/healthz`: the process is alive and serving HTTP (never touches the
//!   database), for liveness probes;
//! - `/readyz`: the database answers and every migration this version
//!   knows is applied, for readiness probes.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::storage::Storage;

/// Longest a readiness check waits for the database.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone)]
struct Admin {
    metrics: Metrics,
    storage: Storage,
}

/// Serves the admin endpoints on `listener` until `stop` is cancelled.
pub async fn serve(
    listener: TcpListener,
    metrics: Metrics,
    storage: Storage,
    stop: CancellationToken,
) {
    let app = Router::new()
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(Admin { metrics, storage });
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(stop.cancelled_owned())
        .await
    {
        tracing::warn!(error = %e, "the admin listener stopped");
    }
}

async fn metrics_text(State(admin): State<Admin>) -> impl IntoResponse {
    // The pool's figures as of the scrape.
    let pool = admin.storage.pool();
    admin.metrics.pool(
        pool.size(),
        pool.num_idle(),
        pool.options().get_max_connections(),
    );
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        admin.metrics.render(),
    )
}

async fn ready(State(admin): State<Admin>) -> impl IntoResponse {
    match tokio::time::timeout(READY_TIMEOUT, admin.storage.ready()).await {
        Ok(Ok(())) => (StatusCode::OK, "ready\n".to_owned()),
        Ok(Err(why)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        ),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the database did not answer in 2 s\n".to_owned(),
        ),
    }
}
