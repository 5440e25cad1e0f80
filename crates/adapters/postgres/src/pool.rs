use anyhow::Context;
use diesel_async::pooled_connection::deadpool::{Object, Pool};
use diesel_async::pooled_connection::AsyncDieselConnectionManager;
use diesel_async::AsyncPgConnection;
use std::time::Duration;

/// A pool of async PostgreSQL connections.
pub type PgPool = Pool<AsyncPgConnection>;
pub(crate) type PgConn = Object<AsyncPgConnection>;

/// What the pool needs to know.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    pub url: String,
    pub size: usize,
    /// How long a request waits for a free connection before failing.
    pub wait_timeout: Duration,
}

impl PoolSettings {
    pub fn new(url: impl Into<String>, size: usize) -> Self {
        Self {
            url: url.into(),
            size,
            wait_timeout: Duration::from_secs(5),
        }
    }
}

/// Builds the pool; connections are opened lazily.
pub fn build_pool(settings: &PoolSettings) -> anyhow::Result<PgPool> {
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new(settings.url.clone());
    Pool::builder(manager)
        .max_size(settings.size.max(1))
        .wait_timeout(Some(settings.wait_timeout))
        .create_timeout(Some(settings.wait_timeout))
        .runtime(deadpool::Runtime::Tokio1)
        .build()
        .context("building the database pool")
}

pub(crate) async fn conn(pool: &PgPool) -> anyhow::Result<PgConn> {
    pool.get()
        .await
        .context("getting a database connection from the pool")
}
