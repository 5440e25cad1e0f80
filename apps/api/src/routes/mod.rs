//! HTTP routes, one module per domain. Each module has `configure` (registers its
//! resources under `/api/v1`) and `Api` (its part of the OpenAPI document).

use actix_web::web;

pub mod balance;
pub mod cart;
pub mod coupons;
pub mod health;
pub mod outbox;
pub mod products;

/// Registers every `/api/v1` route.
pub fn configure_v1(cfg: &mut web::ServiceConfig) {
    balance::configure(cfg);
    products::configure(cfg);
    cart::configure(cfg);
    coupons::configure(cfg);
    outbox::configure(cfg);
}
