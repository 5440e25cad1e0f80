//! HTTP routes, one module per domain. Each module has `routes()` (its table of
//! method, path and handler under `/api/v1`) and `Api` (its part of the OpenAPI
//! document). Registration goes through the tables, so [`v1_routes`] is exactly what
//! the server serves, and a test holds it equal to the OpenAPI document.

use actix_web::http::Method;
use actix_web::{web, FromRequest, Handler, Responder};

/// One route: method, path (relative to `/api/v1`), handler.
pub type RouteSpec = (Method, &'static str, actix_web::Route);

/// A [`RouteSpec`] whose handler answers exactly `method` (the method is written once,
/// so the table and the route's guard cannot disagree).
pub fn route<F, Args>(method: Method, path: &'static str, handler: F) -> RouteSpec
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    (method.clone(), path, web::method(method).to(handler))
}

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

/// Every `/api/v1` route (paths relative to `/api/v1`), in registration order:
/// `/products/popular` (in [`products::routes`]) comes before `/products/{id}`, which
/// would otherwise take "popular" for an id.
pub fn v1_routes() -> Vec<RouteSpec> {
    [
        balance::routes(),
        products::routes(),
        cart::routes(),
        coupons::routes(),
        orders::routes(),
        outbox::routes(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Registers every `/api/v1` route.
pub fn configure_v1(cfg: &mut web::ServiceConfig) {
    register(cfg, v1_routes());
}

/// Registers the health routes (outside `/api/v1`, documented like the others).
pub fn configure_health(cfg: &mut web::ServiceConfig) {
    register(cfg, health::routes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn position(routes: &[RouteSpec], path: &str) -> usize {
        routes
            .iter()
            .position(|(_, p, _)| *p == path)
            .unwrap_or_else(|| panic!("{path} is not registered"))
    }

    #[test]
    fn popular_products_is_registered_before_a_product_by_id() {
        let routes = v1_routes();
        assert!(position(&routes, "/products/popular") < position(&routes, "/products/{id}"));
    }

    #[test]
    fn no_method_and_path_is_registered_twice() {
        let mut seen = std::collections::BTreeSet::new();
        for (method, path, _) in v1_routes().iter().chain(health::routes().iter()) {
            assert!(
                seen.insert((method.to_string(), *path)),
                "{method} {path} twice"
            );
        }
    }
}
