//! Builds the application (database, listener, services) and runs it until
//! a shutdown signal.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::PgConnectOptions;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::server::NamedService;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::api::{MeetingServiceRouter, MeetingsApi};
use crate::auth::{AuthLayer, Tokens};
use crate::config::Config;
use crate::embedded::{EmbeddedPostgres, default_data_dir};
use crate::metrics::Metrics;
use crate::pb::meeting_service_server::MeetingServiceServer;
use crate::storage::{PoolSettings, ReplicaSettings, Storage};

/// A built service, bound to its address, not yet serving.
pub struct Application {
    config: Config,
    listener: TcpListener,
    storage: Storage,
    embedded: Option<EmbeddedPostgres>,
    tokens: Option<Tokens>,
    tls: Option<std::sync::Arc<crate::tls::ReloadableTls>>,
    /// The admin HTTP listener, unless `--admin-addr` is empty.
    admin: Option<TcpListener>,
    metrics: Metrics,
}

impl Application {
    /// Connects to the database (starting the embedded one when no URL is
    /// configured), applies migrations and binds the listen address.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let tls = tls_config(&config)?;
        let (options, embedded) = match &config.database_url {
            Some(url) => {
                let options: PgConnectOptions = url
                    .parse()
                    .context("DATABASE_URL is not a valid PostgreSQL URL")?;
                (options, None)
            }
            None => {
                let dir = config.data_dir.clone().unwrap_or_else(default_data_dir);
                let pg = EmbeddedPostgres::start(&dir, &[]).await?;
                (pg.connect_options(), Some(pg))
            }
        };
        let settings = PoolSettings {
            max_connections: config.db_pool_size,
            acquire_timeout: config.db_acquire_timeout(),
        };
        let replicas = ReplicaSettings {
            replicas: config
                .replica_urls
                .iter()
                .enumerate()
                .map(|(i, url)| {
                    url.parse().with_context(|| {
                        format!("replica URL {} is not a valid PostgreSQL URL", i + 1)
                    })
                })
                .collect::<anyhow::Result<_>>()?,
            max_lag: Duration::from_millis(config.replica_max_lag_ms),
            wait: Duration::from_millis(config.replica_wait_ms),
        };
        let storage = Storage::connect(options, &settings, Some(&replicas))
            .await
            .context("cannot connect to the database")?;
        let keyed = crate::api::fill_match_keys(&storage)
            .await
            .context("cannot compute the stored match keys")?;
        if keyed > 0 {
            tracing::info!(meetings = keyed, "stored match keys computed");
        }
        let tokens = match &config.tokens_file {
            Some(path) => {
                let tokens = Tokens::load(path)?;
                tracing::info!(tokens = tokens.len(), file = %path.display(), "calls need a bearer token");
                Some(tokens)
            }
            None => {
                tracing::warn!("no --tokens-file: every caller may read and write");
                None
            }
        };
        let listener = TcpListener::bind(config.listen_addr)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen_addr))?;
        let admin = match config.admin_addr.0 {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on {addr} (--admin-addr)"))?,
            ),
            None => None,
        };
        Ok(Self {
            config,
            listener,
            storage,
            embedded,
            tokens,
            tls,
            admin,
            metrics: Metrics::new(),
        })
    }

    /// The admin listener's address (the real port when configured with
    /// port 0), unless it is off.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The bound address (the real port when configured with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound TCP listener has an address")
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// Serves until `shutdown` completes, then drains: open streams end with
    /// UNAVAILABLE, in-flight calls get up to the shutdown timeout, the pool
    /// closes and the embedded database stops last.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> anyhow::Result<()> {
        let Self {
            config,
            listener,
            storage,
            embedded,
            tokens,
            tls,
            admin,
            metrics,
        } = self;
        let stop = CancellationToken::new();
        let (reporter, mut health_service) = tonic_health::server::health_reporter();
        // Liveness: the process serves gRPC, whatever the database does.
        reporter
            .set_service_status(LIVENESS, ServingStatus::Serving)
            .await;
        // Bounded: a database that stopped answering since the migrations
        // ran must not hold the start.
        let answered = tokio::time::timeout(PROBE_TIMEOUT, probe_health(&reporter, &storage))
            .await
            .unwrap_or(false);
        set_status(&reporter, serving_if(answered)).await;
        let admin_task = admin.map(|listener| {
            tokio::spawn(crate::admin::serve(
                listener,
                metrics.clone(),
                storage.clone(),
                stop.clone(),
            ))
        });
        let sampler = tokio::spawn(sample(storage.clone(), metrics.clone(), stop.clone()));
        let health_task = tokio::spawn(watch_database(
            storage.clone(),
            reporter.clone(),
            config.health_interval(),
            stop.clone(),
        ));

        // grpcurl before 1.8.8 speaks only v1alpha; newer clients prefer v1.
        let mut reflection_v1alpha = reflection().build_v1alpha()?;
        let mut reflection_v1 = reflection().build_v1()?;
        for encoding in crate::api::COMPRESSION {
            health_service = health_service
                .accept_compressed(encoding)
                .send_compressed(encoding);
            reflection_v1 = reflection_v1
                .accept_compressed(encoding)
                .send_compressed(encoding);
            reflection_v1alpha = reflection_v1alpha
                .accept_compressed(encoding)
                .send_compressed(encoding);
        }

        // Change feed: number events and wake watchers (see changefeed).
        // Its partitions for now are made before the first call is served,
        // so that the first writes' records go to them.
        crate::changefeed::prepare_partitions(&storage, config.event_retention()).await;
        let (events_tx, events_rx) = tokio::sync::watch::channel(0u64);
        let sequencer = tokio::spawn(crate::changefeed::run_sequencer(
            storage.clone(),
            events_tx.clone(),
            config.event_retention(),
            metrics.clone(),
            stop.clone(),
        ));
        let event_listener = tokio::spawn(crate::changefeed::run_listener(
            storage.clone(),
            events_tx.clone(),
            stop.clone(),
        ));
        let figures = tokio::spawn(crate::changefeed::run_figures(
            storage.clone(),
            events_rx.clone(),
            stop.clone(),
        ));
        let replica_checks = tokio::spawn(storage.clone().watch_replicas(stop.clone()));
        let event_poller = tokio::spawn(crate::changefeed::run_poller(
            storage.clone(),
            events_tx,
            stop.clone(),
        ));

        let limits = crate::api::Limits::new(
            config.max_concurrent_calls,
            config.calls_per_connection(),
            config.calls_per_caller(),
            config.db_pool_size as usize,
            config.request_timeout(),
            config.max_response_bytes,
        )
        .with_import_memory(config.import_memory_mb.saturating_mul(1024 * 1024));
        let api = MeetingServiceRouter::new(
            MeetingsApi::new(
                storage.clone(),
                stop.clone(),
                events_rx,
                limits,
                metrics.clone(),
            ),
            config.max_request_bytes,
            config.max_response_bytes,
        );
        let auth = AuthLayer::new(tokens);
        // Installed before serving, whatever is configured: SIGHUP's
        // default action would end the process.
        let hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .context("cannot listen for SIGHUP")?;
        let reload = tokio::spawn(reload_on_hangup(
            hangups,
            auth.tokens().zip(config.tokens_file.clone()),
            tls.clone(),
            stop.clone(),
        ));
        let keepalive = (config.http2_keepalive_ms > 0)
            .then(|| Duration::from_millis(config.http2_keepalive_ms));
        let cors = cors_layer(&config.cors_allowed_origins)?;
        let router = Server::builder()
            // gRPC-Web from browsers comes over HTTP/1.1 as well as HTTP/2.
            .accept_http1(true)
            .max_concurrent_streams(config.max_streams_per_connection)
            .http2_keepalive_interval(keepalive)
            .http2_keepalive_timeout(Some(Duration::from_millis(
                config.http2_keepalive_timeout_ms,
            )))
            .tcp_keepalive(Some(Duration::from_secs(60)))
            // Outside the edge: the edge sees (and rewrites) gRPC statuses
            // in trailers before gRPC-Web moves them into the body.
            .layer(tower::util::option_layer(cors))
            .layer(tonic_web::GrpcWebLayer::new())
            .layer(crate::api::EdgeLayer::new(
                stop.clone(),
                metrics.clone(),
                config.request_timeout(),
            ))
            .layer(auth)
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(api);
        let mut server = match tls {
            Some(tls) => tokio::spawn(router.serve_with_incoming_shutdown(
                crate::tls::incoming(listener, tls),
                stop.clone().cancelled_owned(),
            )),
            None => tokio::spawn(router.serve_with_incoming_shutdown(
                // Without TCP_NODELAY, small responses wait for delayed ACKs (~40 ms).
                TcpIncoming::from(listener).with_nodelay(Some(true)),
                stop.clone().cancelled_owned(),
            )),
        };

        let result = tokio::select! {
            res = &mut server => res.context("server task failed")?.context("server failed"),
            () = shutdown => {
                tracing::info!("shutting down: draining open calls");
                set_status(&reporter, ServingStatus::NotServing).await;
                stop.cancel();
                match tokio::time::timeout(config.shutdown_timeout(), &mut server).await {
                    Ok(res) => res.context("server task failed")?.context("server failed"),
                    Err(_) => {
                        tracing::warn!("calls still open after the shutdown timeout; closing them");
                        server.abort();
                        Ok(())
                    }
                }
            }
        };
        stop.cancel();
        health_task.abort();
        sequencer.abort();
        event_listener.abort();
        event_poller.abort();
        figures.abort();
        replica_checks.abort();
        sampler.abort();
        reload.abort();
        if let Some(task) = admin_task {
            task.abort();
        }
        storage.pool().close().await;
        if let Some(pg) = embedded {
            pg.stop().await;
        }
        tracing::info!("stopped");
        result
    }
}

