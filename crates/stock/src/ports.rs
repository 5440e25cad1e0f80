//! The port of the stock domain. Adapters implement it; the service uses it. (Orders
//! take and give back stock inside their own use cases: see `order::OrderStore`.)

use crate::model::*;
use crate::rules::AdjustRuleError;
use async_trait::async_trait;
use kernel::{Page, PageRequest, ProductId, Timestamp};

/// Why an admin stock change failed. Nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum AdjustStockError {
    /// No such product.
    #[error("no product {0}")]
    /// No such product.
    NotFound(ProductId),
    /// The rule refused (below zero, above the maximum).
    #[error(transparent)]
    /// The change would take the stock below zero or past the maximum.
    Refused(#[from] AdjustRuleError),
    /// The store failed.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Why a product could not be changed. Nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum UpdateProductError {
    /// No such product.
    #[error("no product {0}")]
    NotFound(ProductId),
    /// The store failed.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// The decision a store calls for an admin stock change, with every slot of the
/// product held (normally [`crate::plan_adjust`] with the delta).
pub type AdjustDecision =
    Box<dyn FnOnce(&[Slot]) -> Result<Vec<SlotChange>, AdjustRuleError> + Send>;

/// Products and their stock, held in [`SLOTS`] slots per product.
///
/// Orders take and give back stock through the order store (`order::OrderStore`: the
/// stock changes of an order's plan, decided with [`crate::take_from_slots`]); this
/// port is the catalogue and the admins' changes.
///
/// Guarantees every implementation MUST keep, under any number of concurrent callers
/// across processes sharing the store:
/// - no slot, so no product's stock, ever goes below zero (a slot may pass
///   [`MAX_STOCK`] only by units given back);
/// - a product's `stock` is the exact sum of its slots, whatever runs concurrently;
/// - an admin change holds every slot of the product (so it never races a buyer's
///   units) and applies all of the decision or nothing.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait StockStore: Send + Sync {
    /// Adds a product, its stock spread over its slots by [`crate::initial_slots`],
    /// stamped `now`; returns it with its new id.
    async fn create(&self, product: NewProduct, now: Timestamp) -> anyhow::Result<Product>;

    /// The product, or `None` if there is no such product.
    async fn get(&self, id: ProductId) -> anyhow::Result<Option<Product>>;

    /// Products in ascending id; `page.after()` is the id to continue after.
    async fn list(&self, page: PageRequest) -> anyhow::Result<Page<Product>>;

    /// Changes name, price and limit as given, stamped `now` (nothing given: changes
    /// nothing, not even `updated_at`).
    async fn update(
        &self,
        id: ProductId,
        changes: ProductChanges,
        now: Timestamp,
    ) -> Result<Product, UpdateProductError>;

    /// Restocks or writes off: MUST hold every slot of the product (ascending index),
    /// call `decide` with them, and write its changes (stamped `now`), all or nothing.
    async fn adjust(
        &self,
        id: ProductId,
        decide: AdjustDecision,
        now: Timestamp,
    ) -> Result<Product, AdjustStockError>;
}
