//! The transactional outbox: writing events inside the order's transaction
//! ([`enqueue_in_tx`]), and the relay's and operators' side of it ([`PgOutboxStore`],
//! guarantees in `order::events::OutboxStore`), plus the wake-up signal
//! ([`OutboxListener`]) that tells relays a new event was committed.
//!
//! A claim is a committed `next_attempt_at = lease_until` on rows picked with
//! `FOR UPDATE SKIP LOCKED`: no transaction stays open while the platform is called,
//! and a relay that dies leaves its events due again when the lease ends. The lease
//! value is also the claim's fencing token: a failure is recorded only while the row
//! still carries it.

use crate::pool::{conn, PgPool};
use crate::schema::outbox::outbox_events;
use crate::tx::valid;
use anyhow::{anyhow, Context};
use async_trait::async_trait;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Timestamptz};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use futures::{FutureExt, StreamExt};
use kernel::{Page, PageRequest, Timestamp};
use order::events::{
    AfterFailure, Backlog, ClaimedEvent, EventType, OutboundEvent, OutboxEntry, OutboxStatus,
    OutboxStore, RetryEventError,
};
use std::time::Duration;
use uuid::Uuid;

/// The channel the `outbox_events_notify` trigger notifies (migration 000005).
pub const OUTBOX_CHANNEL: &str = "outbox_events";

/// The longest `last_error` kept, in characters.
const MAX_ERROR_CHARS: usize = 1_000;

