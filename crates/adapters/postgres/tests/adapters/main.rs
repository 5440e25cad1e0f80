//! Adapter tests against a real PostgreSQL database, created fresh for each test from a
//! migrated template. One test binary: the port-conformance suite (`ports`), and what
//! only PostgreSQL has (schema guards, round trips, pools, the outbox's wake-up signal
//! and timeouts, the coupon slots' two statements), one module per adapter.

mod coupon;
mod order;
mod outbox;
mod pool;
mod ports;
mod schema;
