//! In-memory implementations of every port of the shop: one [`MemoryStore`] is a whole
//! database (products, coupons, inboxes, balances, charges, carts, orders, the outbox,
//! `Idempotency-Key`s) behind ONE lock, so every port method is one atomic step, as a
//! transaction is in PostgreSQL.
//!
//! It is what a library user prototypes and unit-tests with, and it proves that the
//! ports are the whole contract: it re-implements loading and saving only, and runs the
//! decisions the domain gives it (`order::plan`, `balance::plan_*`, `coupon::*`,
//! `stock::apply_delta`) exactly as the PostgreSQL adapter does: snapshot, decide,
//! write the whole plan or nothing. The port-conformance suite (crate `conformance`)
//! runs against both.
//!
//! ```
//! use memory_adapter::MemoryStore;
//! use kernel::{Clock, SystemClock};
//! use std::sync::Arc;
//! use stock::{NewProduct, Price, ProductName, StockLevel, StockService};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let db = MemoryStore::new();
//! let catalogue = StockService::new(Arc::new(db.clone()), Arc::new(SystemClock));
//! let tea = catalogue
//!     .create_product(NewProduct {
//!         name: ProductName::try_from("Green tea".to_string()).unwrap(),
//!         price: Price::try_from(4_500).unwrap(),
//!         stock: StockLevel::try_from(10).unwrap(),
//!         max_per_user: None,
//!     })
//!     .await
//!     .unwrap();
//! assert_eq!(catalogue.product(tea.id).await.unwrap().stock, 10);
//! # }
//! ```
//!
//! Nothing is persisted: the data lives as long as the last clone of the store.
#![warn(missing_docs)]

mod balance;
mod cart;
mod coupon;
mod idempotency;
mod order;
mod outbox;
mod paging;
mod snapshot;
mod state;
mod stock;

pub use outbox::RecordingDestination;

use kernel::{Clock, SystemClock};
use state::State;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// The whole in-memory database. Cloning it is cheap and shares the data: hand a clone
/// to each service (`Arc::new(store.clone())` is an `Arc<dyn StockStore>`, an
/// `Arc<dyn OrderStore>`, ... as needed).
#[derive(Clone)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
    clock: Arc<dyn Clock>,
    /// How long an `Idempotency-Key` claim protects its request.
    lease: Duration,
    /// How long an `Idempotency-Key` lives.
    ttl: Duration,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty store on the wall clock; `Idempotency-Key` claims hold 60 s and keys
    /// live 24 h.
    pub fn new() -> Self {
        Self {
            state: Arc::default(),
            clock: Arc::new(SystemClock),
            lease: Duration::from_secs(60),
            ttl: Duration::from_secs(24 * 3600),
        }
    }

    /// The same store reading "now" from `clock` where a port takes no time of its own
    /// (`Idempotency-Key` leases, the displayed status of a coupon in an order snapshot).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The same store with these `Idempotency-Key` lease and time to live.
    pub fn with_idempotency(mut self, lease: Duration, ttl: Duration) -> Self {
        self.lease = lease;
        self.ttl = ttl;
        self
    }

    /// Writes `event` to the outbox in a step of its own (tools and tests: order events
    /// are written with the order's plan), PENDING and due at its `occurred_at`.
    pub fn enqueue(&self, event: impl Into<::outbox::Event>) {
        self.db().enqueue(event.into());
    }

    /// The lock: every port method takes it once, does its whole work, and lets go.
    fn db(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave half a write behind: every write
        // checks all its guards before it changes anything.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
