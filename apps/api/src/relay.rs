//! The outbox relay job of `serve`: delivers batches of due events while there are some,
//! then sleeps until this process commits an event (an in-process signal from the order
//! store), an operator makes one PENDING again (LISTEN/NOTIFY), or a retry may be due
//! (poll; events committed by other instances are found this way too).
//! It stops only between batches, so every claimed event has its outcome recorded.
//! A database that stalls or drops connections costs it a timeout per step (the store
//! and the listener bound every statement and reconnect by themselves), never a hang:
//! it resumes on its own once the database answers.
//! Each attempt's outcome is counted in `commerce_events_total{kind="outbox_delivered"}`
//! (acknowledged and recorded) or `{kind="outbox_delivery_failed"}` (any failed attempt).

use crate::config::{DataPlatformSettings, Settings};
use crate::jobs::Shutdown;
use crate::metrics::{Event, Metrics};
use actix_web::web;
use data_platform::{HttpDataPlatform, HttpDataPlatformSettings};
use kernel::SystemClock;
use outbox::{AfterFailure, BatchReport, OutboxRelay, OutboxStore, RelaySettings, StdRandomness};
use postgres_adapter::{OutboxListener, PgOutboxStore, PgPool};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// Events claimed and delivered at once.
const BATCH_SIZE: u16 = 16;
/// The pause after the database failed.
const ERROR_PAUSE: Duration = Duration::from_secs(1);
/// The longest the relay waits on the database for one step (a connection and its
/// statement); past it the step fails, the connection is closed, and the relay tries
/// again after `ERROR_PAUSE`.
pub const DB_TIMEOUT: Duration = Duration::from_secs(5);

/// Starts the relay job of `serve`, unless no platform URL is configured (then events
/// wait in the outbox, and a log line says so).
pub fn start(
    settings: &Settings,
    pool: PgPool,
    events: Arc<Notify>,
    metrics: web::Data<Metrics>,
    shutdown: Shutdown,
) -> Option<JoinHandle<()>> {
    let store = Arc::new(PgOutboxStore::new(pool).with_timeout(DB_TIMEOUT));
    match build(&settings.data_platform, store) {
        Ok(Some(relay)) => Some(spawn(
            relay,
            OutboxListener::new(settings.database.url.clone()),
            events,
            poll_interval(&settings.data_platform),
            metrics,
            shutdown,
        )),
        Ok(None) => {
            tracing::info!(
                "COMMERCE__DATA_PLATFORM__URL is empty: the outbox relay is off and events wait in the outbox"
            );
            None
        }
        Err(e) => {
            tracing::error!(
                error = format!("{e:#}"),
                "cannot build the data platform client: the outbox relay is off"
            );
            None
        }
    }
}

/// The relay for these settings; `None` when no platform URL is configured.
pub fn build(
    settings: &DataPlatformSettings,
    store: Arc<dyn OutboxStore>,
) -> anyhow::Result<Option<OutboxRelay>> {
    if settings.url.trim().is_empty() {
        return Ok(None);
    }
    let timeout = Duration::from_millis(settings.timeout_ms.max(1));
    let platform = HttpDataPlatform::new(&HttpDataPlatformSettings {
        url: settings.url.clone(),
        timeout,
        secrets: settings.secrets()?,
    })?;
    if settings.signing_secrets.trim().is_empty() {
        tracing::warn!(
            "COMMERCE__DATA_PLATFORM__SIGNING_SECRETS is empty: deliveries are not signed"
        );
    }
    Ok(Some(OutboxRelay::new(
        store,
        Arc::new(platform),
        Arc::new(SystemClock),
        Arc::new(StdRandomness),
        RelaySettings {
            policy: settings.retry_policy(),
            batch_size: BATCH_SIZE,
            lease: RelaySettings::lease_for(timeout),
        },
    )))
}

/// How often an idle relay looks for retries that became due: the backoff base, within
/// 20 ms..=1 s (new events wake it at once through the listener).
pub fn poll_interval(settings: &DataPlatformSettings) -> Duration {
    Duration::from_millis(settings.backoff_base_ms.clamp(20, 1_000))
}

/// Runs the relay until shutdown, counting outcomes in `metrics`. It wakes when this
/// process commits an event (`events`), when an operator's retry makes an event PENDING
/// in any instance (the listener), and at least every `poll`.
pub fn spawn(
    relay: OutboxRelay,
    mut listener: OutboxListener,
    events: Arc<Notify>,
    poll: Duration,
    metrics: web::Data<Metrics>,
    mut shutdown: Shutdown,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        tracing::info!(
            job = "outbox-relay",
            poll_ms = poll.as_millis() as u64,
            "job started"
        );
        while !shutdown.is_signalled() {
            match relay.relay_batch().await {
                Ok(report) => {
                    count(&metrics, &report);
                    log(&report);
                    if let Some(error) = &report.record_error {
                        tracing::warn!(
                            job = "outbox-relay",
                            error = %error,
                            unrecorded = report.unrecorded,
                            "delivery outcomes not recorded; those events are due again after their lease"
                        );
                        shutdown.sleep(ERROR_PAUSE).await;
                        continue;
                    }
                    // a full batch, or a delivery that let the next event of its order go
                    let more = report.claimed == usize::from(relay.settings().batch_size)
                        || report.delivered > 0;
                    if more {
                        continue;
                    }
                }
                Err(e) => {
                    tracing::warn!(
                        job = "outbox-relay",
                        error = format!("{e:#}"),
                        "relay run failed"
                    );
                    shutdown.sleep(ERROR_PAUSE).await;
                    continue;
                }
            }
            tokio::select! {
                _ = listener.wait(poll) => {}
                _ = events.notified() => {}
                _ = shutdown.sleep(poll) => {}
            }
        }
        tracing::info!(job = "outbox-relay", "job stopped");
    })
}

/// Counts one batch: every event acknowledged and recorded as DELIVERED, every failed
/// attempt (recorded or not).
fn count(metrics: &Metrics, report: &BatchReport) {
    if report.delivered > 0 {
        metrics.count_n(Event::OutboxDelivered, report.delivered as u64);
    }
    if !report.failures.is_empty() {
        metrics.count_n(Event::OutboxDeliveryFailed, report.failures.len() as u64);
    }
}

fn log(report: &BatchReport) {
    if report.claimed == 0 {
        return;
    }
    tracing::debug!(
        claimed = report.claimed,
        delivered = report.delivered,
        retrying = report.retrying,
        dead = report.dead,
        lost_claims = report.lost_claims,
        unrecorded = report.unrecorded,
        "outbox batch"
    );
    for f in &report.failures {
        if !f.recorded {
            tracing::warn!(
                event_id = %f.event_id,
                order_id = f.aggregate_id,
                attempt = f.attempt,
                error = %f.error,
                "data platform delivery failed; not recorded (claim lost or database error), due again after the lease"
            );
            continue;
        }
        match f.next {
            AfterFailure::RetryAt(at) => tracing::warn!(
                event_id = %f.event_id,
                order_id = f.aggregate_id,
                attempt = f.attempt,
                error = %f.error,
                retry_at = %at,
                "data platform delivery failed; will retry"
            ),
            AfterFailure::Dead => tracing::error!(
                event_id = %f.event_id,
                order_id = f.aggregate_id,
                attempt = f.attempt,
                error = %f.error,
                "data platform delivery failed for the last time; the event is DEAD (retry it with POST /api/v1/admin/outbox/{{event_id}}/retry, or every DEAD one with POST /api/v1/admin/outbox/retries)"
            ),
        }
    }
}
