//! The catalogue: [`stock::StockStore`]. A product's stock is held in slots as the
//! PostgreSQL store holds it (every slot is taken under the store's one lock, so here
//! they only keep the decisions' inputs the same).

use crate::paging::{keyset, Order};
use crate::state::{id, State};
use crate::MemoryStore;
use anyhow::anyhow;
use async_trait::async_trait;
use kernel::{Page, PageRequest, ProductId, Timestamp};
use stock::{
    initial_slots, units_in, AdjustDecision, AdjustStockError, NewProduct, Product, ProductChanges,
    SlotChange, StockStore, UpdateProductError,
};

impl State {
    /// Adds `changes` to the product's slots and keeps its `stock` their sum; refuses
    /// (changing nothing) when a slot would go below zero or does not exist.
    pub fn change_slots(
        &mut self,
        product: ProductId,
        changes: impl IntoIterator<Item = SlotChange>,
    ) -> anyhow::Result<()> {
        let slots = self
            .slots
            .get(&product)
            .ok_or_else(|| anyhow!("product {product} has no slots"))?;
        let mut after = slots.clone();
        for change in changes {
            let slot = after
                .iter_mut()
                .find(|s| s.index == change.index)
                .ok_or_else(|| anyhow!("product {product} has no slot {}", change.index))?;
            slot.units = slot
                .units
                .checked_add(change.delta)
                .filter(|units| *units >= 0)
                .ok_or_else(|| anyhow!("slot {} of product {product} below zero", slot.index))?;
        }
        if let Some(p) = self.products.get_mut(&product) {
            p.stock = units_in(&after);
        }
        self.slots.insert(product, after);
        Ok(())
    }
}

#[async_trait]
impl StockStore for MemoryStore {
    async fn create(&self, product: NewProduct, now: Timestamp) -> anyhow::Result<Product> {
        let mut db = self.db();
        let slots = initial_slots(product.stock.get());
        let product = Product {
            id: id(db.seq.product()),
            name: product.name.into_inner(),
            price: product.price.money(),
            stock: units_in(&slots),
            max_per_user: product.max_per_user,
            created_at: now,
            updated_at: now,
        };
        db.slots.insert(product.id, slots);
        db.products.insert(product.id, product.clone());
        Ok(product)
    }

    async fn get(&self, id: ProductId) -> anyhow::Result<Option<Product>> {
        Ok(self.db().products.get(&id).cloned())
    }

    async fn list(&self, page: PageRequest) -> anyhow::Result<Page<Product>> {
        let db = self.db();
        Ok(keyset(
            db.products.values().cloned(),
            page,
            Order::Ascending,
            |p| p.id.get(),
        ))
    }

    async fn update(
        &self,
        id: ProductId,
        changes: ProductChanges,
        now: Timestamp,
    ) -> Result<Product, UpdateProductError> {
        let mut db = self.db();
        let product = db
            .products
            .get_mut(&id)
            .ok_or(UpdateProductError::NotFound(id))?;
        if changes == ProductChanges::default() {
            return Ok(product.clone());
        }
        if let Some(name) = changes.name {
            product.name = name.into_inner();
        }
        if let Some(price) = changes.price {
            product.price = price.money();
        }
        if let Some(limit) = changes.max_per_user {
            product.max_per_user = limit;
        }
        product.updated_at = now;
        Ok(product.clone())
    }

    async fn adjust(
        &self,
        id: ProductId,
        decide: AdjustDecision,
        now: Timestamp,
    ) -> Result<Product, AdjustStockError> {
        let mut db = self.db();
        let slots = db
            .slots
            .get(&id)
            .cloned()
            .ok_or(AdjustStockError::NotFound(id))?;
        let changes = decide(&slots)?;
        db.change_slots(id, changes)?;
        let product = db
            .products
            .get_mut(&id)
            .ok_or(AdjustStockError::NotFound(id))?;
        product.updated_at = now;
        Ok(product.clone())
    }
}
