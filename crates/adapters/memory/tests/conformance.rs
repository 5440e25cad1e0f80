//! The port-conformance suite against the in-memory store.

use conformance::Stores;
use memory_adapter::MemoryStore;
use std::sync::Arc;
use std::time::Duration;

async fn stores() -> Stores {
    let db =
        MemoryStore::new().with_idempotency(Duration::from_secs(60), Duration::from_secs(3600));
    let keys = db.clone();
    let outbox = db.clone();
    Stores {
        stock: Arc::new(db.clone()),
        coupons: Arc::new(db.clone()),
        inbox: Arc::new(db.clone()),
        balances: Arc::new(db.clone()),
        carts: Arc::new(db.clone()),
        orders: Arc::new(db.clone()),
        outbox: Arc::new(db.clone()),
        keys: Arc::new(db),
        keys_with: Arc::new(move |lease, ttl| Arc::new(keys.clone().with_idempotency(lease, ttl))),
        enqueue: Arc::new(move |event| {
            outbox.enqueue(event);
            Box::pin(async { Ok(()) })
        }),
        keep_alive: Box::new(()),
    }
}

conformance::port_conformance!(crate::stores);
