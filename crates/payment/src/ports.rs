use async_trait::async_trait;
use kernel::{Money, OrderId, Timestamp};
use order::{Order, OrderStatus};

#[derive(Debug, thiserror::Error)]
pub enum PayOrderError {
    #[error("no such order")]
    NotFound,
    #[error("a {} order cannot be paid", .0.as_str())]
    InvalidState(OrderStatus),
    #[error("the order expired")]
    Expired,
    #[error("the balance {balance} does not cover {required}")]
    InsufficientBalance { balance: Money, required: Money },
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Persistence of payments.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait PaymentStore: Send + Sync {
    /// Pays a PENDING order from the user's balance, in one transaction: locks the order,
    /// checks it with `order::rules::check_payable`, locks the balance and debits the total
    /// with [`crate::pay_from_balance`] (history PAYMENT with the order id), records the
    /// payment, marks the order PAID, drops the ordered products from the user's cart,
    /// and queues an `order.paid` event. Without enough balance nothing changes.
    /// MUST debit at most once per order, whatever the number of concurrent calls.
    async fn pay(&self, order: OrderId, now: Timestamp) -> Result<Order, PayOrderError>;
}
