//! Products and their stock. See `stock::StockStore` for the guarantees; the SQL that
//! keeps them is here.
//!
//! Stock never goes below zero three times over: the pure rule decides on rows held
//! locked, every decrement is a conditional UPDATE (`... WHERE stock >= qty`), and the
//! table has `CHECK (stock >= 0)`. Rows of a multi-product change are locked with
//! `SELECT ... WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE`, always ascending id, so
//! concurrent reservations of the same products in any order cannot deadlock.
//!
//! [`reserve_in_tx`] and [`release_in_tx`] run inside the caller's transaction so the
//! order adapter can compose them with its own writes.

use crate::pool::{conn, PgPool};
use crate::schema::stock::products;
use crate::tx::TxError;
use anyhow::{anyhow, Context};
use async_trait::async_trait;
use diesel::prelude::*;
use diesel::sql_types::{Array, Int8};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use kernel::{Money, Page, PageRequest, ProductId, Timestamp};
use std::collections::BTreeMap;
use stock::{
    apply_delta, merge_lines, plan_reservation, AdjustRuleError, AdjustStockError, Available,
    NewProduct, Product, ReserveError, ReserveLine, ReserveStockError, StockDelta, StockStore,
};

#[derive(Clone)]
pub struct PgStockStore {
    pool: PgPool,
}

impl PgStockStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = products, check_for_backend(diesel::pg::Pg))]
struct ProductRow {
    id: i64,
    name: String,
    price: i64,
    stock: i64,
    created_at: Timestamp,
}

/// A row the schema guarantees valid; a failure means the database holds what it must not.
fn to_product(r: ProductRow) -> QueryResult<Product> {
    let bad = |what: &str, e: String| {
        diesel::result::Error::DeserializationError(
            format!("invalid {what} in products row {}: {e}", r.id).into(),
        )
    };
    Ok(Product {
        id: ProductId::try_from(r.id).map_err(|e| bad("id", e.to_string()))?,
        price: Money::try_from(r.price).map_err(|e| bad("price", e.to_string()))?,
        stock: r.stock,
        name: r.name,
        created_at: r.created_at,
    })
}

#[derive(QueryableByName)]
struct IdStock {
    #[diesel(sql_type = Int8)]
    id: i64,
    #[diesel(sql_type = Int8)]
    stock: i64,
}

/// Locks the rows of `ids` (ascending id, as the ORDER BY below the row lock makes it)
/// and reads them. Missing products are simply absent.
async fn lock_products(conn: &mut AsyncPgConnection, ids: &[i64]) -> QueryResult<Vec<ProductRow>> {
    products::table
        .filter(products::id.eq_any(ids))
        .order(products::id.asc())
        .for_no_key_update()
        .select(ProductRow::as_select())
        .load(conn)
        .await
}

/// Reserves every line or nothing, inside the caller's transaction.
///
/// Locks every product of `lines` in ascending id order, decides with
/// [`stock::plan_reservation`] (repeated products summed; `NotFound` naming every
/// unknown product before `OutOfStock` naming every short one), then applies one
/// batched, guarded UPDATE. Returns the products as read, with their stock after the
/// reservation, ascending id. On `Err` the caller MUST roll back (a refusal writes
/// nothing, but the locks are held until the transaction ends).
pub(crate) async fn reserve_in_tx(
    conn: &mut AsyncPgConnection,
    lines: &[ReserveLine],
) -> Result<Vec<Product>, TxError<ReserveError>> {
    if lines.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = merge_lines(lines)
        .into_iter()
        .map(|(id, _)| id.get())
        .collect();
    let rows = lock_products(conn, &ids).await?;
    let available: Vec<Available> = rows
        .iter()
        .filter_map(|r| {
            ProductId::try_from(r.id).ok().map(|product_id| Available {
                product_id,
                stock: r.stock,
            })
        })
        .collect();
    let plan = plan_reservation(lines, &available).map_err(TxError::Rule)?;

    let plan_ids: Vec<i64> = plan.iter().map(|r| r.product_id.get()).collect();
    let quantities: Vec<i64> = plan.iter().map(|r| r.quantity).collect();
    let updated: Vec<IdStock> = diesel::sql_query(
        "UPDATE products AS p \
         SET stock = p.stock - v.qty, updated_at = now() \
         FROM unnest($1::int8[], $2::int8[]) AS v(id, qty) \
         WHERE p.id = v.id AND p.stock >= v.qty \
         RETURNING p.id, p.stock",
    )
    .bind::<Array<Int8>, _>(&plan_ids)
    .bind::<Array<Int8>, _>(&quantities)
    .load(conn)
    .await?;
    let after: BTreeMap<i64, i64> = updated.into_iter().map(|u| (u.id, u.stock)).collect();
    // The rows are locked, so the guard can only refuse what the rule allowed if the
    // two disagree; the guard wins and the whole reservation is refused.
    let refused: Vec<ProductId> = plan
        .iter()
        .filter(|r| !after.contains_key(&r.product_id.get()))
        .map(|r| r.product_id)
        .collect();
    if !refused.is_empty() {
        return Err(TxError::Rule(ReserveError::OutOfStock {
            product_ids: refused,
        }));
    }
    rows.into_iter()
        .map(|mut row| {
            row.stock = after[&row.id];
            to_product(row)
        })
        .collect::<QueryResult<Vec<_>>>()
        .map_err(TxError::Db)
}

