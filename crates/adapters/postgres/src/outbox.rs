//! The transactional outbox: writing events inside the writer's transaction
//! (`enqueue_in_tx`), the relay's and operators' side of it ([`PgOutboxStore`],
//! guarantees in `outbox::OutboxStore`), and the wake-up signal ([`OutboxListener`])
//! that tells relays a new event was committed.
//!
//! A claim is a committed `next_attempt_at = lease_until` on rows picked with
//! `FOR UPDATE SKIP LOCKED`: no transaction stays open while the platform is called,
//! and a relay that dies leaves its events due again when the lease ends. The lease
//! value is also the claim's fencing token: a failure is recorded only while the row
//! still carries it. Each outcome is recorded with its attempt (`outbox_attempts`) in one
//! statement.
//!
//! Every method gives up after the store's timeout, and a connection that was cut off
//! mid-statement is closed instead of going back to the pool: a database that stalls or
//! drops connections costs the relay one timeout, never a hang.

use crate::pool::{PgConn, PgPool};
use crate::schema::outbox::outbox_events;
use crate::tx::valid;
use anyhow::{anyhow, Context};
use async_trait::async_trait;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use futures::{FutureExt, StreamExt};
use kernel::{Page, PageRequest, Timestamp};
use outbox::{
    AfterFailure, Attempt, AttemptOutcome, Backlog, ClaimedEvent, Event, EventDetail, OutboxEntry,
    OutboxStatus, OutboxStore, RetryEventError, RetryFilter,
};
use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;
use uuid::Uuid;

/// The channel the `outbox_events_notify` trigger notifies (migration 000005).
pub const OUTBOX_CHANNEL: &str = "outbox_events";

/// The longest `last_error` (and attempt `error`) kept, in characters.
const MAX_ERROR_CHARS: usize = 1_000;

