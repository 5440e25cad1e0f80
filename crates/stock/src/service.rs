//! The catalogue and stock use cases, over the [`StockStore`] port.

use crate::model::*;
use crate::ports::*;
use kernel::{Clock, Page, PageRequest, ProductId};
use std::sync::Arc;

/// Why a product could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ProductError {
    /// No such product.
    #[error("no product {0}")]
    NotFound(ProductId),
    /// The store failed.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// The catalogue: adding products, reading them, and admins' stock changes. (Orders
/// take and give back stock through the order store, in the order's own transaction.)
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use kernel::SystemClock;
/// use std::sync::Arc;
/// use stock::{NewProduct, Price, ProductName, StockDelta, StockLevel, StockService};
///
/// let catalogue = StockService::new(
///     Arc::new(memory_adapter::MemoryStore::new()),
///     Arc::new(SystemClock),
/// );
/// let tea = catalogue
///     .create_product(NewProduct {
///         name: ProductName::try_from("Green tea".to_string()).unwrap(),
///         price: Price::try_from(4_500).unwrap(),
///         stock: StockLevel::try_from(3).unwrap(),
///         max_per_user: None,
///     })
///     .await
///     .unwrap();
/// // a write-off never takes the stock below zero
/// let refused = catalogue.adjust_stock(tea.id, StockDelta::try_from(-5).unwrap()).await;
/// assert!(matches!(refused, Err(stock::AdjustStockError::Refused(_))));
/// let restocked = catalogue.adjust_stock(tea.id, StockDelta::try_from(7).unwrap()).await;
/// assert_eq!(restocked.unwrap().stock, 10);
/// # }
/// ```
#[derive(Clone)]
pub struct StockService {
    store: Arc<dyn StockStore>,
    clock: Arc<dyn Clock>,
}

impl StockService {
    /// The use cases over `store`, stamping new products with `clock`'s now.
    pub fn new(store: Arc<dyn StockStore>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// Adds a product to the catalogue, created now.
    pub async fn create_product(&self, product: NewProduct) -> anyhow::Result<Product> {
        self.store.create(product, self.clock.now()).await
    }

    /// The product, or `NotFound`.
    pub async fn product(&self, id: ProductId) -> Result<Product, ProductError> {
        self.store.get(id).await?.ok_or(ProductError::NotFound(id))
    }

    /// Products in ascending id.
    pub async fn products(&self, page: PageRequest) -> anyhow::Result<Page<Product>> {
        self.store.list(page).await
    }

    /// Restock (positive) or write-off (negative) over the product's slots
    /// ([`crate::plan_adjust`]); the stock never goes below zero, a restock never takes
    /// it past [`MAX_STOCK`].
    pub async fn adjust_stock(
        &self,
        id: ProductId,
        delta: StockDelta,
    ) -> Result<Product, AdjustStockError> {
        self.store
            .adjust(
                id,
                Box::new(move |slots| crate::plan_adjust(slots, delta)),
                self.clock.now(),
            )
            .await
    }

    /// Changes a product's name, price or limit (placed orders keep their prices).
    pub async fn update_product(
        &self,
        id: ProductId,
        changes: ProductChanges,
    ) -> Result<Product, UpdateProductError> {
        self.store.update(id, changes, self.clock.now()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::AdjustRuleError;
    use kernel::testing::{fixed_clock as clock, pid, t0 as now};
    use kernel::Money;
    use mockall::predicate::eq;

    fn product(id: i64, stock: i64) -> Product {
        Product {
            id: pid(id),
            name: format!("product {id}"),
            price: Money::try_from(1_000).unwrap(),
            stock,
            max_per_user: None,
            created_at: now(),
            updated_at: now(),
        }
    }

    #[tokio::test]
    async fn a_new_product_is_stamped_with_the_clocks_now() {
        let mut store = MockStockStore::new();
        let new = NewProduct {
            name: ProductName::try_from("Keyboard".to_string()).unwrap(),
            price: Price::try_from(30_000).unwrap(),
            stock: StockLevel::try_from(5).unwrap(),
            max_per_user: None,
        };
        store
            .expect_create()
            .with(eq(new.clone()), eq(now()))
            .times(1)
            .returning(|_, _| Ok(product(1, 5)));
        let svc = StockService::new(Arc::new(store), clock());
        assert_eq!(svc.create_product(new).await.unwrap(), product(1, 5));
    }

    #[tokio::test]
    async fn a_missing_product_is_not_found() {
        let mut store = MockStockStore::new();
        store.expect_get().with(eq(pid(4))).returning(|_| Ok(None));
        store
            .expect_get()
            .with(eq(pid(5)))
            .returning(|_| Ok(Some(product(5, 1))));
        let svc = StockService::new(Arc::new(store), clock());
        assert!(matches!(
            svc.product(pid(4)).await,
            Err(ProductError::NotFound(id)) if id == pid(4)
        ));
        assert_eq!(svc.product(pid(5)).await.unwrap(), product(5, 1));
    }

    // The service hands the store the adjust rule for THIS delta: a fake store feeds it
    // the slots and sees the refusal or the slot changes.
    #[tokio::test]
    async fn a_write_off_is_decided_on_the_sum_of_the_slots() {
        let mut store = MockStockStore::new();
        store
            .expect_adjust()
            .withf(|id, _, at| *id == pid(1) && *at == now())
            .times(2)
            .returning(|_, decide, _| {
                let slots = [Slot { index: 0, units: 2 }, Slot { index: 1, units: 1 }];
                decide(&slots)?;
                Ok(product(1, 0))
            });
        let svc = StockService::new(Arc::new(store), clock());
        let err = svc
            .adjust_stock(pid(1), StockDelta::try_from(-9).unwrap())
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            AdjustStockError::Refused(AdjustRuleError::BelowZero {
                stock: 3,
                delta: -9
            })
        ));
        assert!(svc
            .adjust_stock(pid(1), StockDelta::try_from(-3).unwrap())
            .await
            .is_ok());
    }

    #[tokio::test]
    async fn changes_are_stamped_with_the_clocks_now() {
        let mut store = MockStockStore::new();
        store
            .expect_update()
            .withf(|id, c, at| *id == pid(2) && c.price.is_some() && *at == now())
            .times(1)
            .returning(|_, _, _| Ok(product(2, 0)));
        let svc = StockService::new(Arc::new(store), clock());
        let changes = ProductChanges {
            price: Some(Price::try_from(5).unwrap()),
            ..ProductChanges::default()
        };
        svc.update_product(pid(2), changes).await.unwrap();
    }
}
