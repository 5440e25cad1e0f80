//! The connection pool, where every wait on the database is bounded by one configured
//! timeout (`PoolSettings::timeout`, `COMMERCE__DATABASE__TIMEOUT_MS`):
//!
//! - waiting for a free connection, opening one (TCP connect and start-up), recycling;
//! - each statement on the server: `statement_timeout` is set per connection, so
//!   PostgreSQL cancels a statement (a lock wait included) that runs longer, and
//!   `idle_in_transaction_session_timeout`, so the locks of a client that vanished in a
//!   transaction are released;
//! - each statement on the client: a link that stops answering (a stalled route, a hung
//!   server) leaves the server's timeouts unheard, so the socket itself has a watchdog
//!   (`watchdog`): when the server owes an answer and sends nothing for the timeout
//!   (plus a little grace, so the server's own cancel normally arrives first), the
//!   connection fails and is dropped.
//!
//! A wait that runs out is a [`DatabaseUnavailable`] in the error chain, which the API
//! answers with 503. Connections are recycled the fast way (no query on checkout); a
//! connection that errored (closed, or left in a broken transaction) is dropped rather
//! than handed out again.

mod watchdog;

use anyhow::Context;
use diesel::result::DatabaseErrorKind;
use diesel::ConnectionError;
use diesel_async::pooled_connection::deadpool::{Object, Pool, PoolError};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::AsyncPgConnection;
use futures::FutureExt;
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::config::{Host, SslMode};

/// A pool of async PostgreSQL connections.
pub type PgPool = Pool<AsyncPgConnection>;
pub(crate) type PgConn = Object<AsyncPgConnection>;

/// The default of [`PoolSettings::timeout`] (API.md: `COMMERCE__DATABASE__TIMEOUT_MS`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// What the pool needs to know.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// The PostgreSQL URL.
    pub url: String,
    /// The most connections open at once.
    pub size: usize,
    /// The longest anything waits on the database: a free connection, a new
    /// connection, one statement.
    pub timeout: Duration,
}

