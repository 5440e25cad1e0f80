//! The catalogue and stock use cases, over the [`StockStore`] port.

use crate::model::*;
use crate::ports::*;
use kernel::{Clock, Page, PageRequest, ProductId};
use std::sync::Arc;

/// Why a product could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ProductError {
    #[error("no product {0}")]
    NotFound(ProductId),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

#[derive(Clone)]
pub struct StockService {
    store: Arc<dyn StockStore>,
    clock: Arc<dyn Clock>,
}

impl StockService {
    pub fn new(store: Arc<dyn StockStore>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// Adds a product to the catalogue, created now.
    pub async fn create_product(&self, product: NewProduct) -> anyhow::Result<Product> {
        self.store.create(product, self.clock.now()).await
    }

    pub async fn product(&self, id: ProductId) -> Result<Product, ProductError> {
        self.store.get(id).await?.ok_or(ProductError::NotFound(id))
    }

    /// Products in ascending id.
    pub async fn products(&self, page: PageRequest) -> anyhow::Result<Page<Product>> {
        self.store.list(page).await
    }

    /// Restock (positive) or write-off (negative); the stock never goes below zero.
    pub async fn adjust_stock(
        &self,
        id: ProductId,
        delta: StockDelta,
    ) -> Result<Product, AdjustStockError> {
        self.store.adjust(id, delta).await
    }

    /// Reserves every line or nothing. No lines: nothing to do, the store is not asked.
    pub async fn reserve(&self, lines: &[ReserveLine]) -> Result<Vec<Product>, ReserveStockError> {
        if lines.is_empty() {
            return Ok(Vec::new());
        }
        self.store.reserve(lines).await
    }

    /// Returns reserved quantities to stock. No lines: nothing to do.
    pub async fn release(&self, lines: &[ReserveLine]) -> anyhow::Result<()> {
        if lines.is_empty() {
            return Ok(());
        }
        self.store.release(lines).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{AdjustRuleError, ReserveError};
    use chrono::TimeZone;
    use kernel::{FixedClock, Money, Quantity, Timestamp};
    use mockall::predicate::eq;

    fn now() -> Timestamp {
        chrono::Utc.with_ymd_and_hms(2026, 11, 21, 9, 0, 0).unwrap()
    }

    fn clock() -> Arc<dyn Clock> {
        Arc::new(FixedClock(now()))
    }

    fn pid(v: i64) -> ProductId {
        ProductId::try_from(v).unwrap()
    }

    fn product(id: i64, stock: i64) -> Product {
        Product {
            id: pid(id),
            name: format!("product {id}"),
            price: Money::try_from(1_000).unwrap(),
            stock,
            created_at: now(),
        }
    }

    fn line(product: i64, quantity: i64) -> ReserveLine {
        ReserveLine {
            product_id: pid(product),
            quantity: Quantity::try_from(quantity).unwrap(),
        }
    }

    #[tokio::test]
    async fn a_new_product_is_stamped_with_the_clocks_now() {
        let mut store = MockStockStore::new();
        let new = NewProduct {
            name: ProductName::try_from("Keyboard".to_string()).unwrap(),
            price: Price::try_from(30_000).unwrap(),
            stock: StockLevel::try_from(5).unwrap(),
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

    #[tokio::test]
    async fn a_refused_write_off_is_reported_as_such() {
        let mut store = MockStockStore::new();
        store
            .expect_adjust()
            .withf(|id, d| *id == pid(1) && d.get() == -9)
            .times(1)
            .returning(|_, d| {
                Err(AdjustStockError::Refused(AdjustRuleError::BelowZero {
                    stock: 3,
                    delta: d.get(),
                }))
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
    }

    // Invariant: a refused reservation comes back with every product named, unchanged.
    #[tokio::test]
    async fn a_refused_reservation_names_every_short_product() {
        let mut store = MockStockStore::new();
        store
            .expect_reserve()
            .withf(|lines: &[ReserveLine]| lines == [line(1, 2), line(2, 3)])
            .times(1)
            .returning(|_| {
                Err(ReserveStockError::Refused(ReserveError::OutOfStock {
                    product_ids: vec![pid(1), pid(2)],
                }))
            });
        let svc = StockService::new(Arc::new(store), clock());
        let err = svc.reserve(&[line(1, 2), line(2, 3)]).await.unwrap_err();
        assert!(matches!(
            err,
            ReserveStockError::Refused(ReserveError::OutOfStock { product_ids })
                if product_ids == vec![pid(1), pid(2)]
        ));
    }

    #[tokio::test]
    async fn reserving_or_releasing_nothing_does_not_touch_the_store() {
        let mut store = MockStockStore::new();
        store.expect_reserve().never();
        store.expect_release().never();
        let svc = StockService::new(Arc::new(store), clock());
        assert_eq!(svc.reserve(&[]).await.unwrap(), vec![]);
        svc.release(&[]).await.unwrap();
    }

    #[tokio::test]
    async fn releases_are_passed_to_the_store_whole() {
        let mut store = MockStockStore::new();
        store
            .expect_release()
            .withf(|lines: &[ReserveLine]| lines == [line(3, 1), line(3, 2)])
            .times(1)
            .returning(|_| Ok(()));
        let svc = StockService::new(Arc::new(store), clock());
        svc.release(&[line(3, 1), line(3, 2)]).await.unwrap();
    }
}
