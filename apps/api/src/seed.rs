//! Demo data for `make run`: safe to run again (it only adds what is missing).

use crate::config::Settings;
use balance::{BalanceStore, ChargeAmount, ChargeService, PaymentMethod};
use coupon::{CouponName, CouponStore, Discount, DiscountType, NewCoupon, ValidityWindow};
use kernel::{Clock, Money, PageRequest, Quantity, SystemClock, UserId};
use payment_gateway::SandboxGateway;
use postgres_adapter::coupon::PgCouponStore;
use postgres_adapter::stock::PgStockStore;
use postgres_adapter::{build_pool, PgBalanceStore, PgPool, PoolSettings};
use std::sync::Arc;
use stock::{NewProduct, Price, ProductName, StockLevel, StockService};

/// Seeds the demo catalogue, balances and a coupon; returns a line per thing it added.
pub async fn seed(settings: &Settings) -> anyhow::Result<Vec<String>> {
    let pool = build_pool(
        &PoolSettings::new(settings.database.url.clone(), 2).with_timeout(
            std::time::Duration::from_millis(settings.database.timeout_ms),
        ),
    )?;
    let mut added = Vec::new();
    added.extend(seed_balances(&pool).await?);
    added.extend(seed_products(&pool).await?);
    added.extend(seed_coupons(&pool).await?);
    Ok(added)
}

/// One demo coupon (10% off from 10,000 won, 100 units, valid for a year), issued to
/// user 1 with a notification; added only while user 1 owns no coupon.
async fn seed_coupons(pool: &PgPool) -> anyhow::Result<Vec<String>> {
    let store = Arc::new(PgCouponStore::new(pool.clone()));
    let user = UserId::try_from(1)?;
    let now = SystemClock.now();
    if !store
        .user_coupons(user, now, Default::default())
        .await?
        .items
        .is_empty()
    {
        return Ok(Vec::new());
    }
    let coupon = NewCoupon::new(
        CouponName::try_from("Welcome 10%".to_string())?,
        Discount::new(DiscountType::Percent, 10)?,
        Money::try_from(10_000)?,
        Some(Quantity::try_from(100)?),
        ValidityWindow::new(now, now + chrono::Duration::days(365))?,
        vec![user],
    )?;
    let coupon = store.create(coupon, now).await?;
    Ok(vec![format!(
        "coupon {} \"Welcome 10%\" (100 units), issued to user 1",
        coupon.id
    )])
}

/// Users 1 and 2 start with 100,000 won, charged through the sandbox gateway like any
/// other charge (so their history shows where the money came from).
async fn seed_balances(pool: &PgPool) -> anyhow::Result<Vec<String>> {
    let store = Arc::new(PgBalanceStore::new(pool.clone()));
    let charges = ChargeService::new(
        store.clone(),
        Arc::new(SandboxGateway),
        Arc::new(SystemClock),
    );
    let mut added = Vec::new();
    for id in [1, 2] {
        let user = UserId::try_from(id)?;
        if store
            .history(user, Default::default())
            .await?
            .items
            .is_empty()
        {
            let amount = ChargeAmount::try_from(100_000)?;
            charges
                .charge(
                    user,
                    amount,
                    PaymentMethod::try_from("card".to_string())?,
                    None,
                )
                .await?;
            added.push(format!("user {id}: balance charged with 100,000 won"));
        }
    }
    Ok(added)
}

/// The demo catalogue, added only to an empty catalogue (so running the seed again, or
/// after products were added by hand, adds nothing).
async fn seed_products(pool: &PgPool) -> anyhow::Result<Vec<String>> {
    let stock = StockService::new(
        Arc::new(PgStockStore::new(pool.clone())),
        Arc::new(SystemClock),
    );
    if !stock
        .products(PageRequest::first(1))
        .await?
        .items
        .is_empty()
    {
        return Ok(Vec::new());
    }
    let demo: [(&str, i64, i64); 6] = [
        ("Mechanical keyboard", 89_000, 50),
        ("Wireless mouse", 35_000, 120),
        ("27-inch monitor", 329_000, 15),
        ("USB-C hub", 42_000, 80),
        ("Noise-cancelling headphones", 279_000, 25),
        ("Limited edition mug", 15_000, 3),
    ];
    let mut added = Vec::new();
    for (name, price, units) in demo {
        let product = stock
            .create_product(NewProduct {
                name: ProductName::try_from(name.to_string())?,
                price: Price::try_from(price)?,
                stock: StockLevel::try_from(units)?,
                max_per_user: None,
            })
            .await?;
        added.push(format!(
            "product {}: {name}, {price} won, {units} in stock",
            product.id
        ));
    }
    Ok(added)
}
