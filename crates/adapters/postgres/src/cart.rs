//! Carts. See `order::cart::CartStore` for the guarantees.
//!
//! A cart row holds a product id and a quantity only; names and prices are joined from
//! `products` on every read, so a cart always shows current prices. An unknown product
//! is refused by the foreign key, mapped to `ProductNotFound` here. Paying an order
//! drops the paid products from the cart as an effect of the order's plan (`order.rs`).

use crate::pool::{conn, PgPool};
use crate::schema::cart::cart_items;
use crate::schema::stock::products;
use crate::tx::TxError;
use anyhow::{anyhow, Context};
use async_trait::async_trait;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::upsert::excluded;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use kernel::{Money, ProductId, Timestamp, UserId};
use order::cart::{CartLine, CartQuantity, CartStore, SetCartItemError};

#[derive(Clone)]
pub struct PgCartStore {
    pool: PgPool,
}

impl PgCartStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

/// The user's lines with current names and prices, ascending product id.
async fn lines_of(conn: &mut AsyncPgConnection, user: UserId) -> QueryResult<Vec<CartLine>> {
    let rows: Vec<(i64, String, i64, i32)> = cart_items::table
        .inner_join(products::table)
        .filter(cart_items::user_id.eq(user.get()))
        .order(cart_items::product_id.asc())
        .select((
            cart_items::product_id,
            products::name,
            products::price,
            cart_items::quantity,
        ))
        .load(conn)
        .await?;
    rows.into_iter()
        .map(|(product_id, name, price, quantity)| {
            let bad = |what: &str, e: String| {
                DieselError::DeserializationError(
                    format!("invalid {what} in a cart row: {e}").into(),
                )
            };
            Ok(CartLine {
                product_id: ProductId::try_from(product_id)
                    .map_err(|e| bad("product id", e.to_string()))?,
                name,
                price: Money::try_from(price).map_err(|e| bad("price", e.to_string()))?,
                quantity: CartQuantity::try_from(i64::from(quantity))
                    .map_err(|e| bad("quantity", e.to_string()))?,
            })
        })
        .collect()
}

#[async_trait]
impl CartStore for PgCartStore {
    async fn lines(&self, user: UserId) -> anyhow::Result<Vec<CartLine>> {
        let mut conn = conn(&self.pool).await?;
        lines_of(&mut conn, user).await.context("reading a cart")
    }

    async fn set_quantity(
        &self,
        user: UserId,
        product: ProductId,
        quantity: CartQuantity,
        now: Timestamp,
    ) -> Result<Vec<CartLine>, SetCartItemError> {
        let mut conn = conn(&self.pool).await?;
        let q = i32::try_from(quantity.get()).map_err(|e| anyhow!(e))?;
        conn.transaction::<_, TxError<()>, _>(async move |conn| {
            let upsert = diesel::insert_into(cart_items::table)
                .values((
                    cart_items::user_id.eq(user.get()),
                    cart_items::product_id.eq(product.get()),
                    cart_items::quantity.eq(q),
                    cart_items::created_at.eq(now),
                    cart_items::updated_at.eq(now),
                ))
                .on_conflict((cart_items::user_id, cart_items::product_id))
                .do_update()
                .set((
                    cart_items::quantity.eq(excluded(cart_items::quantity)),
                    cart_items::updated_at.eq(excluded(cart_items::updated_at)),
                ))
                .execute(conn)
                .await;
            match upsert {
                Err(DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _)) => {
                    return Err(TxError::Rule(()))
                }
                other => other?,
            };
            Ok(lines_of(conn, user).await?)
        })
        .await
        .map_err(|e| match e {
            TxError::Rule(()) => SetCartItemError::ProductNotFound(product),
            TxError::Db(e) => {
                SetCartItemError::Unexpected(anyhow!(e).context("putting an item in a cart"))
            }
        })
    }

    async fn remove(&self, user: UserId, product: ProductId) -> anyhow::Result<()> {
        let mut conn = conn(&self.pool).await?;
        diesel::delete(cart_items::table.find((user.get(), product.get())))
            .execute(&mut conn)
            .await
            .context("removing an item from a cart")?;
        Ok(())
    }
}
