use crate::ports::*;
use kernel::{Clock, OrderId};
use order::Order;
use std::sync::Arc;

#[derive(Clone)]
pub struct PaymentService {
    store: Arc<dyn PaymentStore>,
    clock: Arc<dyn Clock>,
}

impl PaymentService {
    pub fn new(store: Arc<dyn PaymentStore>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// Pays the order now from its user's balance.
    pub async fn pay(&self, order: OrderId) -> Result<Order, PayOrderError> {
        self.store.pay(order, self.clock.now()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use kernel::{MockClock, Money};

    #[tokio::test]
    async fn paying_uses_the_clock_and_passes_refusals_through() {
        let at = chrono::Utc.with_ymd_and_hms(2026, 11, 21, 9, 0, 0).unwrap();
        let mut clock = MockClock::new();
        clock.expect_now().returning(move || at);
        let mut store = MockPaymentStore::new();
        store
            .expect_pay()
            .withf(move |id, now| id.get() == 3 && *now == at)
            .times(1)
            .returning(|_, _| {
                Err(PayOrderError::InsufficientBalance {
                    balance: Money::try_from(1).unwrap(),
                    required: Money::try_from(2).unwrap(),
                })
            });
        let svc = PaymentService::new(Arc::new(store), Arc::new(clock));
        let err = svc.pay(OrderId::try_from(3).unwrap()).await.unwrap_err();
        assert!(matches!(err, PayOrderError::InsufficientBalance { .. }));
    }
}
