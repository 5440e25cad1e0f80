//! The OpenAPI document, assembled from each route module's `Api`.

use crate::error::{FieldError, Problem, ProblemCode};
use crate::routes;
use actix_web::http::StatusCode;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "commerce API", version = "1", description = "Products with limited stock, a prepaid balance, first-come-first-served coupons, orders and payments. Errors are application/problem+json with a stable `code`."),
    components(schemas(Problem, ProblemCode, FieldError)),
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
/// the `application/json` utoipa assumes; and a response needs a description, which
/// for a problem names its codes. Rewriting the document once here keeps every route's
/// annotation short: a problem response written without a description gets the one
/// its status always means ([`generic_problem`]); any other must say which codes it
/// carries (the contract test holds every problem response to naming its codes).
fn problem_responses(doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
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
                for (status, response) in op.iter_mut() {
                    let Some(response) = response.as_object_mut() else {
                        continue;
                    };
                    let is_problem = response
                        .get("content")
                        .and_then(|c| c.pointer("/application~1json/schema/$ref"))
                        .and_then(|r| r.as_str())
                        .is_some_and(|r| r.ends_with("/Problem"));
                    if is_problem {
                        if let Some(content) =
                            response.get_mut("content").and_then(|c| c.as_object_mut())
                        {
                            if let Some(json) = content.remove("application/json") {
                                content.insert(crate::error::PROBLEM_JSON.to_string(), json);
                            }
                        }
                    }
                    let described = response
                        .get("description")
                        .and_then(|d| d.as_str())
                        .is_some_and(|d| !d.is_empty());
                    if !described {
                        let description = match (is_problem, status.parse::<u16>()) {
                            (true, Ok(status)) => generic_problem(status).map(str::to_string),
                            (false, Ok(status)) => StatusCode::from_u16(status)
                                .ok()
                                .and_then(|s| s.canonical_reason())
                                .map(str::to_string),
                            _ => None,
                        };
                        if let Some(description) = description {
                            response.insert("description".into(), description.into());
                        }
                    }
                }
            }
        }
    }
    serde_json::from_value(value).unwrap_or(doc)
}

/// What a problem response of this status means on every route that has one.
fn generic_problem(status: u16) -> Option<&'static str> {
    Some(match status {
        400 => "VALIDATION_ERROR: a malformed path, query or body",
        401 => "UNAUTHORIZED: the bearer token is missing or invalid",
        403 => "FORBIDDEN: the token may not act on this user or resource",
        413 => "PAYLOAD_TOO_LARGE: the body is over 64 KiB",
        415 => "UNSUPPORTED_MEDIA_TYPE: the body is not application/json",
        _ => return None,
    })
}

/// The whole document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    problem_responses(assemble())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_responses_are_problem_json_and_every_response_is_described() {
        let doc = serde_json::to_value(openapi()).unwrap();
        let responses = &doc["paths"]["/api/v1/users/{user_id}/balance"]["get"]["responses"];
        assert_eq!(responses["200"]["description"], "OK");
        assert!(responses["401"]["content"][crate::error::PROBLEM_JSON].is_object());
        assert!(responses["401"]["content"]
            .get("application/json")
            .is_none());
        assert!(responses["401"]["description"]
            .as_str()
            .unwrap()
            .starts_with("UNAUTHORIZED"));
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                for (status, response) in op["responses"].as_object().unwrap() {
                    assert!(
                        response["description"]
                            .as_str()
                            .is_some_and(|d| !d.is_empty()),
                        "{method} {path} {status} has no description"
                    );
                }
            }
        }
    }
}
