//! The OpenAPI document, assembled from each route module's `Api`.

use crate::error::{ApiError, FieldError, Problem, ProblemCode};
use crate::routes;
use actix_web::http::StatusCode;
use serde_json::{Map, Value};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "commerce API", version = "1", description = "Products with limited stock, a prepaid balance, first-come-first-served coupons, orders and payments. Errors are application/problem+json with a stable `code`."),
    // the order of API.md's sections, which Swagger UI keeps
    tags(
        (name = "health", description = "Liveness and readiness"),
        (name = "products", description = "Products and stock"),
        (name = "balance", description = "The prepaid balance (points): charges and history"),
        (name = "cart", description = "The user's cart"),
        (name = "coupons", description = "Coupons, first-come-first-served issuing and the user's notification inbox"),
        (name = "orders", description = "Orders, payment, cancellation"),
        (name = "outbox", description = "Delivery of order events to the data platform (admin)"),
    ),
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

/// Rewrites the assembled document once, so every route's annotation stays short:
///
/// - responses whose body is a `Problem` are `application/problem+json` (RFC 9457), not
///   the `application/json` utoipa assumes;
/// - a response needs a description, which for a problem names its codes: a problem
///   response written without one gets the one its status always means
///   ([`generic_problem`]); any other must say which codes it carries (the contract
///   test holds every problem response to naming its codes);
/// - each problem response shows one example body per code its description names
///   ([`problem_examples`]), so Swagger UI shows the codes the operation really returns;
/// - a summary is one line (utoipa takes a doc comment's whole first paragraph).
fn problem_responses(doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    let Ok(mut value) = serde_json::to_value(&doc) else {
        return doc;
    };
    let schemas = value
        .pointer("/components/schemas")
        .cloned()
        .unwrap_or_default();
    if let Some(paths) = value.get_mut("paths").and_then(|p| p.as_object_mut()) {
        for item in paths.values_mut().filter_map(|i| i.as_object_mut()) {
            for op in item.values_mut().filter_map(|o| o.as_object_mut()) {
                if let Some(summary) = op.get_mut("summary") {
                    if let Some(text) = summary.as_str() {
                        *summary = text.split_whitespace().collect::<Vec<_>>().join(" ").into();
                    }
                }
                let body_field = request_field(op, &schemas);
                let Some(responses) = op.get_mut("responses").and_then(|r| r.as_object_mut())
                else {
                    continue;
                };
                for (status, response) in responses.iter_mut() {
                    if let Some(response) = response.as_object_mut() {
                        rewrite_response(status, response, body_field.as_deref());
                    }
                }
            }
        }
    }
    serde_json::from_value(value).unwrap_or(doc)
}

fn rewrite_response(status: &str, response: &mut Map<String, Value>, body_field: Option<&str>) {
    let is_problem = response
        .get("content")
        .and_then(|c| c.pointer("/application~1json/schema/$ref"))
        .and_then(|r| r.as_str())
        .is_some_and(|r| r.ends_with("/Problem"));
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
    if !is_problem {
        return;
    }
    let description = response
        .get("description")
        .and_then(|d| d.as_str())
        .unwrap_or_default()
        .to_string();
    let Some(content) = response.get_mut("content").and_then(|c| c.as_object_mut()) else {
        return;
    };
    let Some(mut media) = content.remove("application/json") else {
        return;
    };
    // examples written in a route's annotation are kept (the contract test checks them)
    let written = media.get("examples").is_some_and(|e| !e.is_null());
    let examples = status
        .parse::<u16>()
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .map(|status| problem_examples(status, &description, body_field))
        .unwrap_or_default();
    if !written && !examples.is_empty() {
        if let Some(media) = media.as_object_mut() {
            media.insert("examples".into(), Value::Object(examples));
        }
    }
    content.insert(crate::error::PROBLEM_JSON.to_string(), media);
}

