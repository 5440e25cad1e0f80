//! Diesel table definitions, one module per domain, mirroring `migrations/`.

pub mod balance;
pub mod cart;
pub mod coupon;
pub mod idempotency;
pub mod order;
pub mod outbox;
pub mod stock;

pub use balance::*;
pub use idempotency::*;
pub use order::*;
