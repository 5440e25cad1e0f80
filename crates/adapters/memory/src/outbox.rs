//! The outbox as relays and operators use it ([`outbox::OutboxStore`]), and a
//! destination that keeps what it is sent ([`RecordingDestination`]).

use crate::paging::{keyset, Order};
use crate::state::{OutboxRow, State};
use crate::MemoryStore;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kernel::{Page, PageRequest};
use outbox::{
    Acknowledged, AfterFailure, Attempt, AttemptOutcome, Backlog, ClaimedEvent, DeliveryError,
    Destination, Event, EventDetail, OutboxEntry, OutboxStatus, OutboxStore, RetryEventError,
    RetryFilter,
};
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// The longest `last_error` kept, in characters (as the PostgreSQL store).
const MAX_ERROR_CHARS: usize = 1_000;

fn truncate(error: &str) -> String {
    match error.char_indices().nth(MAX_ERROR_CHARS) {
        Some((i, _)) => format!("{}...", &error[..i]),
        None => error.to_string(),
    }
}

impl State {
    /// The earliest undelivered event written before `row` for the same aggregate.
    fn blocked_by(&self, row: &OutboxRow) -> Option<Uuid> {
        if row.status == OutboxStatus::Delivered {
            return None;
        }
        self.outbox
            .range(..row.id)
            .map(|(_, p)| p)
            .find(|p| {
                p.event.aggregate_id == row.event.aggregate_id
                    && p.status != OutboxStatus::Delivered
            })
            .map(|p| p.event.event_id)
    }

    fn entry(&self, row: &OutboxRow) -> OutboxEntry {
        OutboxEntry {
            id: row.id,
            event_id: row.event.event_id,
            event_type: row.event.event_type.clone(),
            aggregate_id: row.event.aggregate_id,
            status: row.status,
            attempts: row.attempts,
            last_error: row.last_error.clone(),
            next_attempt_at: row.next_attempt_at,
            created_at: row.created_at,
            delivered_at: row.delivered_at,
            blocked_by: self.blocked_by(row),
        }
    }

    fn row_of(&self, event_id: Uuid) -> Option<&OutboxRow> {
        self.outbox.values().find(|r| r.event.event_id == event_id)
    }

    fn log(&mut self, id: i64, attempt: &AttemptOutcome) {
        if let Some(row) = self.outbox.get_mut(&id) {
            row.log.push(AttemptOutcome {
                error: attempt.error.as_deref().map(truncate),
                ..attempt.clone()
            });
        }
    }
}

