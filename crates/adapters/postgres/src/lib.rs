//! PostgreSQL adapters: diesel + diesel-async implementations of the domain ports.
//!
//! Every use case is one transaction opened here: lock the rows the rule needs (in id
//! order), call the domain's pure rule, write the outcome, commit. Invariants are also
//! held by the schema (CHECK, UNIQUE, conditional UPDATEs), so a bug in Rust cannot
//! break them.

pub mod balance;
pub mod cart;
pub mod coupon;
pub mod idempotency;
pub mod migrate;
pub mod notification;
pub mod order;
pub mod outbox;
mod paging;
pub mod pool;
pub mod schema;
mod sql;
pub mod stock;
#[cfg(feature = "testing")]
pub mod testing;
#[cfg(feature = "testing")]
pub mod testing_proxy;
mod tx;

pub use balance::PgBalanceStore;
pub use idempotency::PgIdempotencyStore;
pub use migrate::run_migrations;
pub use order::PgOrderStore;
pub use outbox::{OutboxListener, PgOutboxStore, Wake};
pub use pool::{build_pool, DatabaseUnavailable, PgPool, PoolSettings};
