//! Adapter tests against a real PostgreSQL database (a fresh one per test, cloned from a
//! migrated template). One test binary, one module per adapter.

mod cart;
mod stock;