/// How long a store call may take by default (getting a connection and its statements).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Writes `event` to the outbox on `conn`, inside the caller's transaction, so the event
/// exists if and only if the change that caused it commits.
///
/// The row starts PENDING, due at once: `created_at = next_attempt_at = occurred_at`.
/// The body is stored as the exact document the platform will receive. Relays are
/// woken (NOTIFY, by trigger) when the transaction commits. Events of one aggregate
/// (order) are delivered in the order of their ids, so write them in the order they
/// happened, from transactions that lock the aggregate (which serialises them).
pub(crate) async fn enqueue_in_tx(
    conn: &mut AsyncPgConnection,
    event: impl Into<Event>,
) -> diesel::QueryResult<()> {
    let event: Event = event.into();
    diesel::insert_into(outbox_events::table)
        .values((
            outbox_events::event_id.eq(event.event_id),
            outbox_events::event_type.eq(&event.event_type),
            outbox_events::order_id.eq(event.aggregate_id),
            outbox_events::payload.eq(&event.body),
            outbox_events::next_attempt_at.eq(event.occurred_at),
            outbox_events::created_at.eq(event.occurred_at),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// The outbox on PostgreSQL.
#[derive(Clone)]
pub struct PgOutboxStore {
    pool: PgPool,
    timeout: Duration,
}

impl PgOutboxStore {
    /// A store whose calls give up after [`DEFAULT_TIMEOUT`].
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The same store, giving up after `timeout` (getting a connection included).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Writes one event in a transaction of its own (tools and tests; the order adapter
    /// uses `enqueue_in_tx` inside the order's transaction).
    pub async fn enqueue(&self, event: impl Into<Event>) -> anyhow::Result<()> {
        let event: Event = event.into();
        let mut conn = self.conn().await?;
        let done = bounded(
            self.timeout,
            conn.transaction::<_, diesel::result::Error, _>(async move |conn| {
                enqueue_in_tx(conn, event).await
            }),
        )
        .await;
        self.settle(conn, done, "writing an event to the outbox")
    }

    /// A connection from the pool, within the timeout.
    async fn conn(&self) -> anyhow::Result<PgConn> {
        match tokio::time::timeout(self.timeout, self.pool.get()).await {
            Ok(conn) => conn.context("getting a database connection from the pool"),
            Err(_) => {
                self.drop_idle();
                Err(anyhow!(
                    "no database connection within {} ms",
                    self.timeout.as_millis()
                ))
            }
        }
    }
}

/// The outcome of a statement run under a timeout: `None` when it timed out.
async fn bounded<T>(
    timeout: Duration,
    statement: impl Future<Output = diesel::QueryResult<T>>,
) -> Option<diesel::QueryResult<T>> {
    tokio::time::timeout(timeout, statement).await.ok()
}

impl PgOutboxStore {
    /// Turns a bounded outcome into the method's result. A connection whose statement
    /// timed out is taken out of the pool and closed: it may be stuck on a dead link, and
    /// a stuck connection handed to the next caller would hang it too. The pool's idle
    /// connections are dropped as well: they went over the same link, and each would
    /// cost the next caller another timeout; new ones are opened on demand.
    fn settle<T>(
        &self,
        conn: PgConn,
        outcome: Option<diesel::QueryResult<T>>,
        what: &'static str,
    ) -> anyhow::Result<T> {
        match outcome {
            Some(result) => result.context(what),
            None => {
                drop(PgConn::take(conn));
                self.drop_idle();
                Err(anyhow!("{what}: the database did not answer in time"))
            }
        }
    }

    fn drop_idle(&self) {
        let dropped = self.pool.retain(|_, _| false);
        tracing::warn!(
            idle_connections_dropped = dropped.removed.len(),
            "the database did not answer in time; dropping idle connections"
        );
    }
}

/// The columns of an [`OutboxEntry`] from the row aliased `e`: what it waits behind is
/// the earliest undelivered event written before it for the same order.
macro_rules! entry_columns {
    () => {
        "e.id, e.event_id, e.event_type, e.order_id, e.status, e.attempts, e.last_error,
         e.next_attempt_at, e.created_at, e.delivered_at,
         CASE WHEN e.status <> 'DELIVERED' THEN (
             SELECT p.event_id FROM outbox_events p
              WHERE p.order_id = e.order_id AND p.id < e.id AND p.status <> 'DELIVERED'
              ORDER BY p.id LIMIT 1) END AS blocked_by"
    };
}

#[derive(QueryableByName)]
struct EntryRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = SqlUuid)]
    event_id: Uuid,
    #[diesel(sql_type = Text)]
    event_type: String,
    #[diesel(sql_type = BigInt)]
    order_id: i64,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Integer)]
    attempts: i32,
    #[diesel(sql_type = Nullable<Text>)]
    last_error: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    next_attempt_at: Timestamp,
    #[diesel(sql_type = Timestamptz)]
    created_at: Timestamp,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    delivered_at: Option<Timestamp>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    blocked_by: Option<Uuid>,
}

impl EntryRow {
    fn entry(self) -> anyhow::Result<OutboxEntry> {
        Ok(OutboxEntry {
            id: self.id,
            event_id: self.event_id,
            event_type: self.event_type,
            aggregate_id: self.order_id,
            status: OutboxStatus::parse(&self.status)
                .ok_or_else(|| anyhow!("invalid outbox status in the database: {}", self.status))?,
            attempts: valid(u32::try_from(self.attempts), "attempt count")?,
            last_error: self.last_error,
            next_attempt_at: self.next_attempt_at,
            created_at: self.created_at,
            delivered_at: self.delivered_at,
            blocked_by: self.blocked_by,
        })
    }
}

#[derive(QueryableByName)]
struct DetailRow {
    #[diesel(embed)]
    entry: EntryRow,
    #[diesel(sql_type = Jsonb)]
    payload: serde_json::Value,
}

/// A row as a relay claims it.
#[derive(QueryableByName)]
#[diesel(table_name = outbox_events, check_for_backend(diesel::pg::Pg))]
struct ClaimRow {
    id: i64,
    event_id: Uuid,
    event_type: String,
    order_id: i64,
    payload: serde_json::Value,
    attempts: i32,
    next_attempt_at: Timestamp,
    created_at: Timestamp,
}