/// Writes `event` to the outbox on `conn`, inside the caller's transaction, so the event
/// exists if and only if the order change that caused it commits.
///
/// The row starts PENDING, due at once: `created_at = next_attempt_at = event.occurred_at`.
/// `event.body` is stored as the exact document the platform will receive. Relays are
/// woken (NOTIFY, by trigger) when the transaction commits. Events of one order are
/// delivered in the order of their ids, so write them in the order they happened, from
/// transactions that lock the order (which serialises them).
pub(crate) async fn enqueue_in_tx(
    conn: &mut AsyncPgConnection,
    event: &OutboundEvent,
) -> diesel::QueryResult<()> {
    diesel::insert_into(outbox_events::table)
        .values((
            outbox_events::event_id.eq(event.event_id),
            outbox_events::event_type.eq(event.event_type.as_str()),
            outbox_events::order_id.eq(event.order_id),
            outbox_events::payload.eq(&event.body),
            outbox_events::status.eq(OutboxStatus::Pending.as_str()),
            outbox_events::attempts.eq(0),
            outbox_events::next_attempt_at.eq(event.occurred_at),
            outbox_events::created_at.eq(event.occurred_at),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

#[derive(Clone)]
pub struct PgOutboxStore {
    pool: PgPool,
}

impl PgOutboxStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Writes one event in a transaction of its own (tools and tests; the order adapter
    /// uses [`enqueue_in_tx`] inside the order's transaction).
    pub async fn enqueue(&self, event: &OutboundEvent) -> anyhow::Result<()> {
        let mut conn = conn(&self.pool).await?;
        let event = event.clone();
        conn.transaction::<_, diesel::result::Error, _>(async move |conn| {
            enqueue_in_tx(conn, &event).await
        })
        .await
        .context("writing an event to the outbox")
    }

    /// One outbox row by event id.
    pub async fn get(&self, event_id: Uuid) -> anyhow::Result<Option<OutboxEntry>> {
        let mut conn = conn(&self.pool).await?;
        let row: Option<OutboxRow> = outbox_events::table
            .filter(outbox_events::event_id.eq(event_id))
            .select(OutboxRow::as_select())
            .first(&mut conn)
            .await
            .optional()
            .context("reading an outbox event")?;
        row.map(OutboxRow::entry).transpose()
    }
}

#[derive(Queryable, QueryableByName, Selectable)]
#[diesel(table_name = outbox_events, check_for_backend(diesel::pg::Pg))]
struct OutboxRow {
    id: i64,
    event_id: Uuid,
    event_type: String,
    order_id: i64,
    payload: serde_json::Value,
    status: String,
    attempts: i32,
    last_error: Option<String>,
    next_attempt_at: Timestamp,
    created_at: Timestamp,
    delivered_at: Option<Timestamp>,
}

impl OutboxRow {
    fn event_type(&self) -> anyhow::Result<EventType> {
        EventType::parse(&self.event_type)
            .ok_or_else(|| anyhow!("invalid event type in the database: {}", self.event_type))
    }

    fn attempts(&self) -> anyhow::Result<u32> {
        valid(u32::try_from(self.attempts), "attempt count")
    }

    fn entry(self) -> anyhow::Result<OutboxEntry> {
        Ok(OutboxEntry {
            id: self.id,
            event_id: self.event_id,
            event_type: self.event_type()?,
            order_id: self.order_id,
            status: OutboxStatus::parse(&self.status)
                .ok_or_else(|| anyhow!("invalid outbox status in the database: {}", self.status))?,
            attempts: self.attempts()?,
            last_error: self.last_error,
            next_attempt_at: self.next_attempt_at,
            created_at: self.created_at,
            delivered_at: self.delivered_at,
        })
    }

    fn claim(self) -> anyhow::Result<ClaimedEvent> {
        Ok(ClaimedEvent {
            id: self.id,
            attempts: self.attempts()?,
            lease_until: self.next_attempt_at,
            event: OutboundEvent {
                event_id: self.event_id,
                event_type: self.event_type()?,
                order_id: self.order_id,
                occurred_at: self.created_at,
                body: self.payload,
            },
        })
    }
}

#[derive(QueryableByName)]
struct BacklogRow {
    #[diesel(sql_type = BigInt)]
    pending: i64,
    #[diesel(sql_type = BigInt)]
    dead: i64,
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

const BACKLOG_SQL: &str = "
SELECT count(*) FILTER (WHERE status = 'PENDING') AS pending,
       count(*) FILTER (WHERE status = 'DEAD') AS dead,
       min(created_at) FILTER (WHERE status = 'PENDING') AS oldest_pending_at
  FROM outbox_events
 WHERE status IN ('PENDING', 'DEAD')";

fn truncate(error: &str) -> String {
    match error.char_indices().nth(MAX_ERROR_CHARS) {
        Some((i, _)) => format!("{}...", &error[..i]),
        None => error.to_string(),
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
        let mut conn = conn(&self.pool).await?;
        let mut rows: Vec<OutboxRow> = diesel::sql_query(CLAIM_SQL)
            .bind::<Timestamptz, _>(now)
            .bind::<Timestamptz, _>(lease_until)
            .bind::<BigInt, _>(i64::from(limit))
            .load(&mut conn)
            .await
            .context("claiming due outbox events")?;
        rows.sort_by_key(|r| r.id);
        rows.into_iter().map(OutboxRow::claim).collect()
    }

    async fn mark_delivered(&self, claim: &ClaimedEvent, now: Timestamp) -> anyhow::Result<bool> {
        let mut conn = conn(&self.pool).await?;
        let n = diesel::update(
            outbox_events::table
                .find(claim.id)
                .filter(outbox_events::status.eq(OutboxStatus::Pending.as_str())),
        )
        .set((
            outbox_events::status.eq(OutboxStatus::Delivered.as_str()),
            outbox_events::delivered_at.eq(now),
            outbox_events::attempts.eq(outbox_events::attempts + 1),
        ))
        .execute(&mut conn)
        .await
        .context("recording a delivery")?;
        Ok(n == 1)
    }

    async fn mark_failed(
        &self,
        claim: &ClaimedEvent,
        error: &str,
        next: AfterFailure,
        now: Timestamp,
    ) -> anyhow::Result<bool> {
        let mut conn = conn(&self.pool).await?;
        let owned = outbox_events::table
            .find(claim.id)
            .filter(outbox_events::status.eq(OutboxStatus::Pending.as_str()))
            .filter(outbox_events::next_attempt_at.eq(claim.lease_until));
        let attempts = outbox_events::attempts.eq(outbox_events::attempts + 1);
        let last_error = outbox_events::last_error.eq(truncate(error));
        let n = match next {
            // `status` stays out of the SET, so a retry does not wake the relays
            AfterFailure::RetryAt(at) => {
                diesel::update(owned)
                    .set((attempts, last_error, outbox_events::next_attempt_at.eq(at)))
                    .execute(&mut conn)
                    .await
            }
            AfterFailure::Dead => {
                diesel::update(owned)
                    .set((
                        attempts,
                        last_error,
                        outbox_events::next_attempt_at.eq(now),
                        outbox_events::status.eq(OutboxStatus::Dead.as_str()),
                    ))
                    .execute(&mut conn)
                    .await
            }
        }
        .context("recording a failed delivery")?;
        Ok(n == 1)
    }

    async fn list(
        &self,
        status: Option<OutboxStatus>,
        page: PageRequest,
    ) -> anyhow::Result<Page<OutboxEntry>> {
        let mut conn = conn(&self.pool).await?;
        let mut query = outbox_events::table
            .select(OutboxRow::as_select())
            .order(outbox_events::id.asc())
            .limit(page.fetch_limit())
            .into_boxed();
        if let Some(status) = status {
            query = query.filter(outbox_events::status.eq(status.as_str()));
        }
        if let Some(after) = page.after() {
            query = query.filter(outbox_events::id.gt(after));
        }
        let rows: Vec<OutboxRow> = query.load(&mut conn).await.context("listing the outbox")?;
        let entries = rows
            .into_iter()
            .map(OutboxRow::entry)
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(page.page(entries, |e| e.id))
    }

    async fn retry_dead(
        &self,
        event_id: Uuid,
        now: Timestamp,
    ) -> Result<OutboxEntry, RetryEventError> {
        let mut conn = conn(&self.pool).await?;
        let revived: Option<OutboxRow> = diesel::update(
            outbox_events::table
                .filter(outbox_events::event_id.eq(event_id))
                .filter(outbox_events::status.eq(OutboxStatus::Dead.as_str())),
        )
        .set((
            outbox_events::status.eq(OutboxStatus::Pending.as_str()),
            outbox_events::attempts.eq(0),
            outbox_events::next_attempt_at.eq(now),
        ))
        .returning(OutboxRow::as_returning())
        .get_result(&mut conn)
        .await
        .optional()
        .context("retrying a dead event")?;
        if let Some(row) = revived {
            return Ok(row.entry()?);
        }
        let status: Option<String> = outbox_events::table
            .filter(outbox_events::event_id.eq(event_id))
            .select(outbox_events::status)
            .first(&mut conn)
            .await
            .optional()
            .context("reading an outbox event")?;
        match status.as_deref().map(OutboxStatus::parse) {
            None => Err(RetryEventError::NotFound(event_id)),
            Some(Some(status)) => Err(RetryEventError::NotDead { event_id, status }),
            Some(None) => Err(anyhow!("invalid outbox status in the database").into()),
        }
    }

    async fn backlog(&self) -> anyhow::Result<Backlog> {
        let mut conn = conn(&self.pool).await?;
        let row: BacklogRow = diesel::sql_query(BACKLOG_SQL)
            .get_result(&mut conn)
            .await
            .context("counting the outbox backlog")?;
        Ok(Backlog {
            pending: row.pending,
            dead: row.dead,
            oldest_pending_at: row.oldest_pending_at,
        })
    }
}

/// Why [`OutboxListener::wait`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// An event became PENDING (committed) since the last wait.
    Notified,
    /// Nothing was heard within the time given (or the database is not reachable).
    TimedOut,
}

/// A dedicated connection that `LISTEN`s on [`OUTBOX_CHANNEL`], so an idle relay wakes
/// as soon as an event is committed instead of at its next poll. It reconnects by itself;
/// while it cannot, `wait` simply sleeps (the relay still polls).
pub struct OutboxListener {
    url: String,
    conn: Option<AsyncPgConnection>,
    failing: bool,
}

impl OutboxListener {
    /// Connects lazily, on the first `wait`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            conn: None,
            failing: false,
        }
    }

    async fn connect(&mut self) -> anyhow::Result<&mut AsyncPgConnection> {
        if self.conn.is_none() {
            let mut conn = AsyncPgConnection::establish(&self.url)
                .await
                .context("connecting to listen for outbox events")?;
            diesel::sql_query(format!("LISTEN {OUTBOX_CHANNEL}"))
                .execute(&mut conn)
                .await
                .context("listening for outbox events")?;
            self.conn = Some(conn);
        }
        self.conn
            .as_mut()
            .ok_or_else(|| anyhow!("no listening connection"))
    }

    /// Waits at most `max` for a notification. Notifications received while the caller
    /// was busy count (they are buffered), and several are folded into one wake-up.
    pub async fn wait(&mut self, max: Duration) -> Wake {
        let conn = match self.connect().await {
            Ok(conn) => conn,
            Err(e) => {
                if !self.failing {
                    tracing::warn!(
                        error = format!("{e:#}"),
                        "cannot listen for outbox events; polling only"
                    );
                    self.failing = true;
                }
                tokio::time::sleep(max).await;
                return Wake::TimedOut;
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
            self.conn = None;
            return Wake::Notified;
        }
        if self.failing {
            tracing::info!("listening for outbox events again");
            self.failing = false;
        }
        wake
    }
}
