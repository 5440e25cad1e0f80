//! The ports: where events go ([`Destination`]) and where they wait ([`OutboxStore`]).

use crate::model::{
    AfterFailure, Attempt, AttemptOutcome, Backlog, ClaimedEvent, Event, EventDetail, OutboxEntry,
    OutboxStatus, RetryFilter,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kernel::{Page, PageRequest};
use uuid::Uuid;

/// The destination acknowledged an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Acknowledged {
    /// The 2xx status it answered with.
    pub status: u16,
}

/// Why a delivery attempt failed; the relay retries or parks the event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// The destination answered, but not with a 2xx.
    #[error("the data platform answered {status}")]
    Rejected {
        /// The status it answered with.
        status: u16,
    },
    /// No answer in time, or no connection.
    #[error("the data platform did not answer: {0}")]
    Unreachable(String),
}

impl DeliveryError {
    /// The status the destination answered with; `None` when it did not answer.
    pub fn status_code(&self) -> Option<u16> {
        match self {
            DeliveryError::Rejected { status } => Some(*status),
            DeliveryError::Unreachable(_) => None,
        }
    }
}

/// Where events are delivered (the external data platform).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Destination: Send + Sync {
    /// Delivers one event: one attempt, bounded by the implementation's timeout. MUST
    /// identify the event by its id so the destination can drop duplicates (delivery is
    /// at least once), MUST send `event.body` unchanged, and MUST treat only a 2xx as
    /// delivered.
    async fn deliver(&self, event: &Event) -> Result<Acknowledged, DeliveryError>;
}

/// Why a DEAD event could not be retried.
#[derive(Debug, thiserror::Error)]
pub enum RetryEventError {
    /// No event with this id.
    #[error("no event {0} in the outbox")]
    NotFound(Uuid),
    /// The event is PENDING or DELIVERED.
    #[error("event {event_id} is {}, only a DEAD event can be retried", status.as_str())]
    NotDead {
        /// The event.
        event_id: Uuid,
        /// What it is instead.
        status: OutboxStatus,
    },
    /// The store failed.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// An event id that is not (or no longer) in the outbox.
#[derive(Debug, thiserror::Error)]
pub enum EventNotFound {
    /// No event with this id.
    #[error("no event {0} in the outbox")]
    NotFound(Uuid),
    /// The store failed.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// The transactional outbox, as relays and operators use it. (Events are written by the
/// writer's adapter inside the writer's own transaction, not through this port.)
///
/// Every method MUST be safe to call from several processes at once: correctness is
/// held by the store (row locks, conditional updates), never by the caller.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Claims up to `limit` due events for one delivery attempt each, oldest first.
    ///
    /// An event is due when it is PENDING, its `next_attempt_at <= now`, and no earlier
    /// (smaller id) event of the same aggregate is still undelivered (PENDING or DEAD),
    /// so the events of one aggregate are delivered one after the other, in write order
    /// (and a batch holds at most one event per aggregate).
    /// MUST commit the claim (`next_attempt_at = lease_until`) before returning, so a
    /// relay that dies leaves the event due again once the lease ends, and MUST NOT hand
    /// an event to two relays while its claim holds (across processes).
    async fn claim_due(
        &self,
        limit: u16,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> anyhow::Result<Vec<ClaimedEvent>>;

    /// Records the acknowledgement: DELIVERED, `delivered_at = next_attempt_at = now`,
    /// one more attempt, and `attempt` in the event's attempt log, atomically. Returns
    /// false when the event is no longer PENDING (it changes nothing then, except that
    /// the attempt is still logged: it happened).
    async fn mark_delivered(
        &self,
        claim: &ClaimedEvent,
        attempt: &AttemptOutcome,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool>;

    /// Records a failed attempt: one more attempt, `last_error = attempt.error`, then due
    /// again at the given time, or DEAD (with `next_attempt_at = now`), and `attempt` in
    /// the attempt log, atomically. MUST NOT change the event (and returns false) when
    /// the claim was lost, i.e. the lease ended and another relay claimed it since; the
    /// attempt is still logged.
    async fn mark_failed(
        &self,
        claim: &ClaimedEvent,
        attempt: &AttemptOutcome,
        next: AfterFailure,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool>;

    /// Outbox rows in write order (ascending id), optionally of one status, each with
    /// what holds it back (`blocked_by`); `page.after()` is the id to continue after.
    async fn list(
        &self,
        status: Option<OutboxStatus>,
        page: PageRequest,
    ) -> anyhow::Result<Page<OutboxEntry>>;

    /// One event with its payload; `None` when there is no such event.
    async fn get(&self, event_id: Uuid) -> anyhow::Result<Option<EventDetail>>;

    /// The attempt log of one event, oldest first; `page.after()` is the attempt number
    /// to continue after. `None` when there is no such event.
    async fn attempts(
        &self,
        event_id: Uuid,
        page: PageRequest,
    ) -> anyhow::Result<Option<Page<Attempt>>>;

    /// Makes a DEAD event PENDING again, due `now`, with its attempts reset to zero (it
    /// gets the full number of attempts again); `last_error` and the attempt log are
    /// kept. MUST refuse any event that is not DEAD.
    async fn retry_dead(
        &self,
        event_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<OutboxEntry, RetryEventError>;

    /// Does [`Self::retry_dead`] to every DEAD event that `filter` matches
    /// ([`RetryFilter::matches`]), in one atomic step; returns how many.
    async fn retry_dead_matching(
        &self,
        filter: &RetryFilter,
        now: DateTime<Utc>,
    ) -> anyhow::Result<u64>;

    /// Deletes up to `limit` DELIVERED events delivered before `before`, with their
    /// attempt logs; returns how many. MUST NOT delete a PENDING or DEAD event, and MUST
    /// be safe to run from several processes at once (each deletes different rows or
    /// none).
    async fn purge_delivered(&self, before: DateTime<Utc>, limit: u32) -> anyhow::Result<u64>;

    /// Counts of what waits.
    async fn backlog(&self) -> anyhow::Result<Backlog>;
}
