//! Products and their stock. See `stock::StockStore` for the guarantees; the SQL that
//! keeps them is here.
//!
//! A product's stock lives in `stock_slots` (ADR 0009): `stock` of the API is the sum
//! of its slots, read with the product. Buyers take units from slots inside their order
//! transaction (`order.rs`, through `take_stock_slots`); an admin restock or write-off
//! here holds every slot of the product in slot order, asks the domain's decision
//! ([`stock::plan_adjust`]) and writes its slot changes, all in one transaction. No slot
//! goes below zero: the decision, a guarded UPDATE and `CHECK (units >= 0)`.

use crate::pool::{conn, PgPool};
use crate::sql::{sql, Bind, Statement};
use crate::tx::valid;
use anyhow::{anyhow, Context};
use async_trait::async_trait;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, SmallInt, Text, Timestamptz};
use diesel_async::{AsyncConnection, RunQueryDsl};
use kernel::{Money, Page, PageRequest, ProductId, Timestamp};
use stock::{
    initial_slots, AdjustDecision, AdjustStockError, NewProduct, Product, ProductChanges,
    PurchaseLimit, Slot, StockStore, UpdateProductError,
};

/// The PostgreSQL product and stock store.
#[derive(Clone)]
pub struct PgStockStore {
    pool: PgPool,
}

impl PgStockStore {
    /// A store over `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

/// The columns of a product with its stock, the sum of its slots (`p` is the row).
macro_rules! product_columns {
    () => {
        "p.id, p.name, p.price, p.max_per_user, p.created_at, p.updated_at,
       (SELECT coalesce(sum(s.units), 0) FROM stock_slots s WHERE s.product_id = p.id)::int8 AS stock"
    };
}

#[derive(QueryableByName)]
pub(crate) struct ProductRow {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = BigInt)]
    pub price: i64,
    #[diesel(sql_type = Nullable<diesel::sql_types::Integer>)]
    pub max_per_user: Option<i32>,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: Timestamp,
    #[diesel(sql_type = Timestamptz)]
    pub updated_at: Timestamp,
    #[diesel(sql_type = BigInt)]
    pub stock: i64,
}

/// A purchase limit as stored (NULL: none).
pub(crate) fn limit(v: Option<i32>) -> anyhow::Result<Option<PurchaseLimit>> {
    v.map(|l| valid(PurchaseLimit::try_from(i64::from(l)), "max_per_user"))
        .transpose()
}

impl ProductRow {
    pub(crate) fn into_product(self) -> anyhow::Result<Product> {
        Ok(Product {
            id: valid(ProductId::try_from(self.id), "product id")?,
            price: valid(Money::try_from(self.price), "price")?,
            stock: self.stock,
            max_per_user: limit(self.max_per_user)?,
            name: self.name,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

sql!(
    /// A new product and its slots, in one statement.
    CreateProduct,
    "WITH p AS (
    INSERT INTO products (name, price, max_per_user, created_at, updated_at)
    VALUES ($name, $price, $max_per_user, $now, $now)
 RETURNING *
), s AS (
    INSERT INTO stock_slots (product_id, slot, units)
    SELECT p.id, v.slot, v.units FROM p, unnest($slots::int2[], $units::int8[]) AS v(slot, units)
 RETURNING units
)
SELECT p.id, p.name, p.price, p.max_per_user, p.created_at, p.updated_at,
       (SELECT coalesce(sum(units), 0) FROM s)::int8 AS stock
  FROM p"
);

sql!(
    /// One product with its stock.
    GetProduct,
    concat!("SELECT ", product_columns!(), " FROM products p WHERE p.id = $id")
);

sql!(
    /// A page of products, ascending id.
    ListProducts,
    concat!(
        "SELECT ",
        product_columns!(),
        " FROM products p WHERE p.id > $after ORDER BY p.id LIMIT $limit"
    )
);

sql!(
    /// A PATCH: each given field set (`$set_*` says which), `updated_at` stamped.
    UpdateProduct,
    concat!(
        "WITH p AS (
    UPDATE products
       SET name = CASE WHEN $set_name THEN $name ELSE name END,
           price = CASE WHEN $set_price THEN $price ELSE price END,
           max_per_user = CASE WHEN $set_limit THEN $max_per_user ELSE max_per_user END,
           updated_at = $now
     WHERE id = $id
 RETURNING *
)
SELECT ",
        product_columns!(),
        " FROM p"
    )
);

sql!(
    /// Every slot of a product, held in slot order (an admin change).
    LockAllSlots,
    "SELECT slot, units FROM stock_slots WHERE product_id = $id ORDER BY slot FOR NO KEY UPDATE"
);

sql!(
    /// An admin change's slot changes (guarded: no slot below zero) and `updated_at`.
    /// (The product is read back by [`GetProduct`] after it: a statement does not see
    /// its own CTEs' writes, and the sum of the slots is wanted after them.)
    AdjustSlots,
    "WITH s AS (
    UPDATE stock_slots AS s SET units = s.units + v.delta
      FROM unnest($slots::int2[], $deltas::int8[]) AS v(slot, delta)
     WHERE s.product_id = $id AND s.slot = v.slot AND s.units + v.delta >= 0
 RETURNING 1
), p AS (
    UPDATE products SET updated_at = $now WHERE id = $id RETURNING id
)
SELECT (SELECT count(*) FROM s) AS changed FROM p"
);

#[derive(QueryableByName)]
struct SlotRow {
    #[diesel(sql_type = SmallInt)]
    slot: i16,
    #[diesel(sql_type = BigInt)]
    units: i64,
}

#[derive(QueryableByName)]
struct Adjusted {
    #[diesel(sql_type = BigInt)]
    changed: i64,
}

enum Abort {
    Refused(AdjustStockError),
    Failed(anyhow::Error),
}

impl From<diesel::result::Error> for Abort {
    fn from(e: diesel::result::Error) -> Self {
        Abort::Failed(e.into())
    }
}

#[async_trait]
impl StockStore for PgStockStore {
    async fn create(&self, product: NewProduct, now: Timestamp) -> anyhow::Result<Product> {
        let mut conn = conn(&self.pool).await?;
        let slots = initial_slots(product.stock.get());
        let row: ProductRow = Statement::<CreateProduct>::new()
            .bind("name", Bind::Text(product.name.as_str().into()))
            .bind("price", Bind::I64(product.price.money().won()))
            .bind(
                "max_per_user",
                Bind::OptI32(product.max_per_user.map(|l| l.get() as i32)),
            )
            .bind("now", Bind::Ts(now))
            .bind(
                "slots",
                Bind::I32s(slots.iter().map(|s| i32::from(s.index)).collect()),
            )
            .bind("units", Bind::I64s(slots.iter().map(|s| s.units).collect()))
            .get_result(&mut conn)
            .await
            .context("creating a product")?;
        row.into_product()
    }

