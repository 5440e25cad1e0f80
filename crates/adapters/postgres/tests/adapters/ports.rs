//! The port-conformance suite (crate `conformance`) against PostgreSQL: each test gets
//! a fresh database and one pool of 16 connections shared by every store.

use conformance::Stores;
use postgres_adapter::cart::PgCartStore;
use postgres_adapter::coupon::PgCouponStore;
use postgres_adapter::notification::PgNotificationInbox;
use postgres_adapter::stock::PgStockStore;
use postgres_adapter::testing::TestDatabase;
use postgres_adapter::{PgBalanceStore, PgIdempotencyStore, PgOrderStore, PgOutboxStore};
use std::sync::Arc;
use std::time::Duration;

pub async fn stores() -> Stores {
    let db = TestDatabase::create().await;
    let pool = db.pool(16);
    let outbox = PgOutboxStore::new(pool.clone());
    let keys_pool = pool.clone();
    let writer = outbox.clone();
    Stores {
        stock: Arc::new(PgStockStore::new(pool.clone())),
        coupons: Arc::new(PgCouponStore::new(pool.clone())),
        inbox: Arc::new(PgNotificationInbox::new(pool.clone())),
        balances: Arc::new(PgBalanceStore::new(pool.clone())),
        carts: Arc::new(PgCartStore::new(pool.clone())),
        orders: Arc::new(PgOrderStore::new(pool.clone())),
        outbox: Arc::new(outbox),
        keys: Arc::new(PgIdempotencyStore::new(
            pool,
            Duration::from_secs(60),
            Duration::from_secs(3600),
        )),
        keys_with: Arc::new(move |lease, ttl| {
            Arc::new(PgIdempotencyStore::new(keys_pool.clone(), lease, ttl))
        }),
        enqueue: Arc::new(move |event| {
            let writer = writer.clone();
            Box::pin(async move { writer.enqueue(event).await })
        }),
        keep_alive: Box::new(db),
    }
}

conformance::port_conformance!(crate::ports::stores);
