//! API tests: the real app on port 0 with its own fresh database, spoken to over HTTP.
//! One test binary (modules below) to keep link time down.

mod admin_orders;
mod balance;
mod cart;
mod contract;
mod conventions;
mod coupon_reasons;
mod coupons;
mod crash;
mod crash_keys;
mod delivery;
mod drops;
mod from_cart;
mod guide;
mod hardening;
mod helpers;
mod idempotency;
mod orders;
mod outbox;
mod products;
mod refunds;
mod relay_metrics;
mod shop;
mod stalled;
