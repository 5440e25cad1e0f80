//! Operators' use cases: look at the outbox and an event's attempts, send DEAD events
//! again (one, or every one a filter matches), delete what retention allows.

use crate::model::{Attempt, Backlog, EventDetail, OutboxEntry, OutboxStatus, RetryFilter};
use crate::ports::{EventNotFound, OutboxStore, RetryEventError};
use kernel::{Clock, Page, PageRequest};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// DELIVERED events deleted per statement by [`OutboxAdmin::purge_delivered`]: small
/// enough that one batch holds its row locks only briefly.
pub const PURGE_BATCH: u32 = 500;

/// Operators' use cases over the outbox.
#[derive(Clone)]
pub struct OutboxAdmin {
    store: Arc<dyn OutboxStore>,
    clock: Arc<dyn Clock>,
}

impl OutboxAdmin {
    /// The use cases over this store.
    pub fn new(store: Arc<dyn OutboxStore>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// Outbox rows in write order, optionally of one status, each saying what holds it
    /// back.
    pub async fn list(
        &self,
        status: Option<OutboxStatus>,
        page: PageRequest,
    ) -> anyhow::Result<Page<OutboxEntry>> {
        self.store.list(status, page).await
    }

    /// One event with the body that is sent.
    pub async fn get(&self, event_id: Uuid) -> Result<EventDetail, EventNotFound> {
        self.store
            .get(event_id)
            .await?
            .ok_or(EventNotFound::NotFound(event_id))
    }

    /// One event's attempt log, oldest first.
    pub async fn attempts(
        &self,
        event_id: Uuid,
        page: PageRequest,
    ) -> Result<Page<Attempt>, EventNotFound> {
        self.store
            .attempts(event_id, page)
            .await?
            .ok_or(EventNotFound::NotFound(event_id))
    }

    /// A DEAD event becomes PENDING again, due now, with a fresh set of attempts.
    pub async fn retry(&self, event_id: Uuid) -> Result<OutboxEntry, RetryEventError> {
        self.store.retry_dead(event_id, self.clock.now()).await
    }

    /// Every DEAD event `filter` matches becomes PENDING again, due now, in one step;
    /// returns how many. Each aggregate's events are still delivered in write order.
    pub async fn retry_dead(&self, filter: &RetryFilter) -> anyhow::Result<u64> {
        self.store
            .retry_dead_matching(filter, self.clock.now())
            .await
    }

    /// Deletes the DELIVERED events delivered more than `retention` ago, and their
    /// attempt logs, in batches of `batch` until none is left; returns how many. PENDING
    /// and DEAD events are kept whatever their age.
    pub async fn purge_delivered(&self, retention: Duration, batch: u32) -> anyhow::Result<u64> {
        let before = self.clock.now()
            - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
        let batch = batch.max(1);
        let mut total = 0;
        loop {
            let n = self.store.purge_delivered(before, batch).await?;
            total += n;
            if n < u64::from(batch) {
                return Ok(total);
            }
        }
    }

    /// What waits in the outbox.
    pub async fn backlog(&self) -> anyhow::Result<Backlog> {
        self.store.backlog().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::MockOutboxStore;

    use kernel::testing::t0;
    use kernel::FixedClock;

    fn admin(store: MockOutboxStore) -> OutboxAdmin {
        OutboxAdmin::new(Arc::new(store), Arc::new(FixedClock(t0())))
    }

    #[tokio::test]
    async fn admin_retry_is_due_now() {
        let mut store = MockOutboxStore::new();
        store
            .expect_retry_dead()
            .withf(|id, now| *id == Uuid::from_u128(9) && *now == t0())
            .returning(|id, _| Err(RetryEventError::NotFound(id)));
        assert!(matches!(
            admin(store).retry(Uuid::from_u128(9)).await,
            Err(RetryEventError::NotFound(_))
        ));
    }

    #[tokio::test]
    async fn a_bulk_retry_passes_the_filter_and_now() {
        let filter = RetryFilter::new(Some("order.paid".into()), None, None).unwrap();
        let expected = filter.clone();
        let mut store = MockOutboxStore::new();
        store
            .expect_retry_dead_matching()
            .withf(move |f, now| *f == expected && *now == t0())
            .times(1)
            .returning(|_, _| Ok(50));
        assert_eq!(admin(store).retry_dead(&filter).await.unwrap(), 50);
    }

    #[tokio::test]
    async fn an_unknown_event_is_not_found() {
        let mut store = MockOutboxStore::new();
        store.expect_get().returning(|_| Ok(None));
        store.expect_attempts().returning(|_, _| Ok(None));
        let admin = admin(store);
        let id = Uuid::from_u128(3);
        assert!(matches!(
            admin.get(id).await,
            Err(EventNotFound::NotFound(x)) if x == id
        ));
        assert!(matches!(
            admin.attempts(id, PageRequest::default()).await,
            Err(EventNotFound::NotFound(_))
        ));
    }

    // Invariant: retention deletes only what was delivered before now - retention, and
    // keeps going batch after batch until a batch comes back short.
    #[tokio::test]
    async fn purging_deletes_batches_older_than_the_retention_until_none_is_left() {
        let mut store = MockOutboxStore::new();
        let mut left = 1_250u64;
        store
            .expect_purge_delivered()
            .withf(|before, limit| *before == t0() - chrono::Duration::days(14) && *limit == 500)
            .times(3)
            .returning(move |_, limit| {
                let n = left.min(u64::from(limit));
                left -= n;
                Ok(n)
            });
        let n = admin(store)
            .purge_delivered(Duration::from_secs(14 * 24 * 3600), PURGE_BATCH)
            .await
            .unwrap();
        assert_eq!(n, 1_250);
    }
}