impl PoolSettings {
    /// `size` connections to `url`, with the default timeout.
    pub fn new(url: impl Into<String>, size: usize) -> Self {
        Self {
            url: url.into(),
            size,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The same settings with another timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// Why the database could not serve a request in time. Found in an error chain by
/// [`DatabaseUnavailable::find`]; the request may be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DatabaseUnavailable {
    /// No connection became free within the timeout (the pool is exhausted).
    #[error("no database connection became free in time")]
    PoolTimeout,
    /// A new connection could not be opened within the timeout.
    #[error("could not connect to the database in time")]
    ConnectFailed,
    /// The connection broke, or the server did not answer within the timeout.
    #[error("the database connection was lost or did not answer in time")]
    ConnectionLost,
    /// The server cancelled a statement that ran past `statement_timeout`.
    #[error("a database statement ran past the timeout")]
    StatementTimeout,
}

impl DatabaseUnavailable {
    /// The reason the database was unavailable, if that is what `error` is about: a
    /// `DatabaseUnavailable`, a pool error, or a diesel error meaning that the
    /// connection is gone or a statement was cancelled, anywhere in its chain.
    pub fn find(error: &anyhow::Error) -> Option<DatabaseUnavailable> {
        if let Some(reason) = error.downcast_ref::<DatabaseUnavailable>() {
            return Some(*reason);
        }
        error.chain().find_map(Self::of)
    }

    /// The reason, if this one error (not its sources) means the database was unavailable.
    pub fn of(cause: &(dyn std::error::Error + 'static)) -> Option<DatabaseUnavailable> {
        if let Some(reason) = cause.downcast_ref::<DatabaseUnavailable>() {
            return Some(*reason);
        }
        if let Some(e) = cause.downcast_ref::<diesel::result::Error>() {
            return of_diesel(e);
        }
        if let Some(e) = cause.downcast_ref::<PoolError>() {
            return of_pool(e);
        }
        None
    }
}

fn of_diesel(e: &diesel::result::Error) -> Option<DatabaseUnavailable> {
    match e {
        diesel::result::Error::DatabaseError(
            DatabaseErrorKind::UnableToSendCommand | DatabaseErrorKind::ClosedConnection,
            _,
        ) => Some(DatabaseUnavailable::ConnectionLost),
        // diesel keeps no SQLSTATE for these; PostgreSQL's (English) messages name them:
        // 57014 query_canceled ("canceling statement due to statement timeout", also a
        // lock or user cancel) and the 57P0x/25P03 session terminations.
        diesel::result::Error::DatabaseError(DatabaseErrorKind::Unknown, info) => {
            let message = info.message();
            if message.starts_with("canceling statement due to") {
                Some(DatabaseUnavailable::StatementTimeout)
            } else if message.starts_with("terminating connection") {
                Some(DatabaseUnavailable::ConnectionLost)
            } else {
                None
            }
        }
        _ => None,
    }
}

fn of_pool(e: &PoolError) -> Option<DatabaseUnavailable> {
    use deadpool::managed::{PoolError as P, TimeoutType};
    match e {
        P::Timeout(TimeoutType::Wait) => Some(DatabaseUnavailable::PoolTimeout),
        P::Timeout(_) | P::Backend(_) => Some(DatabaseUnavailable::ConnectFailed),
        P::Closed => Some(DatabaseUnavailable::ConnectionLost),
        _ => None,
    }
}

/// Builds the pool; connections are opened lazily.
pub fn build_pool(settings: &PoolSettings) -> anyhow::Result<PgPool> {
    let connector = Arc::new(Connector::new(&settings.url, settings.timeout)?);
    let mut config = ManagerConfig::<AsyncPgConnection>::default();
    // No query on checkout: a broken connection (closed socket, failed transaction) is
    // dropped by the manager's own check, and a dead one fails its first statement.
    config.recycling_method = RecyclingMethod::Fast;
    config.custom_setup = Box::new(move |_url| {
        let connector = connector.clone();
        async move { connector.connect().await }.boxed()
    });
    let manager =
        AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(&settings.url, config);
    Pool::builder(manager)
        .max_size(settings.size.max(1))
        .wait_timeout(Some(settings.timeout))
        .create_timeout(Some(settings.timeout))
        .recycle_timeout(Some(settings.timeout))
        .runtime(deadpool::Runtime::Tokio1)
        .build()
        .context("building the database pool")
}

/// A connection from the pool; a timeout or a failure to connect is a
/// [`DatabaseUnavailable`] in the error chain.
pub(crate) async fn conn(pool: &PgPool) -> anyhow::Result<PgConn> {
    pool.get()
        .await
        .context("getting a database connection from the pool")
}

/// Opens connections with the timeouts of the module doc.
struct Connector {
    config: tokio_postgres::Config,
    timeout: Duration,
    /// How long the client waits for an owed answer before it gives the link up.
    silence: Duration,
}

impl Connector {
    fn new(url: &str, timeout: Duration) -> anyhow::Result<Connector> {
        let mut config: tokio_postgres::Config = url.parse().context("parsing the database URL")?;
        if config.get_ssl_mode() == SslMode::Require {
            anyhow::bail!("sslmode=require is not supported: connections are not encrypted");
        }
        config.ssl_mode(SslMode::Disable);
        let ms = timeout.as_millis().max(1);
        // the URL's own options come last, so they win
        let options = format!(
            "-c statement_timeout={ms} -c idle_in_transaction_session_timeout={ms} {}",
            config.get_options().unwrap_or_default()
        );
        config.options(options.trim_end());
        Ok(Connector {
            config,
            timeout,
            silence: timeout + (timeout / 10).max(Duration::from_millis(100)),
        })
    }

    async fn connect(&self) -> diesel::ConnectionResult<AsyncPgConnection> {
        let timed_out = || ConnectionError::BadConnection("connecting timed out".into());
        tokio::time::timeout(self.timeout, self.connect_unbounded())
            .await
            .map_err(|_| timed_out())?
    }

    async fn connect_unbounded(&self) -> diesel::ConnectionResult<AsyncPgConnection> {
        let stream = watchdog::Watchdog::new(self.open_stream().await?, self.silence);
        let (client, connection) = self
            .config
            .connect_raw(stream, tokio_postgres::NoTls)
            .await
            .map_err(|e| ConnectionError::BadConnection(e.to_string()))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "a database connection ended");
            }
        });
        AsyncPgConnection::try_from(client).await
    }

    /// The first host of the URL that accepts a connection.
    async fn open_stream(&self) -> diesel::ConnectionResult<watchdog::BoxedIo> {
        let hosts = self.config.get_hosts();
        let ports = self.config.get_ports();
        let mut last = String::from("the database URL names no host");
        for (i, host) in hosts.iter().enumerate() {
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            let opened: std::io::Result<watchdog::BoxedIo> = match host {
                Host::Tcp(name) => tokio::net::TcpStream::connect((name.as_str(), port))
                    .await
                    .and_then(|s| {
                        s.set_nodelay(true)?;
                        // a peer that vanished while the connection sat idle is noticed
                        // in about a minute rather than at its next use
                        let keepalive = socket2::TcpKeepalive::new()
                            .with_time(Duration::from_secs(30))
                            .with_interval(Duration::from_secs(10));
                        socket2::SockRef::from(&s).set_tcp_keepalive(&keepalive)?;
                        Ok(Box::new(s) as watchdog::BoxedIo)
                    }),
                #[cfg(unix)]
                Host::Unix(dir) => {
                    tokio::net::UnixStream::connect(dir.join(format!(".s.PGSQL.{port}")))
                        .await
                        .map(|s| Box::new(s) as watchdog::BoxedIo)
                }
            };
            match opened {
                Ok(stream) => return Ok(stream),
                Err(e) => last = e.to_string(),
            }
        }
        Err(ConnectionError::BadConnection(last))
    }
}
