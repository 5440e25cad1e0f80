//! The port of the stock domain. Adapters implement it; the service (and the order
//! flow) use it.

use crate::model::*;
use crate::rules::{AdjustRuleError, ReserveError};
use async_trait::async_trait;
use kernel::{Page, PageRequest, ProductId, Timestamp};

/// Why an admin stock change failed.
#[derive(Debug, thiserror::Error)]
pub enum AdjustStockError {
    #[error("no product {0}")]
    NotFound(ProductId),
    #[error(transparent)]
    Refused(#[from] AdjustRuleError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Why a reservation failed. On any error nothing is reserved.
#[derive(Debug, thiserror::Error)]
pub enum ReserveStockError {
    #[error(transparent)]
    Refused(#[from] ReserveError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Products and their stock.
///
/// Guarantees every implementation MUST keep, under any number of concurrent callers
/// across processes sharing the store:
/// - a product's stock never goes below zero (held by the rule *and* by the store
///   itself, e.g. a CHECK constraint plus a conditional update);
/// - the rows of a multi-product change are locked in ascending product id, so
///   concurrent reservations touching the same products in any order cannot deadlock;
/// - quantities of a product repeated in the lines are summed before checking.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait StockStore: Send + Sync {
    /// Adds a product with its initial stock, stamped `now`; returns it with its new id.
    async fn create(&self, product: NewProduct, now: Timestamp) -> anyhow::Result<Product>;

    /// The product, or `None` if there is no such product.
    async fn get(&self, id: ProductId) -> anyhow::Result<Option<Product>>;

    /// Products in ascending id; `page.after()` is the id to continue after.
    async fn list(&self, page: PageRequest) -> anyhow::Result<Page<Product>>;

    /// Restocks (positive delta) or writes off (negative delta).
    /// MUST decide with [`crate::apply_delta`] on the stock read under a row lock and
    /// MUST NOT let the stock go below zero.
    async fn adjust(&self, id: ProductId, delta: StockDelta) -> Result<Product, AdjustStockError>;

    /// Reserves every line or nothing, in one transaction.
    /// MUST lock the lines' products in ascending id, decide with
    /// [`crate::plan_reservation`] (repeated products summed; every unknown product
    /// named, before every short product), and MUST NOT let any stock go below zero.
    /// Returns the reserved products (stock after the reservation), ascending id.
    async fn reserve(&self, lines: &[ReserveLine]) -> Result<Vec<Product>, ReserveStockError>;

    /// Returns the lines' quantities to stock (a cancelled or expired reservation), in
    /// one transaction, locking in ascending id. Unknown products are ignored.
    async fn release(&self, lines: &[ReserveLine]) -> anyhow::Result<()>;
}
