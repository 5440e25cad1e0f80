//! Builds the application: pool, migrations, services, HTTP server, background jobs.

use crate::auth::JwtKeys;
use crate::config::Settings;
use crate::error::{json_error, not_found, path_error, problemize, query_error};
use crate::jobs::{self, Shutdown};
use crate::metrics::{Event, Metrics};
use crate::state::AppState;
use crate::{docs, idempotency, middleware, routes};
use actix_web::dev::Server;
use actix_web::middleware::{from_fn, ErrorHandlers};
use actix_web::{web, App, HttpServer};
use anyhow::Context;
use balance::{ChargeService, PaymentGateway};
use coupon::CouponService;
use kernel::{Clock, IdempotencyStore, SystemClock};
use order::cart::CartService;
use order::OrderService;
use outbox::{OutboxAdmin, PURGE_BATCH};
use payment_gateway::{HttpGateway, HttpGatewaySettings, SandboxGateway};
use postgres_adapter::cart::PgCartStore;
use postgres_adapter::coupon::PgCouponStore;
use postgres_adapter::notification::PgNotificationInbox;
use postgres_adapter::stock::PgStockStore;
use postgres_adapter::PgOrderStore;
use postgres_adapter::{
    build_pool, run_migrations, PgBalanceStore, PgIdempotencyStore, PgOutboxStore, PgPool,
    PoolSettings,
};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use stock::StockService;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use utoipa_swagger_ui::SwaggerUi;

/// The background jobs' pool (relay, expiry, recovery, retention), at most.
const JOBS_POOL_SIZE: usize = 4;
/// Orders cancelled per expiry transaction.
const EXPIRY_BATCH: i64 = 50;
/// How often DELIVERED events past retention are deleted (in batches of `PURGE_BATCH`).
const OUTBOX_RETENTION_EVERY: Duration = Duration::from_secs(600);

/// What a migration run did, in words: "no pending migrations" or "applied 2
/// migrations: 2026...". The version list is what diesel reports.
pub fn migrations_report(applied: &[String]) -> String {
    match applied {
        [] => "no pending migrations".to_string(),
        [one] => format!("applied 1 migration: {one}"),
        many => format!("applied {} migrations: {}", many.len(), many.join(", ")),
    }
}

/// The request body cap (bytes); defined with the JSON extractor that enforces it.
pub use crate::extract::BodyLimit;

/// How the process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunMode {
    /// `commerce-api serve`: OS signals stop it gracefully.
    Serve,
    /// In tests: no signal handling, fewer workers.
    Embedded,
}

pub struct Application {
    port: u16,
    server: Server,
    stop_jobs: watch::Sender<bool>,
    jobs: Vec<JoinHandle<()>>,
    state: web::Data<AppState>,
}

