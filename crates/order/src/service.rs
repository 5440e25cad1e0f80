//! Order use cases.

use crate::model::*;
use crate::ports::*;
use kernel::{Clock, OrderId, Page, PageRequest, UserId};
use std::sync::Arc;
use std::time::Duration;

/// Popular products look back 1..=30 days.
pub const MAX_POPULAR_DAYS: u32 = 30;

#[derive(Clone)]
pub struct OrderService {
    store: Arc<dyn OrderStore>,
    clock: Arc<dyn Clock>,
    pending_ttl: chrono::Duration,
}

impl OrderService {
    pub fn new(store: Arc<dyn OrderStore>, clock: Arc<dyn Clock>, pending_ttl: Duration) -> Self {
        let pending_ttl =
            chrono::Duration::from_std(pending_ttl).unwrap_or(chrono::Duration::minutes(15));
        Self {
            store,
            clock,
            pending_ttl,
        }
    }

    /// Places the order; it expires `pending_ttl` after now unless paid.
    pub async fn place(&self, command: PlaceOrder) -> Result<Order, PlaceOrderError> {
        let now = self.clock.now();
        self.store
            .place(NewOrder {
                command,
                created_at: now,
                expires_at: now + self.pending_ttl,
            })
            .await
    }

    pub async fn cancel(&self, id: OrderId) -> Result<Order, CancelOrderError> {
        self.store
            .cancel(id, CancelReason::UserRequest, self.clock.now())
            .await
    }

    /// Cancels expired PENDING orders; returns how many.
    pub async fn expire_due(&self, batch: i64) -> anyhow::Result<usize> {
        Ok(self.store.expire_due(self.clock.now(), batch).await?.len())
    }

    pub async fn get(&self, id: OrderId) -> anyhow::Result<Option<Order>> {
        self.store.get(id).await
    }

    pub async fn owner(&self, id: OrderId) -> anyhow::Result<Option<UserId>> {
        self.store.owner(id).await
    }

    pub async fn list_for_user(
        &self,
        user: UserId,
        page: PageRequest,
    ) -> anyhow::Result<Page<Order>> {
        self.store.list_for_user(user, page).await
    }

    /// Best sellers of the last `days` (1..=30) days.
    pub async fn best_sellers(&self, days: u32, limit: i64) -> anyhow::Result<Vec<ProductSales>> {
        let days = days.clamp(1, MAX_POPULAR_DAYS);
        let since = self.clock.now() - chrono::Duration::days(i64::from(days));
        self.store.best_sellers(since, limit).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use kernel::{FixedClock, ProductId, Quantity, Timestamp};

    fn now() -> Timestamp {
        chrono::Utc.with_ymd_and_hms(2026, 11, 21, 9, 0, 0).unwrap()
    }

    fn clock() -> Arc<dyn Clock> {
        Arc::new(FixedClock(now()))
    }

    fn command() -> PlaceOrder {
        let line = LineRequest {
            product_id: ProductId::try_from(1).unwrap(),
            quantity: Quantity::try_from(2).unwrap(),
        };
        PlaceOrder::new(UserId::try_from(5).unwrap(), vec![line], None, false).unwrap()
    }

    #[tokio::test]
    async fn a_placed_order_expires_after_the_pending_ttl() {
        let mut store = MockOrderStore::new();
        store
            .expect_place()
            .withf(|o| {
                o.created_at == now() && o.expires_at == now() + chrono::Duration::seconds(900)
            })
            .times(1)
            .returning(|_| Err(PlaceOrderError::CouponNotFound));
        let svc = OrderService::new(Arc::new(store), clock(), Duration::from_secs(900));
        assert!(matches!(
            svc.place(command()).await,
            Err(PlaceOrderError::CouponNotFound)
        ));
    }

    #[tokio::test]
    async fn a_user_cancel_is_a_user_request() {
        let mut store = MockOrderStore::new();
        store
            .expect_cancel()
            .withf(|id, reason, at| {
                id.get() == 7 && *reason == CancelReason::UserRequest && *at == now()
            })
            .times(1)
            .returning(|_, _, _| Err(CancelOrderError::NotFound));
        let svc = OrderService::new(Arc::new(store), clock(), Duration::from_secs(900));
        assert!(matches!(
            svc.cancel(OrderId::try_from(7).unwrap()).await,
            Err(CancelOrderError::NotFound)
        ));
    }

    #[tokio::test]
    async fn expiry_sweeps_with_the_current_time_and_counts() {
        let mut store = MockOrderStore::new();
        store
            .expect_expire_due()
            .withf(|at, batch| *at == now() && *batch == 50)
            .returning(|_, _| {
                Ok(vec![
                    OrderId::try_from(1).unwrap(),
                    OrderId::try_from(2).unwrap(),
                ])
            });
        let svc = OrderService::new(Arc::new(store), clock(), Duration::from_secs(900));
        assert_eq!(svc.expire_due(50).await.unwrap(), 2);
    }

    #[tokio::test]
    async fn best_sellers_look_back_the_given_days_capped_at_30() {
        let mut store = MockOrderStore::new();
        store
            .expect_best_sellers()
            .withf(|since, limit| *since == now() - chrono::Duration::days(3) && *limit == 5)
            .times(1)
            .returning(|_, _| Ok(vec![]));
        store
            .expect_best_sellers()
            .withf(|since, _| *since == now() - chrono::Duration::days(30))
            .times(1)
            .returning(|_, _| Ok(vec![]));
        let svc = OrderService::new(Arc::new(store), clock(), Duration::from_secs(900));
        svc.best_sellers(3, 5).await.unwrap();
        svc.best_sellers(400, 5).await.unwrap();
    }
}