/// The codes a problem response's description names, in the order it names them.
pub fn codes_named(description: &str) -> Vec<ProblemCode> {
    let mut codes = Vec::new();
    for word in description.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if let Some(code) = ProblemCode::ALL.iter().find(|c| c.as_str() == word) {
            if !codes.contains(code) {
                codes.push(*code);
            }
        }
    }
    codes
}

/// One example body per code the description names, keyed by the code, built by
/// [`ApiError`] itself so an example looks exactly like what the server sends.
fn problem_examples(
    status: StatusCode,
    description: &str,
    body_field: Option<&str>,
) -> Map<String, Value> {
    let mut examples = Map::new();
    for code in codes_named(description) {
        let body = example_error(status, code, body_field).body();
        let mut example = Map::new();
        example.insert("summary".into(), code.as_str().into());
        example.insert("value".into(), body);
        examples.insert(code.as_str().to_string(), Value::Object(example));
    }
    examples
}

/// A believable error of `code` answered with `status`, with the members that code
/// carries (`errors`, `product_ids`, `reason`, ...).
fn example_error(status: StatusCode, code: ProblemCode, body_field: Option<&str>) -> ApiError {
    use ProblemCode as C;
    let meaning = code.meaning();
    // "409: not enough stock (...)." -> "not enough stock (...)."
    let detail = meaning
        .split_once(": ")
        .map_or(meaning, |(_, rest)| rest)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let error = ApiError::new(status, code, detail);
    match code {
        C::ValidationError if status == StatusCode::BAD_REQUEST => {
            ApiError::bad_request("body", "malformed JSON: expected value at line 1 column 1")
        }
        C::ValidationError => {
            let field = body_field.unwrap_or("limit");
            ApiError::validation(vec![FieldError::new(field, "is out of range")])
        }
        C::OutOfStock | C::ProductNotFound => error.with("product_ids", [2]),
        C::InsufficientBalance => error.with("balance", 3_000).with("required", 9_000),
        C::CouponNotUsable => {
            let reason = coupon::Unusable::BelowMinimum;
            ApiError::new(status, code, reason.to_string()).with("reason", reason.code())
        }
        _ => error,
    }
}

/// The first property of the operation's JSON request body, for a field-error example.
fn request_field(op: &Map<String, Value>, schemas: &Value) -> Option<String> {
    let reference = op
        .get("requestBody")?
        .pointer("/content/application~1json/schema/$ref")?
        .as_str()?;
    let name = reference.rsplit('/').next()?;
    let properties = schemas.get(name)?.get("properties")?.as_object()?;
    let required: Vec<&str> = schemas[name]["required"]
        .as_array()
        .map(|r| r.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    properties
        .keys()
        .find(|k| required.contains(&k.as_str()))
        .or_else(|| properties.keys().next())
        .cloned()
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

/// Where Swagger UI is served (with the trailing slash its pages need).
pub const SWAGGER_UI: &str = "/docs/";

/// `GET /docs` (no slash) and `GET /` (also `HEAD`) lead to Swagger UI: a newcomer who
/// types either lands on the operations list rather than a 404.
pub fn ui_redirects(cfg: &mut actix_web::web::ServiceConfig) {
    use actix_web::web;
    cfg.service(
        web::resource("/docs")
            .route(web::get().to(to_ui_permanently))
            .route(web::head().to(to_ui_permanently)),
    )
    .service(
        web::resource("/")
            .route(web::get().to(to_ui))
            .route(web::head().to(to_ui)),
    );
}

/// `/docs` is always Swagger UI: 308 to `/docs/`.
async fn to_ui_permanently() -> actix_web::HttpResponse {
    redirect(StatusCode::PERMANENT_REDIRECT)
}

/// `/` shows Swagger UI for now (it may serve something else one day): 307.
async fn to_ui() -> actix_web::HttpResponse {
    redirect(StatusCode::TEMPORARY_REDIRECT)
}

fn redirect(status: StatusCode) -> actix_web::HttpResponse {
    actix_web::HttpResponse::build(status)
        .insert_header((actix_web::http::header::LOCATION, SWAGGER_UI))
        .finish()
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
