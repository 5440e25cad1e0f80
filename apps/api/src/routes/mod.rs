//! HTTP routes, one module per domain. Each module has `routes()` (its table of
//! method, path and handler under `/api/v1`) and `Api` (its part of the OpenAPI
//! document). Registration goes through the tables, so [`v1_routes`] is exactly what
//! the server serves, and a test holds it equal to the OpenAPI document.

use actix_web::http::Method;
use actix_web::web;

/// One route: method, path (relative to `/api/v1`), handler.
pub type RouteSpec = (Method, &'static str, actix_web::Route);

/// Registers routes, one resource per path (so a wrong method on a known path is 405).
pub fn register(cfg: &mut web::ServiceConfig, routes: Vec<RouteSpec>) {
    let mut paths: Vec<&'static str> = Vec::new();
    for (_, path, _) in &routes {
        if !paths.contains(path) {
            paths.push(path);
        }
    }
    let mut routes: Vec<Option<RouteSpec>> = routes.into_iter().map(Some).collect();
    for path in paths {
        let mut resource = web::resource(path);
        for slot in routes.iter_mut() {
            if slot.as_ref().is_some_and(|(_, p, _)| *p == path) {
                let (_, _, route) = slot.take().expect("checked above");
                resource = resource.route(route);
            }
        }
        cfg.service(resource);
    }
}

pub mod balance;
pub mod cart;
pub mod coupons;
pub mod health;
pub mod orders;
pub mod outbox;
pub mod products;

/// Registers every `/api/v1` route.
pub fn configure_v1(cfg: &mut web::ServiceConfig) {
    balance::configure(cfg);
    products::configure(cfg);
    cart::configure(cfg);
    coupons::configure(cfg);
    orders::configure(cfg);
    outbox::configure(cfg);
}