impl Application {
    /// Migrates the database, wires everything and binds the listener (port 0 picks one).
    pub async fn build(settings: Settings, mode: RunMode) -> anyhow::Result<Application> {
        let applied = run_migrations(&settings.database.url)
            .await
            .context("migrating the database")?;
        tracing::info!("{}", migrations_report(&applied));
        // One pool per HTTP worker, plus one for the background jobs. A pool's
        // connections are opened, and their drivers spawned, on the thread that first
        // uses them, so each round trip of a request stays on its worker's thread
        // instead of waking another thread twice (ADR 0011). POOL_SIZE is split over
        // the workers exactly.
        // one worker per core, and no more workers than connections, so that the
        // instance never opens more than POOL_SIZE for requests
        let workers = match mode {
            RunMode::Serve => std::thread::available_parallelism().map_or(1, |n| n.get()),
            RunMode::Embedded => 2,
        }
        .min(settings.database.pool_size)
        .max(1);
        let pool_settings =
            PoolSettings::new(settings.database.url.clone(), settings.database.pool_size)
                .with_timeout(Duration::from_millis(settings.database.timeout_ms));
        let sized = |size: usize| PoolSettings {
            size,
            ..pool_settings.clone()
        };
        let total = settings.database.pool_size;
        let worker_pools = (0..workers)
            .map(|i| build_pool(&sized(total / workers + usize::from(i < total % workers))))
            .collect::<anyhow::Result<Vec<PgPool>>>()?;
        let jobs_pool = build_pool(&sized(settings.database.pool_size.min(JOBS_POOL_SIZE)))?;
        let pools: Arc<[PgPool]> = worker_pools
            .iter()
            .cloned()
            .chain(std::iter::once(jobs_pool.clone()))
            .collect();
        let gateway: Arc<dyn PaymentGateway> = match settings.payment_gateway.kind.as_str() {
            "http" => Arc::new(HttpGateway::new(&HttpGatewaySettings {
                url: settings.payment_gateway.url.clone(),
                timeout: Duration::from_millis(settings.payment_gateway.timeout_ms),
            })?),
            _ => Arc::new(SandboxGateway),
        };
        let limit = settings.server.max_body_bytes;
        let wiring = Wiring {
            settings: Arc::new(settings),
            gateway,
            // the order store signals this process's relay when it commits an event
            events: Arc::new(tokio::sync::Notify::new()),
            pools,
        };
        let state = web::Data::new(wiring.state(jobs_pool));
        let settings = wiring.settings.clone();
        let openapi = docs::openapi();
        let metrics = web::Data::new(Metrics::new()?);
        let app_metrics = metrics.clone();

        let listener = TcpListener::bind((settings.server.host.as_str(), settings.server.port))
            .with_context(|| {
                format!("binding {}:{}", settings.server.host, settings.server.port)
            })?;
        let port = listener.local_addr()?.port();
        let jwt = web::Data::new(JwtKeys::new(
            &settings.auth.jwt_secret,
            Duration::from_secs(settings.auth.token_ttl_seconds),
        ));
        let next_worker = Arc::new(AtomicUsize::new(0));
        // called once on each worker's own thread: it takes that worker's pool
        let mut server = HttpServer::new(move || {
            let pool = worker_pools[next_worker.fetch_add(1, Ordering::Relaxed) % workers].clone();
            App::new()
                .app_data(web::Data::new(wiring.state(pool.clone())))
                .app_data(web::Data::new(wiring.idempotency(pool)))
                .app_data(app_metrics.clone())
                .app_data(jwt.clone())
                .app_data(web::Data::new(BodyLimit(limit)))
                .app_data(
                    web::JsonConfig::default()
                        .limit(limit)
                        .error_handler(json_error),
                )
                .app_data(web::PathConfig::default().error_handler(path_error))
                .app_data(web::QueryConfig::default().error_handler(query_error))
                .wrap(from_fn(idempotency::idempotency))
                .wrap(from_fn(middleware::head_as_get))
                .wrap(from_fn(middleware::catch_panic))
                .wrap(ErrorHandlers::new().default_handler(problemize))
                .wrap(from_fn(middleware::request_span))
                .configure(routes::configure_health)
                .service(web::scope("/api/v1").configure(routes::configure_v1))
                // Not API routes, so not in the OpenAPI document (the contract test
                // knows): the Prometheus scrape, the document itself and Swagger UI
                // (`/docs` and `/` redirect to it).
                .service(web::resource("/metrics").route(web::get().to(crate::metrics::metrics)))
                .configure(docs::ui_redirects)
                .service(
                    SwaggerUi::new("/docs/{_:.*}")
                        .url("/api-docs/openapi.json", openapi.clone())
                        // no badge from validator.swagger.io: the page makes no outside request
                        .config(
                            utoipa_swagger_ui::Config::default()
                                .validator_url("none")
                                .persist_authorization(true),
                        ),
                )
                .default_service(web::to(not_found))
        })
        .listen(listener)?
        .workers(workers)
        .shutdown_timeout(30);
        if mode == RunMode::Embedded {
            server = server.disable_signals();
        }
        let server = server.run();

        let (stop_jobs, shutdown) = Shutdown::new();
        let jobs = if settings.jobs.enabled {
            start_jobs(&state, &settings, metrics.clone(), shutdown)
        } else {
            Vec::new()
        };
        Ok(Application {
            port,
            server,
            stop_jobs,
            jobs,
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// A handle to stop the server gracefully.
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until the server stops (SIGTERM/SIGINT in `serve`: in-flight requests
    /// finish first), then stops the background jobs at a safe point.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let result = self.server.await;
        let _ = self.stop_jobs.send(true);
        for job in self.jobs {
            let _ = job.await;
        }
        result.context("the HTTP server failed")
    }
}

/// What every worker's services are built from.
#[derive(Clone)]
struct Wiring {
    settings: Arc<Settings>,
    gateway: Arc<dyn PaymentGateway>,
    events: Arc<tokio::sync::Notify>,
    pools: Arc<[PgPool]>,
}

impl Wiring {
    /// The services on `pool`.
    fn state(&self, pool: PgPool) -> AppState {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        AppState {
            settings: self.settings.clone(),
            charges: ChargeService::new(
                Arc::new(PgBalanceStore::new(pool.clone())),
                self.gateway.clone(),
                clock.clone(),
            ),
            stock: StockService::new(Arc::new(PgStockStore::new(pool.clone())), clock.clone()),
            carts: CartService::new(Arc::new(PgCartStore::new(pool.clone())), clock.clone()),
            coupons: CouponService::new(
                Arc::new(PgCouponStore::new(pool.clone())),
                Arc::new(PgNotificationInbox::new(pool.clone())),
                clock.clone(),
            ),
            orders: OrderService::new(
                Arc::new(PgOrderStore::new(pool.clone()).with_event_signal(self.events.clone())),
                clock.clone(),
                Duration::from_secs(self.settings.orders.pending_ttl_seconds),
            ),
            outbox: OutboxAdmin::new(Arc::new(PgOutboxStore::new(pool.clone())), clock),
            events: self.events.clone(),
            pools: self.pools.clone(),
            pool,
        }
    }

    /// The Idempotency-Key store on `pool`.
    fn idempotency(&self, pool: PgPool) -> PgIdempotencyStore {
        let keys = &self.settings.idempotency;
        PgIdempotencyStore::new(
            pool,
            Duration::from_secs(keys.lease_seconds.max(1)),
            Duration::from_secs(keys.ttl_seconds.max(1)),
        )
    }
}

fn start_jobs(
    state: &web::Data<AppState>,
    settings: &Settings,
    metrics: web::Data<Metrics>,
    shutdown: Shutdown,
) -> Vec<JoinHandle<()>> {
    let mut handles = Vec::new();
    handles.extend(crate::relay::start(
        settings,
        state.pool.clone(),
        state.events.clone(),
        metrics.clone(),
        shutdown.clone(),
    ));
    let orders = state.orders.clone();
    handles.push(jobs::every(
        "order-expiry",
        Duration::from_secs(settings.orders.expiry_sweep_seconds.max(1)),
        shutdown.clone(),
        move || {
            let (orders, metrics) = (orders.clone(), metrics.clone());
            async move {
                // small batches, each its own transaction, until nothing is due
                loop {
                    let n = orders.expire_due(EXPIRY_BATCH).await?;
                    if n > 0 {
                        metrics.count_n(Event::OrderExpired, n as u64);
                        tracing::info!(expired = n, "expired pending orders");
                    }
                    if n < EXPIRY_BATCH as usize {
                        return Ok(());
                    }
                }
            }
        },
    ));
    let charges = state.charges.clone();
    let grace = Duration::from_secs(settings.jobs.charge_recovery_grace_seconds);
    handles.push(jobs::every(
        "charge-recovery",
        Duration::from_secs(settings.jobs.charge_recovery_seconds.max(1)),
        shutdown.clone(),
        move || {
            let charges = charges.clone();
            async move {
                let report = charges.recover_stale(grace, 100).await?;
                if report != Default::default() {
                    tracing::info!(?report, "stale charges settled");
                }
                Ok(())
            }
        },
    ));
    let outbox = state.outbox.clone();
    let retention =
        Duration::from_secs(u64::from(settings.data_platform.retention_days) * 24 * 3600);
    handles.push(jobs::every(
        "outbox-retention",
        OUTBOX_RETENTION_EVERY,
        shutdown.clone(),
        move || {
            let outbox = outbox.clone();
            async move {
                let n = outbox.purge_delivered(retention, PURGE_BATCH).await?;
                if n > 0 {
                    tracing::info!(
                        deleted = n,
                        "deleted delivered outbox events past retention"
                    );
                }
                Ok(())
            }
        },
    ));
    let keys = PgIdempotencyStore::new(
        state.pool.clone(),
        Duration::from_secs(settings.idempotency.lease_seconds.max(1)),
        Duration::from_secs(settings.idempotency.ttl_seconds.max(1)),
    );
    handles.push(jobs::every(
        "idempotency-purge",
        Duration::from_secs(600),
        shutdown,
        move || {
            let keys = keys.clone();
            async move {
                keys.purge_expired(10_000).await?;
                Ok(())
            }
        },
    ));
    handles
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_migration_report_says_what_happened_in_words() {
        assert_eq!(migrations_report(&[]), "no pending migrations");
        assert_eq!(
            migrations_report(&["20261130000030".into()]),
            "applied 1 migration: 20261130000030"
        );
        assert_eq!(
            migrations_report(&["1".into(), "2".into()]),
            "applied 2 migrations: 1, 2"
        );
    }
}