    async fn get(&self, id: ProductId) -> anyhow::Result<Option<Product>> {
        let mut conn = conn(&self.pool).await?;
        let row: Option<ProductRow> = Statement::<GetProduct>::new()
            .bind("id", Bind::I64(id.get()))
            .get_result(&mut conn)
            .await
            .optional()
            .context("reading a product")?;
        row.map(ProductRow::into_product).transpose()
    }

    async fn list(&self, page: PageRequest) -> anyhow::Result<Page<Product>> {
        let mut conn = conn(&self.pool).await?;
        let rows: Vec<ProductRow> = Statement::<ListProducts>::new()
            .bind("after", Bind::I64(page.after().unwrap_or(0)))
            .bind("limit", Bind::I64(page.fetch_limit()))
            .load(&mut conn)
            .await
            .context("listing products")?;
        let items = rows
            .into_iter()
            .map(ProductRow::into_product)
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(page.page(items, |p| p.id.get()))
    }

    async fn update(
        &self,
        id: ProductId,
        changes: ProductChanges,
        now: Timestamp,
    ) -> Result<Product, UpdateProductError> {
        let nothing =
            changes.name.is_none() && changes.price.is_none() && changes.max_per_user.is_none();
        if nothing {
            return self.get(id).await?.ok_or(UpdateProductError::NotFound(id));
        }
        let mut conn = conn(&self.pool).await?;
        let row: Option<ProductRow> = Statement::<UpdateProduct>::new()
            .bind("id", Bind::I64(id.get()))
            .bind("set_name", Bind::Bool(changes.name.is_some()))
            .bind(
                "name",
                Bind::OptText(changes.name.map(|n| n.as_str().to_string())),
            )
            .bind("set_price", Bind::Bool(changes.price.is_some()))
            .bind(
                "price",
                Bind::OptI64(changes.price.map(|p| p.money().won())),
            )
            .bind("set_limit", Bind::Bool(changes.max_per_user.is_some()))
            .bind(
                "max_per_user",
                Bind::OptI32(changes.max_per_user.flatten().map(|l| l.get() as i32)),
            )
            .bind("now", Bind::Ts(now))
            .get_result(&mut conn)
            .await
            .optional()
            .context("changing a product")?;
        row.map(ProductRow::into_product)
            .transpose()?
            .ok_or(UpdateProductError::NotFound(id))
    }

    async fn adjust(
        &self,
        id: ProductId,
        decide: AdjustDecision,
        now: Timestamp,
    ) -> Result<Product, AdjustStockError> {
        let mut conn = conn(&self.pool).await?;
        let result = conn
            .transaction::<_, Abort, _>(async move |conn| {
                let held: Vec<SlotRow> = Statement::<LockAllSlots>::new()
                    .bind("id", Bind::I64(id.get()))
                    .load(conn)
                    .await?;
                if held.is_empty() {
                    return Err(Abort::Refused(AdjustStockError::NotFound(id)));
                }
                let slots: Vec<Slot> = held
                    .iter()
                    .map(|s| Slot {
                        index: s.slot,
                        units: s.units,
                    })
                    .collect();
                let changes =
                    decide(&slots).map_err(|e| Abort::Refused(AdjustStockError::Refused(e)))?;
                let adjusted: Adjusted = Statement::<AdjustSlots>::new()
                    .bind("id", Bind::I64(id.get()))
                    .bind(
                        "slots",
                        Bind::I32s(changes.iter().map(|c| i32::from(c.index)).collect()),
                    )
                    .bind(
                        "deltas",
                        Bind::I64s(changes.iter().map(|c| c.delta).collect()),
                    )
                    .bind("now", Bind::Ts(now))
                    .get_result(conn)
                    .await?;
                if adjusted.changed != changes.len() as i64 {
                    return Err(Abort::Failed(anyhow!(
                        "product {id}: the slots no longer fit the decision"
                    )));
                }
                let product: ProductRow = Statement::<GetProduct>::new()
                    .bind("id", Bind::I64(id.get()))
                    .get_result(conn)
                    .await?;
                product.into_product().map_err(Abort::Failed)
            })
            .await;
        result.map_err(|e| match e {
            Abort::Refused(e) => e,
            Abort::Failed(e) => AdjustStockError::Unexpected(e.context("adjusting stock")),
        })
    }
}
