//! Adapter tests against a real PostgreSQL: a fresh database per test, cloned from a
//! migrated template (`testing::TestDatabase`). One test binary, modules below.

mod coupon;
