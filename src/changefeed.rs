//! The change feed's background work, in every instance: the sequencer
//! numbers the events of committed writes (one instance at a time, by an
//! advisory lock) and expires old ones; the listener forwards NOTIFYs from
//! any instance's sequencer; the poller covers notifications lost while the
//! listener reconnects. All of them wake this instance's watchers through
//! one `watch` channel (see `api::watch`).

use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::storage::Storage;

/// How often the poller looks for events no notification announced.
const POLL: Duration = Duration::from_secs(1);
/// Shortest time between the starts of two sequencer steps that numbered
/// events. Each step is a committed (fsynced) transaction: stepping after
/// every write would double the commits of a steady stream of writes, so
/// under load a step numbers all the writes of its interval. An idle
/// sequencer steps at once: a lone write is delivered without this delay.
const SEQUENCE_INTERVAL: Duration = Duration::from_millis(100);

/// Numbers events and wakes this instance's watchers; expires old events.
/// Runs in every instance: the advisory lock makes one number at a time.
pub async fn run_sequencer(
    storage: Storage,
    wake: watch::Sender<u64>,
    retention: Duration,
    metrics: crate::metrics::Metrics,
    stop: CancellationToken,
) {
    let span = crate::storage::partition_span(retention);
    // The first round makes the partitions the first numbering needs.
    let mut next_maintenance = tokio::time::Instant::now();
    loop {
        if tokio::time::Instant::now() >= next_maintenance {
            next_maintenance = tokio::time::Instant::now() + expiry_interval(retention);
            maintain_partitions(&storage, span, retention).await;
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = storage.events_written(Duration::from_millis(100)) => {}
        }
        let step = tokio::time::Instant::now();
        match storage.sequence_events().await {
            Ok(0) => {}
            Ok(_) => {
                metrics.sequencer_step(step.elapsed().as_secs_f64());
                wake.send_modify(|n| *n += 1);
                // Writes meanwhile leave a stored wake-up; they are numbered
                // together after the interval.
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep_until(step + SEQUENCE_INTERVAL) => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = e.detail(), "event sequencer failed; retrying");
                // A numbering time no partition covers (their maintenance was
                // held off, or failed) fails every step until partitions are
                // made: make them soon rather than at the next round.
                next_maintenance =
                    next_maintenance.min(tokio::time::Instant::now() + Duration::from_secs(1));
            }
        }
    }
}

/// Makes the change feed's partitions for now and the next span, if
/// missing, before the service starts; failing (logged), the sequencer's
/// rounds make them.
pub async fn prepare_partitions(storage: &Storage, retention: Duration) {
    let span = crate::storage::partition_span(retention);
    match tokio::time::timeout(
        Duration::from_secs(5),
        storage.prepare_event_partitions(span),
    )
    .await
    {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = e.detail(), "making change-feed partitions failed"),
        Err(_) => tracing::warn!("making change-feed partitions took more than 5 s"),
    }
}

/// Makes the change feed's partitions ahead of time and drops the expired
/// ones (storage::partitions). A failure is logged and tried again at the
/// next round: partitions are made a whole span ahead.
async fn maintain_partitions(storage: &Storage, span: Duration, retention: Duration) {
    if let Err(e) = storage.prepare_event_partitions(span).await {
        tracing::warn!(error = e.detail(), "making change-feed partitions failed");
    }
    match storage.expire_events(retention).await {
        Ok(0) => {}
        Ok(n) => tracing::debug!(partitions = n, "expired change-feed partitions dropped"),
        Err(e) => tracing::warn!(error = e.detail(), "expiring change-feed partitions failed"),
    }
}

/// How often partitions are made and expired: every minute, or four times
/// within a shorter retention (so that a watcher behind it learns soon),
/// and at least twice a partition's span (partitions are made two spans
/// ahead, so a late round still finds the next one made).
fn expiry_interval(retention: Duration) -> Duration {
    let span = crate::storage::partition_span(retention);
    (retention / 4)
        .min(span / 2)
        .clamp(Duration::from_millis(100), Duration::from_secs(60))
}

