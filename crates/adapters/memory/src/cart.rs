//! Carts: [`order::cart::CartStore`].

use crate::state::State;
use crate::MemoryStore;
use async_trait::async_trait;
use kernel::{ProductId, Timestamp, UserId};
use order::cart::{CartLine, CartQuantity, CartStore, SetCartItemError};

impl State {
    /// The user's lines with each product's current name and price, ascending product id.
    pub fn cart_lines(&self, user: UserId) -> Vec<CartLine> {
        self.carts
            .iter()
            .filter(|((owner, _), _)| *owner == user)
            .filter_map(|((_, product_id), quantity)| {
                let product = self.products.get(product_id)?;
                Some(CartLine {
                    product_id: *product_id,
                    name: product.name.clone(),
                    price: product.price,
                    quantity: *quantity,
                })
            })
            .collect()
    }
}

#[async_trait]
impl CartStore for MemoryStore {
    async fn lines(&self, user: UserId) -> anyhow::Result<Vec<CartLine>> {
        Ok(self.db().cart_lines(user))
    }

    async fn set_quantity(
        &self,
        user: UserId,
        product: ProductId,
        quantity: CartQuantity,
        _now: Timestamp,
    ) -> Result<Vec<CartLine>, SetCartItemError> {
        let mut db = self.db();
        if !db.products.contains_key(&product) {
            return Err(SetCartItemError::ProductNotFound(product));
        }
        db.carts.insert((user, product), quantity);
        Ok(db.cart_lines(user))
    }

    async fn remove(&self, user: UserId, product: ProductId) -> anyhow::Result<()> {
        self.db().carts.remove(&(user, product));
        Ok(())
    }
}
