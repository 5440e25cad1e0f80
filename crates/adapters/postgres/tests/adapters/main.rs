//! Adapter tests against a real PostgreSQL database, created fresh for each test from a
//! migrated template. One test binary; one module per adapter.

mod balance;
mod cart;
mod coupon;
mod idempotency;
mod order;
mod outbox;
mod pool;
mod stock;