/// TLS from the configured files; refuses plaintext on a non-loopback
/// address unless allowed explicitly.
fn tls_config(
    config: &Config,
) -> anyhow::Result<Option<std::sync::Arc<crate::tls::ReloadableTls>>> {
    let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) else {
        if !config.listen_addr.ip().is_loopback() {
            if !config.allow_plaintext {
                anyhow::bail!(
                    "refusing to serve plaintext on {}, which is not a loopback address: \
                     give --tls-cert and --tls-key, or --allow-plaintext",
                    config.listen_addr
                );
            }
            tracing::warn!(addr = %config.listen_addr, "serving PLAINTEXT on a non-loopback address (--allow-plaintext)");
        }
        return Ok(None);
    };
    let tls = crate::tls::ReloadableTls::load(crate::tls::TlsFiles {
        cert: cert.clone(),
        key: key.clone(),
        client_ca: config.tls_client_ca.clone(),
    })?;
    if tls.mutual() {
        tracing::info!("TLS with client certificates required (mTLS)");
    } else {
        tracing::info!("TLS");
    }
    Ok(Some(std::sync::Arc::new(tls)))
}

/// CORS for gRPC-Web pages of the configured origins: the request headers
/// gRPC-Web and this service read, and the response headers a page must
/// see (the status, its details, the write position). None without
/// origins.
fn cors_layer(origins: &[String]) -> anyhow::Result<Option<tower_http::cors::CorsLayer>> {
    use http::{HeaderName, HeaderValue, Method};
    if origins.is_empty() {
        return Ok(None);
    }
    let origins = origins
        .iter()
        .map(|origin| {
            // A browser sends its origin serialised (lower-case host, no
            // default port, no path): anything else would never match.
            let trimmed = origin.trim().trim_end_matches('/');
            let serialised = url::Url::parse(trimmed)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
                .map(|u| u.origin().ascii_serialization());
            anyhow::ensure!(
                serialised.as_deref() == Some(trimmed),
                "--cors-allowed-origin {origin:?} is not an origin as browsers send it, such as \
                 https://news.example.org (scheme, lower-case host, a port only if not the \
                 default, no path)"
            );
            HeaderValue::from_str(trimmed).map_err(|_| {
                anyhow::anyhow!("--cors-allowed-origin {origin:?} is not a header value")
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let names = |list: &[&'static str]| {
        list.iter()
            .map(|n| HeaderName::from_static(n))
            .collect::<Vec<_>>()
    };
    tracing::info!(
        origins = origins.len(),
        "gRPC-Web open to the configured origins (CORS)"
    );
    Ok(Some(
        tower_http::cors::CorsLayer::new()
            .allow_origin(origins)
            .allow_methods([Method::POST])
            .allow_headers(names(&[
                "content-type",
                "x-grpc-web",
                "x-user-agent",
                "grpc-timeout",
                "grpc-encoding",
                "grpc-accept-encoding",
                "authorization",
                "x-meetings-min-lsn",
                "traceparent",
                "tracestate",
            ]))
            .expose_headers(names(&[
                "grpc-status",
                "grpc-message",
                "grpc-status-details-bin",
                "grpc-encoding",
                "grpc-accept-encoding",
                "x-meetings-lsn",
            ]))
            .max_age(Duration::from_secs(24 * 3600)),
    ))
}

/// Reflection over our service, the health service and the error details
/// (so that grpcurl can print google.rpc.BadRequest).
fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
}

const SERVICE_NAME: &str = <MeetingServiceServer<MeetingsApi> as NamedService>::NAME;
/// The health service name that reports whether the process serves gRPC,
/// without asking the database (for liveness probes; `""` and the
/// service's name say whether it can serve calls).
pub const LIVENESS: &str = "liveness";

/// On each SIGHUP, reads the tokens file and the TLS certificate, key and
/// client CA again: calls and connections that arrive after it use the new
/// ones, open connections stay. A file that cannot be read or parsed (or a
/// tokens file with no token, as a file caught half-written would be)
/// leaves what it configures as it was, and the log says why.
async fn reload_on_hangup(
    mut hangups: tokio::signal::unix::Signal,
    tokens: Option<(crate::auth::TokenSet, std::path::PathBuf)>,
    tls: Option<std::sync::Arc<crate::tls::ReloadableTls>>,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            received = hangups.recv() => if received.is_none() { return },
        }
        if tokens.is_none() && tls.is_none() {
            tracing::info!("SIGHUP: no tokens file and no TLS: nothing to reload");
        }
        if let Some((tokens, path)) = &tokens {
            match Tokens::load(path).and_then(|new| {
                anyhow::ensure!(!new.is_empty(), "it holds no token");
                Ok(new)
            }) {
                Ok(new) => {
                    tracing::info!(tokens = new.len(), file = %path.display(), "SIGHUP: tokens reloaded");
                    tokens.replace(new);
                }
                Err(e) => tracing::warn!(
                    error = format!("{e:#}"),
                    file = %path.display(),
                    "SIGHUP: the tokens file is not valid; the previous tokens stay"
                ),
            }
        }
        if let Some(tls) = &tls {
            match tls.reload() {
                Ok(()) => tracing::info!("SIGHUP: TLS certificate reloaded for new connections"),
                Err(e) => tracing::warn!(
                    error = format!("{e:#}"),
                    "SIGHUP: the TLS files are not valid; the previous certificate stays"
                ),
            }
        }
    }
}

/// How often the sampled metrics (the change feed's state, the replicas'
/// lag) are refreshed.
const SAMPLE_INTERVAL: Duration = Duration::from_secs(1);

/// Refreshes the metrics that are states rather than counts.
async fn sample(storage: Storage, metrics: Metrics, stop: CancellationToken) {
    loop {
        if let Ok(Ok((pending, newest))) = tokio::time::timeout(SAMPLE_INTERVAL, async {
            Ok::<_, crate::error::Error>((
                storage.pending_events().await?,
                storage.newest_sequence().await?,
            ))
        })
        .await
        {
            metrics.change_feed(pending, newest);
        }
        if let Some(replicas) = storage.replicas() {
            for (i, replica) in replicas.replicas().iter().enumerate() {
                let state = replica.state();
                let lag = match state {
                    crate::storage::ReplicaState::Serving { lag } => Some(lag),
                    crate::storage::ReplicaState::Lagging { lag } => lag,
                    _ => None,
                };
                metrics.replica(
                    &(i + 1).to_string(),
                    lag.map(|l| l.as_secs_f64()),
                    state.serving(),
                );
            }
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(SAMPLE_INTERVAL) => {}
        }
    }
}

async fn set_status(reporter: &HealthReporter, status: ServingStatus) {
    reporter.set_service_status("", status).await;
    reporter.set_service_status(SERVICE_NAME, status).await;
}

fn serving_if(ok: bool) -> ServingStatus {
    if ok {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    }
}

/// Whether the primary answers a probe; reports each replica's health.
async fn probe_health(reporter: &HealthReporter, storage: &Storage) -> bool {
    let ok = storage.probe().await.is_ok();
    // Each replica under a name of its own, in the order configured: a
    // skipped replica does not make the service NOT_SERVING, since the
    // primary serves its reads.
    if let Some(replicas) = storage.replicas() {
        for (i, replica) in replicas.replicas().iter().enumerate() {
            let status = if replica.state().serving() {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            reporter
                .set_service_status(format!("replica/{}", i + 1), status)
                .await;
        }
    }
    ok
}

/// The least time a health probe is given to answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// Unanswered probes in a row after which the database is taken as lost.
const PROBES_LOST: u32 = 2;

async fn watch_database(
    storage: Storage,
    reporter: HealthReporter,
    interval: std::time::Duration,
    stop: CancellationToken,
) {
    let mut was_ok = true;
    let mut failed = 0u32;
    // A probe gets at least PROBE_TIMEOUT to answer, however short the
    // interval: a loaded database may take a moment for a new connection.
    let timeout = interval.max(PROBE_TIMEOUT);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
        let answered = tokio::time::timeout(timeout, probe_health(&reporter, &storage))
            .await
            .unwrap_or(false);
        failed = if answered { 0 } else { failed + 1 };
        // One unanswered probe may be one lost packet; calls waiting on the
        // database end with UNAVAILABLE (Storage::answering) after
        // PROBES_LOST in a row (each on a fresh connection: a probe that
        // failed drops its own), until a probe is answered again.
        // Health says the same: one lost probe does not drain the instance.
        let ok = failed < PROBES_LOST;
        storage.set_answering(ok);
        set_status(&reporter, serving_if(ok)).await;
        if ok != was_ok {
            if ok {
                tracing::info!("database reachable again: SERVING");
            } else {
                tracing::warn!("database unreachable: NOT_SERVING");
            }
            was_ok = ok;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::cors_layer;

    #[test]
    fn cors_origins_must_be_as_browsers_send_them() {
        let ok = |o: &str| cors_layer(&[o.to_owned()]).is_ok();
        assert!(ok("https://news.example.org"));
        assert!(ok("http://127.0.0.1:8080"));
        assert!(
            ok("https://news.example.org/"),
            "a trailing slash is dropped"
        );
        for never_matches in [
            "https://News.example.org",
            "https://news.example.org:443",
            "https://news.example.org/app",
            "*",
            "news.example.org",
            "ftp://news.example.org",
        ] {
            assert!(!ok(never_matches), "{never_matches} refused");
        }
        assert!(cors_layer(&[]).unwrap().is_none(), "no origins, no CORS");
    }
}