impl ClaimRow {
    fn claim(self) -> anyhow::Result<ClaimedEvent> {
        Ok(ClaimedEvent {
            id: self.id,
            attempts: valid(u32::try_from(self.attempts), "attempt count")?,
            lease_until: self.next_attempt_at,
            event: Event {
                event_id: self.event_id,
                event_type: self.event_type,
                aggregate_id: self.order_id,
                occurred_at: self.created_at,
                body: self.payload,
            },
        })
    }
}

#[derive(QueryableByName)]
struct AttemptRow {
    #[diesel(sql_type = BigInt)]
    attempt: i64,
    #[diesel(sql_type = Timestamptz)]
    started_at: Timestamp,
    #[diesel(sql_type = BigInt)]
    duration_ms: i64,
    #[diesel(sql_type = Nullable<Integer>)]
    status_code: Option<i32>,
    #[diesel(sql_type = Nullable<Text>)]
    error: Option<String>,
}

impl AttemptRow {
    fn attempt(self) -> anyhow::Result<Attempt> {
        Ok(Attempt {
            attempt: valid(u32::try_from(self.attempt), "attempt number")?,
            started_at: self.started_at,
            duration_ms: valid(u64::try_from(self.duration_ms), "attempt duration")?,
            status_code: self
                .status_code
                .map(|s| valid(u16::try_from(s), "status code"))
                .transpose()?,
            error: self.error,
        })
    }
}

#[derive(QueryableByName)]
struct BacklogRow {
    #[diesel(sql_type = BigInt)]
    pending: i64,
    #[diesel(sql_type = BigInt)]
    dead: i64,
    #[diesel(sql_type = BigInt)]
    delivered: i64,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    oldest_pending_at: Option<Timestamp>,
}

/// Picks due events (see `OutboxStore::claim_due`) and claims them in one statement, so
/// the claim is committed when it returns. Rows another relay is claiming right now are
/// skipped, not waited for; a row claimed and committed meanwhile is re-checked by
/// PostgreSQL and no longer due.
const CLAIM_SQL: &str = "
UPDATE outbox_events AS e
   SET next_attempt_at = $2
 WHERE e.id IN (
        SELECT c.id
          FROM outbox_events c
         WHERE c.status = 'PENDING'
           AND c.next_attempt_at <= $1
           AND NOT EXISTS (
                SELECT 1 FROM outbox_events p
                 WHERE p.order_id = c.order_id
                   AND p.id < c.id
                   AND p.status <> 'DELIVERED')
         ORDER BY c.id
         LIMIT $3
           FOR UPDATE SKIP LOCKED)
RETURNING e.*";

/// The attempt is logged whatever happens to the event (it happened); the event changes
/// only while PENDING. `$1` id, `$2` now, `$3..$6` the attempt.
const MARK_DELIVERED_SQL: &str = "
WITH logged AS (
    INSERT INTO outbox_attempts (outbox_id, started_at, duration_ms, status_code, error)
    VALUES ($1, $3, $4, $5, $6))
UPDATE outbox_events
   SET status = 'DELIVERED', delivered_at = $2, next_attempt_at = $2, attempts = attempts + 1
 WHERE id = $1 AND status = 'PENDING'";

/// A failure is recorded only while the claim holds (`next_attempt_at` is still its
/// lease, `$7`). `status` stays out of the SET, so a retry does not wake the relays
/// (the NOTIFY trigger fires on `UPDATE OF status`). `$2` the next attempt's time.
const MARK_RETRY_SQL: &str = "
WITH logged AS (
    INSERT INTO outbox_attempts (outbox_id, started_at, duration_ms, status_code, error)
    VALUES ($1, $3, $4, $5, $6))
UPDATE outbox_events
   SET attempts = attempts + 1, last_error = $6, next_attempt_at = $2
 WHERE id = $1 AND status = 'PENDING' AND next_attempt_at = $7";