#[async_trait]
impl OutboxStore for MemoryStore {
    async fn claim_due(
        &self,
        limit: u16,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> anyhow::Result<Vec<ClaimedEvent>> {
        let mut db = self.db();
        let due: Vec<i64> = db
            .outbox
            .values()
            .filter(|r| r.status == OutboxStatus::Pending && r.next_attempt_at <= now)
            .filter(|r| {
                !db.outbox.range(..r.id).any(|(_, p)| {
                    p.event.aggregate_id == r.event.aggregate_id
                        && p.status != OutboxStatus::Delivered
                })
            })
            .map(|r| r.id)
            .take(usize::from(limit))
            .collect();
        Ok(due
            .into_iter()
            .filter_map(|id| {
                let row = db.outbox.get_mut(&id)?;
                row.next_attempt_at = lease_until;
                Some(ClaimedEvent {
                    id,
                    attempts: row.attempts,
                    lease_until,
                    event: Event {
                        occurred_at: row.created_at,
                        ..row.event.clone()
                    },
                })
            })
            .collect())
    }

    async fn mark_delivered(
        &self,
        claim: &ClaimedEvent,
        attempt: &AttemptOutcome,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        let mut db = self.db();
        db.log(claim.id, attempt);
        Ok(match db.outbox.get_mut(&claim.id) {
            Some(row) if row.status == OutboxStatus::Pending => {
                row.status = OutboxStatus::Delivered;
                row.delivered_at = Some(now);
                row.next_attempt_at = now;
                row.attempts += 1;
                true
            }
            _ => false,
        })
    }

    async fn mark_failed(
        &self,
        claim: &ClaimedEvent,
        attempt: &AttemptOutcome,
        next: AfterFailure,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        let mut db = self.db();
        db.log(claim.id, attempt);
        Ok(match db.outbox.get_mut(&claim.id) {
            Some(row)
                if row.status == OutboxStatus::Pending
                    && row.next_attempt_at == claim.lease_until =>
            {
                row.attempts += 1;
                row.last_error = attempt.error.as_deref().map(truncate);
                match next {
                    AfterFailure::RetryAt(at) => row.next_attempt_at = at,
                    AfterFailure::Dead => {
                        row.status = OutboxStatus::Dead;
                        row.next_attempt_at = now;
                    }
                }
                true
            }
            _ => false,
        })
    }

    async fn list(
        &self,
        status: Option<OutboxStatus>,
        page: PageRequest,
    ) -> anyhow::Result<Page<OutboxEntry>> {
        let db = self.db();
        let entries = db
            .outbox
            .values()
            .filter(|r| status.is_none_or(|s| r.status == s))
            .map(|r| db.entry(r));
        Ok(keyset(entries, page, Order::Ascending, |e| e.id))
    }

    async fn get(&self, event_id: Uuid) -> anyhow::Result<Option<EventDetail>> {
        let db = self.db();
        Ok(db.row_of(event_id).map(|row| EventDetail {
            entry: db.entry(row),
            payload: row.event.body.clone(),
        }))
    }

    async fn attempts(
        &self,
        event_id: Uuid,
        page: PageRequest,
    ) -> anyhow::Result<Option<Page<Attempt>>> {
        let db = self.db();
        Ok(db.row_of(event_id).map(|row| {
            let attempts = row.log.iter().enumerate().map(|(i, a)| Attempt {
                attempt: u32::try_from(i + 1).unwrap_or(u32::MAX),
                started_at: a.started_at,
                duration_ms: u64::try_from(a.duration.as_millis()).unwrap_or(u64::MAX),
                status_code: a.status_code,
                error: a.error.clone(),
            });
            keyset(attempts, page, Order::Ascending, |a| i64::from(a.attempt))
        }))
    }

    async fn retry_dead(
        &self,
        event_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<OutboxEntry, RetryEventError> {
        let mut db = self.db();
        let row = db
            .outbox
            .values_mut()
            .find(|r| r.event.event_id == event_id)
            .ok_or(RetryEventError::NotFound(event_id))?;
        if row.status != OutboxStatus::Dead {
            return Err(RetryEventError::NotDead {
                event_id,
                status: row.status,
            });
        }
        row.status = OutboxStatus::Pending;
        row.attempts = 0;
        row.next_attempt_at = now;
        let row = row.clone();
        Ok(db.entry(&row))
    }

    async fn retry_dead_matching(
        &self,
        filter: &RetryFilter,
        now: DateTime<Utc>,
    ) -> anyhow::Result<u64> {
        let mut db = self.db();
        let mut retried = 0;
        for row in db.outbox.values_mut() {
            if row.status == OutboxStatus::Dead
                && filter.matches(&row.event.event_type, row.created_at)
            {
                row.status = OutboxStatus::Pending;
                row.attempts = 0;
                row.next_attempt_at = now;
                retried += 1;
            }
        }
        Ok(retried)
    }

    async fn purge_delivered(&self, before: DateTime<Utc>, limit: u32) -> anyhow::Result<u64> {
        let mut db = self.db();
        let mut old: Vec<(DateTime<Utc>, i64)> = db
            .outbox
            .values()
            .filter(|r| r.status == OutboxStatus::Delivered)
            .filter_map(|r| Some((r.delivered_at?, r.id)))
            .filter(|(at, _)| *at < before)
            .collect();
        old.sort();
        old.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        for (_, id) in &old {
            db.outbox.remove(id);
        }
        Ok(old.len() as u64)
    }

    async fn backlog(&self) -> anyhow::Result<Backlog> {
        let db = self.db();
        let count = |s: OutboxStatus| db.outbox.values().filter(|r| r.status == s).count() as i64;
        Ok(Backlog {
            pending: count(OutboxStatus::Pending),
            dead: count(OutboxStatus::Dead),
            delivered: count(OutboxStatus::Delivered),
            oldest_pending_at: db
                .outbox
                .values()
                .filter(|r| r.status == OutboxStatus::Pending)
                .map(|r| r.created_at)
                .min(),
        })
    }
}

/// A [`Destination`] that acknowledges every event (200) and keeps it, in the order
/// received: for demos, and for tests of what a relay sends.
#[derive(Clone, Default)]
pub struct RecordingDestination {
    received: Arc<Mutex<Vec<Event>>>,
}

impl RecordingDestination {
    /// A destination that has received nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every event received so far, oldest first.
    pub fn received(&self) -> Vec<Event> {
        self.received
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

#[async_trait]
impl Destination for RecordingDestination {
    async fn deliver(&self, event: &Event) -> Result<Acknowledged, DeliveryError> {
        self.received
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(event.clone());
        Ok(Acknowledged { status: 200 })
    }
}