/// Returns the lines' quantities to stock, inside the caller's transaction: locks the
/// products in ascending id order, then one batched UPDATE (repeated products summed).
/// Lines of products that do not exist are ignored.
pub(crate) async fn release_in_tx(
    conn: &mut AsyncPgConnection,
    lines: &[ReserveLine],
) -> QueryResult<()> {
    if lines.is_empty() {
        return Ok(());
    }
    let merged = merge_lines(lines);
    let ids: Vec<i64> = merged.iter().map(|(id, _)| id.get()).collect();
    let quantities: Vec<i64> = merged.iter().map(|(_, q)| *q).collect();
    products::table
        .filter(products::id.eq_any(&ids))
        .order(products::id.asc())
        .for_no_key_update()
        .select(products::id)
        .load::<i64>(conn)
        .await?;
    diesel::sql_query(
        "UPDATE products AS p \
         SET stock = p.stock + v.qty, updated_at = now() \
         FROM unnest($1::int8[], $2::int8[]) AS v(id, qty) \
         WHERE p.id = v.id",
    )
    .bind::<Array<Int8>, _>(&ids)
    .bind::<Array<Int8>, _>(&quantities)
    .execute(conn)
    .await?;
    Ok(())
}

#[async_trait]
impl StockStore for PgStockStore {
    async fn create(&self, product: NewProduct, now: Timestamp) -> anyhow::Result<Product> {
        let mut conn = conn(&self.pool).await?;
        let row: ProductRow = diesel::insert_into(products::table)
            .values((
                products::name.eq(product.name.as_str()),
                products::price.eq(product.price.money().won()),
                products::stock.eq(product.stock.get()),
                products::created_at.eq(now),
                products::updated_at.eq(now),
            ))
            .returning(ProductRow::as_returning())
            .get_result(&mut conn)
            .await
            .context("creating a product")?;
        Ok(to_product(row)?)
    }

    async fn get(&self, id: ProductId) -> anyhow::Result<Option<Product>> {
        let mut conn = conn(&self.pool).await?;
        let row: Option<ProductRow> = products::table
            .find(id.get())
            .select(ProductRow::as_select())
            .first(&mut conn)
            .await
            .optional()
            .context("reading a product")?;
        Ok(row.map(to_product).transpose()?)
    }

    async fn list(&self, page: PageRequest) -> anyhow::Result<Page<Product>> {
        let mut conn = conn(&self.pool).await?;
        let mut query = products::table
            .select(ProductRow::as_select())
            .order(products::id.asc())
            .limit(page.fetch_limit())
            .into_boxed();
        if let Some(after) = page.after() {
            query = query.filter(products::id.gt(after));
        }
        let rows: Vec<ProductRow> = query.load(&mut conn).await.context("listing products")?;
        let items = rows
            .into_iter()
            .map(to_product)
            .collect::<QueryResult<Vec<_>>>()?;
        Ok(page.page(items, |p| p.id.get()))
    }

    async fn adjust(&self, id: ProductId, delta: StockDelta) -> Result<Product, AdjustStockError> {
        let mut conn = conn(&self.pool).await?;
        let d = delta.get();
        let row = conn
            .transaction::<_, TxError<AdjustStockError>, _>(async move |conn| {
                let current: ProductRow = lock_products(conn, &[id.get()])
                    .await?
                    .pop()
                    .ok_or(TxError::Rule(AdjustStockError::NotFound(id)))?;
                apply_delta(current.stock, delta)
                    .map_err(|e| TxError::Rule(AdjustStockError::Refused(e)))?;
                // guarded as well: stock + d >= 0
                let updated: Option<ProductRow> = diesel::update(
                    products::table
                        .find(id.get())
                        .filter(products::stock.ge(-d)),
                )
                .set((
                    products::stock.eq(products::stock + d),
                    products::updated_at.eq(diesel::dsl::now),
                ))
                .returning(ProductRow::as_returning())
                .get_result(conn)
                .await
                .optional()?;
                updated.ok_or(TxError::Rule(AdjustStockError::Refused(
                    AdjustRuleError::BelowZero {
                        stock: current.stock,
                        delta: d,
                    },
                )))
            })
            .await
            .map_err(|e| match e {
                TxError::Rule(e) => e,
                TxError::Db(e) => {
                    AdjustStockError::Unexpected(anyhow!(e).context("adjusting stock"))
                }
            })?;
        Ok(to_product(row).map_err(|e| anyhow!(e))?)
    }

    async fn reserve(&self, lines: &[ReserveLine]) -> Result<Vec<Product>, ReserveStockError> {
        let mut conn = conn(&self.pool).await?;
        conn.transaction::<_, TxError<ReserveError>, _>(async move |conn| {
            reserve_in_tx(conn, lines).await
        })
        .await
        .map_err(|e| match e {
            TxError::Rule(e) => ReserveStockError::Refused(e),
            TxError::Db(e) => ReserveStockError::Unexpected(anyhow!(e).context("reserving stock")),
        })
    }

    async fn release(&self, lines: &[ReserveLine]) -> anyhow::Result<()> {
        let mut conn = conn(&self.pool).await?;
        conn.transaction::<_, diesel::result::Error, _>(async move |conn| {
            release_in_tx(conn, lines).await
        })
        .await
        .context("releasing stock")
    }
}
