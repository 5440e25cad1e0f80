//! The OpenAPI document, assembled from each route module's `Api`.

use crate::error::{FieldError, Problem};
use crate::routes;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "commerce API", version = "1", description = "Products with limited stock, a prepaid balance, first-come-first-served coupons, orders and payments. Errors are application/problem+json with a stable `code`."),
    components(schemas(Problem, FieldError)),
    modifiers(&BearerAuth)
)]
struct Base;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The whole document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = Base::openapi();
    doc.merge(routes::health::Api::openapi());
    doc.merge(routes::balance::Api::openapi());
    doc.merge(routes::products::Api::openapi());
    doc.merge(routes::cart::Api::openapi());
    doc.merge(routes::coupons::Api::openapi());
    doc.merge(routes::outbox::Api::openapi());
    doc
}
