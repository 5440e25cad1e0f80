//! Paying orders from the balance. See `payment::PaymentStore` for the guarantees and
//! `order.rs` for the lock order.

use crate::order::{lock_order, pay_locked};
use crate::pool::{conn, PgPool};
use crate::tx::{finish, TxError};
use async_trait::async_trait;
use diesel_async::AsyncConnection;
use kernel::{OrderId, Timestamp};
use order::Order;
use payment::{PayOrderError, PaymentStore};

#[derive(Clone)]
pub struct PgPaymentStore {
    pool: PgPool,
}

impl PgPaymentStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[async_trait]
impl PaymentStore for PgPaymentStore {
    async fn pay(&self, id: OrderId, now: Timestamp) -> Result<Order, PayOrderError> {
        let mut conn = conn(&self.pool).await?;
        let result = conn
            .transaction::<_, TxError<PayOrderError>, _>(async move |conn| {
                let row = lock_order(conn, id)
                    .await?
                    .ok_or(TxError::Rule(PayOrderError::NotFound))?;
                pay_locked(conn, &row, now).await
            })
            .await;
        finish(result, "paying an order")
    }
}