/// As [`MARK_RETRY_SQL`], parking the event: `$2` is now.
const MARK_DEAD_SQL: &str = "
WITH logged AS (
    INSERT INTO outbox_attempts (outbox_id, started_at, duration_ms, status_code, error)
    VALUES ($1, $3, $4, $5, $6))
UPDATE outbox_events
   SET attempts = attempts + 1, last_error = $6, next_attempt_at = $2, status = 'DEAD'
 WHERE id = $1 AND status = 'PENDING' AND next_attempt_at = $7";

const LIST_SQL: &str = concat!(
    "SELECT ",
    entry_columns!(),
    " FROM outbox_events e
     WHERE ($1::text IS NULL OR e.status = $1) AND e.id > $2
     ORDER BY e.id
     LIMIT $3"
);

const GET_SQL: &str = concat!(
    "SELECT ",
    entry_columns!(),
    ", e.payload FROM outbox_events e WHERE e.event_id = $1"
);

/// Attempts are numbered by their rank within the event.
const ATTEMPTS_SQL: &str = "
SELECT attempt, started_at, duration_ms, status_code, error
  FROM (SELECT row_number() OVER (ORDER BY a.id) AS attempt, a.*
          FROM outbox_attempts a
         WHERE a.outbox_id = $1) n
 WHERE attempt > $2
 ORDER BY attempt
 LIMIT $3";

const RETRY_ONE_SQL: &str = concat!(
    "WITH e AS (
        UPDATE outbox_events
           SET status = 'PENDING', attempts = 0, next_attempt_at = $2
         WHERE event_id = $1 AND status = 'DEAD'
     RETURNING *)
     SELECT ",
    entry_columns!(),
    " FROM e"
);

/// Every matching DEAD event in one statement (`$2` type, `$3..$4` the created range).
const RETRY_MATCHING_SQL: &str = "
UPDATE outbox_events
   SET status = 'PENDING', attempts = 0, next_attempt_at = $1
 WHERE status = 'DEAD'
   AND ($2::text IS NULL OR event_type = $2)
   AND ($3::timestamptz IS NULL OR created_at >= $3)
   AND ($4::timestamptz IS NULL OR created_at < $4)";

/// One bounded batch; rows another instance is deleting right now are skipped. A
/// DELIVERED event never changes again, so what is picked is still deletable.
const PURGE_SQL: &str = "
DELETE FROM outbox_events
 WHERE id IN (SELECT id FROM outbox_events
               WHERE status = 'DELIVERED' AND delivered_at < $1
               ORDER BY delivered_at
               LIMIT $2
                 FOR UPDATE SKIP LOCKED)";

const BACKLOG_SQL: &str = "
SELECT count(*) FILTER (WHERE status = 'PENDING') AS pending,
       count(*) FILTER (WHERE status = 'DEAD') AS dead,
       count(*) FILTER (WHERE status = 'DELIVERED') AS delivered,
       min(created_at) FILTER (WHERE status = 'PENDING') AS oldest_pending_at
  FROM outbox_events";

