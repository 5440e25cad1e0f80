//! Diesel table definitions, one module per domain, mirroring `migrations/`.

pub mod balance;
pub mod idempotency;

pub use balance::*;
pub use idempotency::*;
