//! Adapter tests: the PostgreSQL implementations of the ports against a real database
//! (a fresh one per test, cloned from a migrated template). One test binary, one module
//! per domain.

mod outbox;