/// Change rows folded into the pair figures in one transaction: each is
/// one write statement (up to an import batch of meetings).
const FOLD_ROWS: i64 = 256;
/// Rewritten pair figures after which the fold vacuums their table.
const VACUUM_AFTER_REWRITES: usize = 5_000;
/// Shortest time between the starts of two folds, so that under a steady
/// stream of writes one fold takes in many statements' changes, and each
/// pair's figures are rewritten at most once a second (a summary reads at
/// most about a second of writes as pending changes).
const FOLD_INTERVAL: Duration = Duration::from_secs(1);

/// Folds written changes into the pair figures (see storage::figures),
/// after each step of the sequencer (any instance's) and once a second.
/// Runs in every instance: an advisory lock makes one fold at a time.
pub async fn run_figures(
    storage: Storage,
    mut wake: watch::Receiver<u64>,
    stop: CancellationToken,
) {
    let mut rewritten = 0;
    loop {
        let step = tokio::time::Instant::now();
        loop {
            // In a task of its own: a fold that panicked on data it could
            // not read is logged and retried, rather than ending this loop
            // (and with it every later fold) unseen.
            let fold = tokio::spawn({
                let storage = storage.clone();
                async move { storage.fold_pair_figures(FOLD_ROWS).await }
            });
            let folded = match fold.await {
                Ok(result) => result,
                Err(e) => Err(crate::error::Error::internal(e)),
            };
            match folded {
                Ok((rows, pairs)) => {
                    rewritten += pairs;
                    if rows as i64 != FOLD_ROWS {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = e.detail(), "folding pair figures failed; retrying");
                    break;
                }
            }
            if stop.is_cancelled() {
                return;
            }
        }
        // A bulk import makes each fold rewrite most pairs' figures; vacuum
        // reclaims their old versions only about once a minute, so the
        // table would grow to many times its live size. A vacuum after
        // every few thousand rewrites keeps it near twice that.
        if rewritten >= VACUUM_AFTER_REWRITES {
            rewritten = 0;
            if let Err(e) = storage.vacuum_pair_figures().await {
                tracing::warn!(error = e.detail(), "vacuuming pair figures failed");
            }
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep_until(step + FOLD_INTERVAL) => {}
        }
        tokio::select! {
            () = stop.cancelled() => return,
            _ = wake.changed() => {}
            () = tokio::time::sleep(POLL) => {}
        }
    }
}

/// Wakes this instance's watchers when the feed has moved on although no
/// notification said so (NOTIFYs sent while the listener reconnects are
/// lost): one query a second for the whole instance.
pub async fn run_poller(storage: Storage, wake: watch::Sender<u64>, stop: CancellationToken) {
    let mut seen = None;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(POLL) => {}
        }
        match storage.newest_sequence().await {
            Ok(newest) if seen != Some(newest) => {
                seen = Some(newest);
                wake.send_modify(|n| *n += 1);
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(error = e.detail(), "cannot look for new events yet"),
        }
    }
}

/// Forwards the sequencers' NOTIFYs (from any instance) to this instance's
/// watchers. PgListener reconnects by itself; notifications lost meanwhile
/// are covered by the watchers' polling.
pub async fn run_listener(storage: Storage, wake: watch::Sender<u64>, stop: CancellationToken) {
    loop {
        let mut listener = tokio::select! {
            () = stop.cancelled() => return,
            l = storage.listen_events() => match l {
                Ok(l) => l,
                Err(e) => {
                    tracing::debug!(error = e.detail(), "cannot listen for events yet");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
        };
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                n = listener.recv() => match n {
                    Ok(_) => wake.send_modify(|n| *n += 1),
                    Err(e) => {
                        tracing::debug!(error = %e, "event listener lost its connection");
                        break;
                    }
                },
            }
        }
    }
}
