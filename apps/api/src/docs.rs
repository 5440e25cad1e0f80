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

/// Responses whose body is a `Problem` are `application/problem+json` (RFC 9457), not
/// the `application/json` utoipa assumes; rewriting the document once here keeps every
/// route's annotation short.
fn problem_content_type(doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    let Ok(mut value) = serde_json::to_value(&doc) else {
        return doc;
    };
    if let Some(paths) = value.get_mut("paths").and_then(|p| p.as_object_mut()) {
        for item in paths.values_mut().filter_map(|i| i.as_object_mut()) {
            for op in item
                .values_mut()
                .filter_map(|o| o.get_mut("responses"))
                .filter_map(|r| r.as_object_mut())
            {
                for response in op.values_mut() {
                    let Some(content) = response.get_mut("content").and_then(|c| c.as_object_mut())
                    else {
                        continue;
                    };
                    let is_problem = content
                        .get("application/json")
                        .and_then(|c| c.pointer("/schema/$ref"))
                        .and_then(|r| r.as_str())
                        .is_some_and(|r| r.ends_with("/Problem"));
                    if is_problem {
                        if let Some(json) = content.remove("application/json") {
                            content.insert(crate::error::PROBLEM_JSON.to_string(), json);
                        }
                    }
                }
            }
        }
    }
    serde_json::from_value(value).unwrap_or(doc)
}

/// The whole document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    problem_content_type(assemble())
}

fn assemble() -> utoipa::openapi::OpenApi {
    let mut doc = Base::openapi();
    doc.merge(routes::health::Api::openapi());
    doc.merge(routes::balance::Api::openapi());
    doc.merge(routes::products::Api::openapi());
    doc.merge(routes::cart::Api::openapi());
    doc.merge(routes::coupons::Api::openapi());
    doc.merge(routes::orders::Api::openapi());
    doc.merge(routes::outbox::Api::openapi());
    doc
}