fn truncate(error: &str) -> String {
    match error.char_indices().nth(MAX_ERROR_CHARS) {
        Some((i, _)) => format!("{}...", &error[..i]),
        None => error.to_string(),
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl PgOutboxStore {
    /// Runs one of the statements that record an attempt; true when the event changed.
    async fn record(
        &self,
        sql: &'static str,
        claim: &ClaimedEvent,
        attempt: &AttemptOutcome,
        at: Timestamp,
        what: &'static str,
    ) -> anyhow::Result<bool> {
        let mut conn = self.conn().await?;
        let query = diesel::sql_query(sql)
            .bind::<BigInt, _>(claim.id)
            .bind::<Timestamptz, _>(at)
            .bind::<Timestamptz, _>(attempt.started_at)
            .bind::<BigInt, _>(millis(attempt.duration))
            .bind::<Nullable<Integer>, _>(attempt.status_code.map(i32::from))
            .bind::<Nullable<Text>, _>(attempt.error.as_deref().map(truncate))
            .bind::<Timestamptz, _>(claim.lease_until);
        let n = bounded(self.timeout, query.execute(&mut conn)).await;
        Ok(self.settle(conn, n, what)? == 1)
    }
}

#[async_trait]
impl OutboxStore for PgOutboxStore {
    async fn claim_due(
        &self,
        limit: u16,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> anyhow::Result<Vec<ClaimedEvent>> {
        let mut conn = self.conn().await?;
        let query = diesel::sql_query(CLAIM_SQL)
            .bind::<Timestamptz, _>(now)
            .bind::<Timestamptz, _>(lease_until)
            .bind::<BigInt, _>(i64::from(limit));
        let rows = bounded(self.timeout, query.load::<ClaimRow>(&mut conn)).await;
        let mut rows = self.settle(conn, rows, "claiming due outbox events")?;
        rows.sort_by_key(|r| r.id);
        rows.into_iter().map(ClaimRow::claim).collect()
    }

    async fn mark_delivered(
        &self,
        claim: &ClaimedEvent,
        attempt: &AttemptOutcome,
        now: Timestamp,
    ) -> anyhow::Result<bool> {
        // not fenced by the lease: an acknowledgement is the truth whoever holds the claim
        let mut conn = self.conn().await?;
        let query = diesel::sql_query(MARK_DELIVERED_SQL)
            .bind::<BigInt, _>(claim.id)
            .bind::<Timestamptz, _>(now)
            .bind::<Timestamptz, _>(attempt.started_at)
            .bind::<BigInt, _>(millis(attempt.duration))
            .bind::<Nullable<Integer>, _>(attempt.status_code.map(i32::from))
            .bind::<Nullable<Text>, _>(attempt.error.as_deref().map(truncate));
        let n = bounded(self.timeout, query.execute(&mut conn)).await;
        Ok(self.settle(conn, n, "recording a delivery")? == 1)
    }

    async fn mark_failed(
        &self,
        claim: &ClaimedEvent,
        attempt: &AttemptOutcome,
        next: AfterFailure,
        now: Timestamp,
    ) -> anyhow::Result<bool> {
        match next {
            AfterFailure::RetryAt(at) => {
                self.record(
                    MARK_RETRY_SQL,
                    claim,
                    attempt,
                    at,
                    "recording a failed delivery",
                )
                .await
            }
            AfterFailure::Dead => {
                self.record(
                    MARK_DEAD_SQL,
                    claim,
                    attempt,
                    now,
                    "recording a failed delivery",
                )
                .await
            }
        }
    }

    async fn list(
        &self,
        status: Option<OutboxStatus>,
        page: PageRequest,
    ) -> anyhow::Result<Page<OutboxEntry>> {
        let mut conn = self.conn().await?;
        let query = diesel::sql_query(LIST_SQL)
            .bind::<Nullable<Text>, _>(status.map(OutboxStatus::as_str))
            .bind::<BigInt, _>(page.after().unwrap_or(0))
            .bind::<BigInt, _>(page.fetch_limit());
        let rows = bounded(self.timeout, query.load::<EntryRow>(&mut conn)).await;
        let entries = self
            .settle(conn, rows, "listing the outbox")?
            .into_iter()
            .map(EntryRow::entry)
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(page.page(entries, |e| e.id))
    }

    async fn get(&self, event_id: Uuid) -> anyhow::Result<Option<EventDetail>> {
        let mut conn = self.conn().await?;
        let query = diesel::sql_query(GET_SQL).bind::<SqlUuid, _>(event_id);
        let row = bounded(self.timeout, async {
            query.get_result::<DetailRow>(&mut conn).await.optional()
        })
        .await;
        self.settle(conn, row, "reading an outbox event")?
            .map(|r| {
                Ok(EventDetail {
                    entry: r.entry.entry()?,
                    payload: r.payload,
                })
            })
            .transpose()
    }

    async fn attempts(
        &self,
        event_id: Uuid,
        page: PageRequest,
    ) -> anyhow::Result<Option<Page<Attempt>>> {
        let mut conn = self.conn().await?;
        let id = bounded(self.timeout, async {
            outbox_events::table
                .filter(outbox_events::event_id.eq(event_id))
                .select(outbox_events::id)
                .first::<i64>(&mut conn)
                .await
                .optional()
        })
        .await;
        let Some(id) = (match id {
            Some(Ok(id)) => id,
            other => {
                return self
                    .settle(conn, other, "reading an outbox event")
                    .map(|_| None)
            }
        }) else {
            return Ok(None);
        };
        let query = diesel::sql_query(ATTEMPTS_SQL)
            .bind::<BigInt, _>(id)
            .bind::<BigInt, _>(page.after().unwrap_or(0))
            .bind::<BigInt, _>(page.fetch_limit());
        let rows = bounded(self.timeout, query.load::<AttemptRow>(&mut conn)).await;
        let attempts = self
            .settle(conn, rows, "reading an event's attempts")?
            .into_iter()
            .map(AttemptRow::attempt)
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Some(page.page(attempts, |a| i64::from(a.attempt))))
    }

    async fn retry_dead(
        &self,
        event_id: Uuid,
        now: Timestamp,
    ) -> Result<OutboxEntry, RetryEventError> {
        let mut conn = self.conn().await?;
        let query = diesel::sql_query(RETRY_ONE_SQL)
            .bind::<SqlUuid, _>(event_id)
            .bind::<Timestamptz, _>(now);
        let revived = bounded(self.timeout, async {
            query.get_result::<EntryRow>(&mut conn).await.optional()
        })
        .await;
        let revived = self.settle(conn, revived, "retrying a dead event")?;
        if let Some(row) = revived {
            return Ok(row.entry()?);
        }
        match self.get(event_id).await? {
            None => Err(RetryEventError::NotFound(event_id)),
            Some(detail) => Err(RetryEventError::NotDead {
                event_id,
                status: detail.entry.status,
            }),
        }
    }

    async fn retry_dead_matching(
        &self,
        filter: &RetryFilter,
        now: Timestamp,
    ) -> anyhow::Result<u64> {
        let mut conn = self.conn().await?;
        let query = diesel::sql_query(RETRY_MATCHING_SQL)
            .bind::<Timestamptz, _>(now)
            .bind::<Nullable<Text>, _>(filter.event_type())
            .bind::<Nullable<Timestamptz>, _>(filter.created_from())
            .bind::<Nullable<Timestamptz>, _>(filter.created_to());
        let n = bounded(self.timeout, query.execute(&mut conn)).await;
        Ok(self.settle(conn, n, "retrying dead events")? as u64)
    }

    async fn purge_delivered(&self, before: Timestamp, limit: u32) -> anyhow::Result<u64> {
        let mut conn = self.conn().await?;
        let query = diesel::sql_query(PURGE_SQL)
            .bind::<Timestamptz, _>(before)
            .bind::<BigInt, _>(i64::from(limit));
        let n = bounded(self.timeout, query.execute(&mut conn)).await;
        Ok(self.settle(conn, n, "deleting delivered events")? as u64)
    }

    async fn backlog(&self) -> anyhow::Result<Backlog> {
        let mut conn = self.conn().await?;
        let row = bounded(
            self.timeout,
            diesel::sql_query(BACKLOG_SQL).get_result::<BacklogRow>(&mut conn),
        )
        .await;
        let row = self.settle(conn, row, "counting the outbox backlog")?;
        Ok(Backlog {
            pending: row.pending,
            dead: row.dead,
            delivered: row.delivered,
            oldest_pending_at: row.oldest_pending_at,
        })
    }
}

/// Why [`OutboxListener::wait`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// An event may have become PENDING since the last wait: one was notified, or the
    /// listening connection was (re-)established and notifications may have been missed.
    Notified,
    /// Nothing was heard within the time given (or the database is not reachable).
    TimedOut,
}

/// A dedicated connection that `LISTEN`s on [`OUTBOX_CHANNEL`], so an idle relay wakes
/// as soon as an event is committed instead of at its next poll.
///
/// It re-establishes itself: a connection that errors, or that does not answer a ping
/// within the timeout (a stalled link looks idle, not broken), is dropped and a new one
/// made on the next wait; connecting is bounded by the timeout too. Each new connection
/// reports [`Wake::Notified`] once, since events committed while nobody listened would
/// otherwise wait for the next poll. While it cannot connect, `wait` sleeps (the relay
/// still polls).
pub struct OutboxListener {
    url: String,
    conn: Option<AsyncPgConnection>,
    failing: bool,
    timeout: Duration,
    /// How long the connection may stay silent before it is pinged.
    check_every: Duration,
    last_heard: Instant,
}

impl OutboxListener {
    /// Connects lazily, on the first `wait`; gives up on a connect or a ping after 5 s.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            conn: None,
            failing: false,
            timeout: Duration::from_secs(5),
            check_every: Duration::from_secs(10),
            last_heard: Instant::now(),
        }
    }

    /// The same listener with another bound on connecting and pinging, and another
    /// silence after which the connection is pinged.
    pub fn with_timeouts(mut self, timeout: Duration, check_every: Duration) -> Self {
        self.timeout = timeout;
        self.check_every = check_every;
        self
    }

    async fn connect(&mut self) -> anyhow::Result<AsyncPgConnection> {
        let listen = async {
            let mut conn = AsyncPgConnection::establish(&self.url)
                .await
                .context("connecting to listen for outbox events")?;
            diesel::sql_query(format!("LISTEN {OUTBOX_CHANNEL}"))
                .execute(&mut conn)
                .await
                .context("listening for outbox events")?;
            anyhow::Ok(conn)
        };
        tokio::time::timeout(self.timeout, listen)
            .await
            .map_err(|_| anyhow!("connecting to listen for outbox events: timed out"))?
    }

    /// Waits at most `max` for a notification. Notifications received while the caller
    /// was busy count (they are buffered), and several are folded into one wake-up.
    pub async fn wait(&mut self, max: Duration) -> Wake {
        let started = Instant::now();
        let Some(conn) = self.conn.as_mut() else {
            match self.connect().await {
                Ok(conn) => {
                    if self.failing {
                        tracing::info!("listening for outbox events again");
                        self.failing = false;
                    }
                    self.conn = Some(conn);
                    self.last_heard = Instant::now();
                    // events may have been committed while nobody listened
                    return Wake::Notified;
                }
                Err(e) => {
                    if !self.failing {
                        tracing::warn!(
                            error = format!("{e:#}"),
                            "cannot listen for outbox events; polling only"
                        );
                        self.failing = true;
                    }
                    tokio::time::sleep(max.saturating_sub(started.elapsed())).await;
                    return Wake::TimedOut;
                }
            }
        };
        let (wake, broken) = {
            let mut stream = std::pin::pin!(conn.notifications_stream());
            match tokio::time::timeout(max, stream.next()).await {
                Err(_) => (Wake::TimedOut, false),
                Ok(Some(Ok(_))) => {
                    // fold whatever else is already buffered into this wake-up
                    let mut broken = false;
                    while let Some(Some(next)) = stream.next().now_or_never() {
                        if next.is_err() {
                            broken = true;
                            break;
                        }
                    }
                    (Wake::Notified, broken)
                }
                Ok(_) => (Wake::Notified, true),
            }
        };
        if broken {
            // the connection is gone: reconnect on the next wait, and wake the relay
            // now, since notifications may have been lost meanwhile
            tracing::warn!("the outbox listening connection broke; reconnecting");
            self.conn = None;
            return Wake::Notified;
        }
        if wake == Wake::Notified {
            self.last_heard = Instant::now();
        } else if self.last_heard.elapsed() >= self.check_every {
            // silence: an idle channel, or a link that stalled without breaking
            let ping =
                tokio::time::timeout(self.timeout, diesel::sql_query("SELECT 1").execute(conn))
                    .await;
            if matches!(ping, Ok(Ok(_))) {
                self.last_heard = Instant::now();
            } else {
                tracing::warn!("the outbox listening connection does not answer; reconnecting");
                self.conn = None;
                return Wake::Notified;
            }
        }
        wake
    }
}
