//! No drift between what the server serves, what its OpenAPI document says and what
//! API.md promises: the routes registered (`routes::v1_routes()` under `/api/v1`, plus
//! health) are exactly the operations of the document and exactly the routes of the
//! contract; every problem `code` API.md names is documented, and every problem
//! response of the document names its codes.
//!
//! API.md is read from the shared spec (`../shared/spec/API.md` next to the
//! workspace) when it is there; the lists below are the contract written out, so the
//! tests hold without it and a route missing from both code and docs is still caught.

use crate::helpers::spawn_app;
use commerce_api::docs;
use commerce_api::error::ProblemCode;
use commerce_api::routes;
use reqwest::Method;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Every API route of API.md (method, full path template as the server spells it).
const CONTRACT: &[(&str, &str)] = &[
    ("GET", "/health/live"),
    ("GET", "/health/ready"),
    ("GET", "/api/v1/products"),
    ("GET", "/api/v1/products/{id}"),
    ("GET", "/api/v1/products/popular"),
    ("POST", "/api/v1/admin/products"),
    ("PATCH", "/api/v1/admin/products/{id}"),
    ("POST", "/api/v1/admin/products/{id}/stock"),
    ("GET", "/api/v1/users/{user_id}/balance"),
    ("POST", "/api/v1/users/{user_id}/balance/charges"),
    ("GET", "/api/v1/users/{user_id}/balance/history"),
    ("GET", "/api/v1/users/{user_id}/cart"),
    ("PUT", "/api/v1/users/{user_id}/cart/items/{product_id}"),
    ("DELETE", "/api/v1/users/{user_id}/cart/items/{product_id}"),
    ("POST", "/api/v1/admin/coupons"),
    ("POST", "/api/v1/admin/coupons/{coupon_id}/deactivate"),
    ("GET", "/api/v1/coupons/{coupon_id}"),
    ("POST", "/api/v1/coupons/{coupon_id}/issues"),
    ("GET", "/api/v1/users/{user_id}/coupons"),
    ("GET", "/api/v1/users/{user_id}/notifications"),
    (
        "POST",
        "/api/v1/users/{user_id}/notifications/{notification_id}/read",
    ),
    ("POST", "/api/v1/orders"),
    ("GET", "/api/v1/orders/{order_id}"),
    ("GET", "/api/v1/users/{user_id}/orders"),
    ("POST", "/api/v1/orders/{order_id}/payment"),
    ("POST", "/api/v1/orders/{order_id}/cancel"),
    ("POST", "/api/v1/orders/{order_id}/refunds"),
    ("GET", "/api/v1/admin/orders"),
    ("GET", "/api/v1/admin/outbox"),
    ("POST", "/api/v1/admin/outbox/{event_id}/retry"),
    ("GET", "/api/v1/admin/outbox/{event_id}"),
    ("GET", "/api/v1/admin/outbox/{event_id}/attempts"),
    ("POST", "/api/v1/admin/outbox/retries"),
];

/// Routes and codes API.md has grown that are not built yet, each with the issue that
/// brings it. main stays green while the contract lands in pieces; the lists empty as
/// they land (a pending entry that gets built fails `nothing_pending_is_already_built`).
const PENDING_ROUTES: &[(&str, &str, &str)] = &[];

/// Codes API.md names that no built route emits yet, with the issue that brings each.
const PENDING_CODES: &[(&str, &str)] = &[];

fn pending_routes() -> Routes {
    PENDING_ROUTES
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect()
}

fn pending_codes() -> BTreeSet<String> {
    PENDING_CODES.iter().map(|(c, _)| c.to_string()).collect()
}

/// Served, but not API routes: not in the OpenAPI document.
const NOT_API: &[&str] = &["/metrics", "/api-docs/openapi.json", "/docs"];

/// Every problem `code` API.md names.
const CONTRACT_CODES: &[&str] = &[
    "OUT_OF_STOCK",
    "PRODUCT_NOT_FOUND",
    "VALIDATION_ERROR",
    "PAYLOAD_TOO_LARGE",
    "UNSUPPORTED_MEDIA_TYPE",
    "NOT_FOUND",
    "METHOD_NOT_ALLOWED",
    "UNAUTHORIZED",
    "FORBIDDEN",
    "IDEMPOTENCY_KEY_REUSED",
    "REQUEST_IN_PROGRESS",
    "BALANCE_LIMIT_EXCEEDED",
    "PAYMENT_DECLINED",
    "COUPON_NOT_FOUND",
    "COUPON_ALREADY_ISSUED",
    "COUPON_SOLD_OUT",
    "COUPON_NOT_ACTIVE",
    "COUPON_NOT_USABLE",
    "INSUFFICIENT_BALANCE",
    "INVALID_ORDER_STATE",
    "ORDER_EXPIRED",
    "ORDER_NOT_FOUND",
    "REFUND_EXCEEDS_ORDER",
    "PURCHASE_LIMIT_EXCEEDED",
    "NOTIFICATION_NOT_FOUND",
    "EVENT_NOT_FOUND",
];

const OPERATIONS: &[&str] = &[
    "get", "put", "post", "delete", "patch", "head", "options", "trace",
];

type Routes = BTreeSet<(String, String)>;

fn api_md() -> Option<String> {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/spec/API.md"
    ))
    .ok()
}

fn contract() -> Routes {
    CONTRACT
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect()
}

/// What the server registers: the `/api/v1` table and health.
fn registered() -> Routes {
    let v1 = routes::v1_routes()
        .into_iter()
        .map(|(m, p, _)| (m.as_str().to_string(), format!("/api/v1{p}")));
    let health = routes::health::routes()
        .into_iter()
        .map(|(m, p, _)| (m.as_str().to_string(), p.to_string()));
    v1.chain(health).collect()
}

fn document() -> Value {
    serde_json::to_value(docs::openapi()).expect("the document serialises")
}

/// The document's operations: paths × methods.
fn documented() -> Routes {
    let doc = document();
    let mut routes = Routes::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in OPERATIONS {
            if item.get(*method).is_some() {
                routes.insert((method.to_ascii_uppercase(), path.clone()));
            }
        }
    }
    routes
}

/// Path parameters renamed `{}`: API.md writes `{id}` where the server has `{order_id}`.
fn shape(path: &str) -> String {
    let mut out = String::new();
    let mut in_param = false;
    for c in path.chars() {
        match c {
            '{' => {
                in_param = true;
                out.push_str("{}");
            }
            '}' => in_param = false,
            _ if !in_param => out.push(c),
            _ => {}
        }
    }
    out
}

fn shapes(routes: &Routes) -> Routes {
    routes.iter().map(|(m, p)| (m.clone(), shape(p))).collect()
}

/// The routes API.md's tables list (``| `METHOD /path?query` | ...``), docs and metrics
/// left out.
fn api_md_routes(text: &str) -> Routes {
    text.lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .filter_map(|route| route.split_once(' '))
        .filter(|(method, _)| ["GET", "POST", "PUT", "DELETE", "PATCH"].contains(method))
        .map(|(method, path)| {
            let path = path.split('?').next().unwrap_or(path);
            (method.to_string(), path.to_string())
        })
        .filter(|(_, path)| !NOT_API.contains(&path.as_str()))
        .collect()
}

fn is_code_like(s: &str) -> bool {
    s.len() >= 3
        && s.chars().all(|c| c.is_ascii_uppercase() || c == '_')
        && !s.starts_with('_')
        && !s.ends_with('_')
}

/// The problem codes a piece of API.md names: a `CODE` right after a status
/// (``409 `OUT_OF_STOCK` ``), `` `code: CODE` `` and `"code": "CODE"`.
fn codes_in(text: &str) -> BTreeSet<String> {
    let mut codes = BTreeSet::new();
    let segments: Vec<&str> = text.split('`').collect();
    for (i, span) in segments.iter().enumerate().skip(1).step_by(2) {
        let span = span.trim();
        let before = segments[i - 1].trim_end();
        let after_status = before.len() >= 3
            && before.as_bytes()[before.len() - 3..]
                .iter()
                .all(u8::is_ascii_digit)
            && !before.as_bytes()[..before.len() - 3]
                .last()
                .is_some_and(u8::is_ascii_digit);
        if after_status && is_code_like(span) {
            codes.insert(span.to_string());
        }
        if let Some(code) = span.strip_prefix("code: ").filter(|c| is_code_like(c)) {
            codes.insert(code.to_string());
        }
        for part in span.split("\"code\": \"").skip(1) {
            if let Some(code) = part.split('"').next().filter(|c| is_code_like(c)) {
                codes.insert(code.to_string());
            }
        }
    }
    codes
}

/// Panics naming what is in one set and not the other.
#[track_caller]
fn assert_same<T: Ord + std::fmt::Debug>(
    left_name: &str,
    left: &BTreeSet<T>,
    right_name: &str,
    right: &BTreeSet<T>,
) {
    let only_left: Vec<_> = left.difference(right).collect();
    let only_right: Vec<_> = right.difference(left).collect();
    assert!(
        only_left.is_empty() && only_right.is_empty(),
        "drift between {left_name} and {right_name}:\n  only in {left_name}: {only_left:#?}\n  only in {right_name}: {only_right:#?}"
    );
}

#[test]
fn every_registered_route_is_documented_and_every_documented_route_is_registered() {
    assert_same(
        "the registered routes",
        &registered(),
        "the OpenAPI document",
        &documented(),
    );
}

#[test]
fn the_registered_routes_are_exactly_the_contract() {
    assert_same(
        "the registered routes",
        &registered(),
        "the contract",
        &contract(),
    );
    let registered = routes::v1_routes();
    assert_eq!(
        registered.len() + routes::health::routes().len(),
        CONTRACT.len(),
        "a route is registered twice"
    );
    let Some(text) = api_md() else {
        eprintln!("API.md not found; checked against the written-out contract only");
        return;
    };
    let promised: Routes = shapes(&api_md_routes(&text))
        .difference(&pending_routes())
        .cloned()
        .collect();
    assert_same(
        "API.md (pending routes left out)",
        &promised,
        "the contract (path parameters unnamed)",
        &shapes(&contract()),
    );
}

#[test]
fn nothing_pending_is_already_built() {
    let built = shapes(&registered());
    for (method, path, issue) in PENDING_ROUTES {
        assert!(
            !built.contains(&(method.to_string(), path.to_string())),
            "{method} {path} is built: take it off PENDING_ROUTES ({issue}) and add it to CONTRACT"
        );
    }
    let emitted: BTreeSet<&str> = ProblemCode::ALL.iter().map(|c| c.as_str()).collect();
    for (code, issue) in PENDING_CODES {
        assert!(
            !emitted.contains(code),
            "{code} is emitted now: take it off PENDING_CODES ({issue})"
        );
    }
}

#[test]
fn the_non_api_routes_are_not_in_the_document() {
    let documented = documented();
    for path in NOT_API {
        assert!(
            !documented.iter().any(|(_, p)| p == path),
            "{path} is not an API route"
        );
    }
}

/// API.md's codes (the written-out list, and what API.md names when it is there).
fn contract_codes() -> BTreeSet<String> {
    let mut codes: BTreeSet<String> = CONTRACT_CODES.iter().map(|c| c.to_string()).collect();
    if let Some(text) = api_md() {
        let named = codes_in(&text);
        let unparsed: Vec<_> = codes.difference(&named).collect();
        assert!(
            unparsed.is_empty(),
            "API.md no longer names {unparsed:?} (or this test cannot read it)"
        );
        codes.extend(named);
    }
    codes
}

fn documented_codes(doc: &Value) -> BTreeSet<String> {
    doc["components"]["schemas"]["ProblemCode"]["enum"]
        .as_array()
        .expect("ProblemCode is a string enum")
        .iter()
        .map(|c| c.as_str().expect("a code is a string").to_string())
        .collect()
}

#[test]
fn every_problem_code_api_md_names_is_documented() {
    let doc = document();
    assert_eq!(
        doc["components"]["schemas"]["Problem"]["properties"]["code"]["$ref"],
        "#/components/schemas/ProblemCode",
        "Problem.code is documented as the ProblemCode enum"
    );
    let documented = documented_codes(&doc);
    let emitted: BTreeSet<String> = ProblemCode::ALL
        .iter()
        .map(|c| c.as_str().to_string())
        .collect();
    assert_same(
        "the documented codes",
        &documented,
        "the codes the server can emit",
        &emitted,
    );
    let missing: Vec<_> = contract_codes()
        .difference(&documented)
        .filter(|c| !pending_codes().contains(*c))
        .cloned()
        .collect();
    assert!(
        missing.is_empty(),
        "codes of API.md missing from the document: {missing:?}"
    );
    let description = doc["components"]["schemas"]["ProblemCode"]["description"]
        .as_str()
        .expect("ProblemCode is described");
    for code in &documented {
        assert!(
            description.contains(&format!("`{code}`")),
            "{code} is not explained"
        );
    }
}

/// Every problem response of each operation, with its description.
fn problem_responses(doc: &Value) -> BTreeMap<(String, String), Vec<(String, String)>> {
    let mut all = BTreeMap::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in OPERATIONS {
            let Some(op) = item.get(*method) else {
                continue;
            };
            let mut responses = Vec::new();
            for (status, response) in op["responses"].as_object().expect("responses") {
                if response["content"]
                    .get(commerce_api::error::PROBLEM_JSON)
                    .is_some()
                {
                    let description = response["description"].as_str().unwrap_or_default();
                    responses.push((status.clone(), description.to_string()));
                }
            }
            all.insert((method.to_ascii_uppercase(), path.clone()), responses);
        }
    }
    all
}

fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
}

#[test]
fn every_problem_response_names_its_codes() {
    let doc = document();
    let known = documented_codes(&doc);
    for ((method, path), responses) in problem_responses(&doc) {
        for (status, description) in responses {
            let named: Vec<&str> = words(&description).filter(|w| known.contains(*w)).collect();
            assert!(
                !named.is_empty(),
                "{method} {path} {status}: the description {description:?} names no code"
            );
            // anything that looks like a code (SOME_THING) must be one: no typos
            for word in words(&description).filter(|w| w.contains('_') && is_code_like(w)) {
                assert!(
                    known.contains(word),
                    "{method} {path} {status}: {word} is not a code"
                );
            }
        }
    }
}

/// The example bodies of every problem response: (operation, status, description,
/// examples).
type Examples = Vec<((String, String), String, String, Vec<(String, Value)>)>;

fn problem_examples(doc: &Value) -> Examples {
    let mut all = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in OPERATIONS {
            let Some(op) = item.get(*method) else {
                continue;
            };
            for (status, response) in op["responses"].as_object().expect("responses") {
                let Some(media) = response["content"].get(commerce_api::error::PROBLEM_JSON) else {
                    continue;
                };
                let examples = media["examples"]
                    .as_object()
                    .map(|e| e.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    .unwrap_or_default();
                all.push((
                    (method.to_ascii_uppercase(), path.clone()),
                    status.clone(),
                    response["description"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    examples,
                ));
            }
        }
    }
    all
}

// Invariant: a problem example only ever shows a code its response names (so it is a
// code that operation can return), with that response's status, and every code a
// response names has its example: no operation shows another's errors.
#[test]
fn every_problem_example_is_a_code_its_response_names() {
    let doc = document();
    let known = documented_codes(&doc);
    let mut checked = 0;
    for ((method, path), status, description, examples) in problem_examples(&doc) {
        let named: BTreeSet<String> = words(&description)
            .filter(|w| known.contains(*w))
            .map(str::to_string)
            .collect();
        let shown: BTreeSet<String> = examples.iter().map(|(k, _)| k.clone()).collect();
        assert_same(
            &format!("the codes {method} {path} {status} names"),
            &named,
            "the codes its examples show",
            &shown,
        );
        for (key, example) in examples {
            let body = &example["value"];
            let code = body["code"].as_str().unwrap_or_default();
            assert_eq!(
                code, key,
                "{method} {path} {status}: example {key} shows {code}"
            );
            assert!(
                named.contains(code),
                "{method} {path} {status}: the example {code} is not a code of this response ({description:?})"
            );
            assert_eq!(
                body["status"].to_string(),
                status,
                "{method} {path}: the {code} example has another status"
            );
            let meaning = ProblemCode::ALL
                .iter()
                .find(|c| c.as_str() == code)
                .map(|c| c.meaning())
                .unwrap_or_default();
            assert!(
                meaning.contains(status.as_str())
                    || meaning.starts_with("4xx") && status.starts_with('4'),
                "{method} {path}: {code} is never answered with {status} ({meaning})"
            );
            for member in ["type", "title", "detail"] {
                assert!(
                    body[member].is_string(),
                    "{method} {path} {status} {code}: {member}"
                );
            }
            if code == "VALIDATION_ERROR" {
                assert!(
                    body["errors"][0]["field"].is_string(),
                    "{method} {path}: errors"
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 100, "only {checked} examples");
}

#[test]
fn the_reason_of_coupon_not_usable_is_documented() {
    let doc = document();
    let description = doc["components"]["schemas"]["ProblemCode"]["description"]
        .as_str()
        .unwrap_or_default();
    for reason in coupon::Unusable::ALL {
        assert!(
            description.contains(reason.code()),
            "the reason {} is not documented",
            reason.code()
        );
    }
}

// Invariant: Swagger UI lists operations under tags in the order of API.md's sections,
// and every operation has a one-line summary.
#[test]
fn tags_come_in_the_order_of_api_md_and_every_operation_has_a_summary() {
    let doc = document();
    let tags: Vec<&str> = doc["tags"]
        .as_array()
        .expect("top-level tags")
        .iter()
        .map(|t| t["name"].as_str().expect("a tag name"))
        .collect();
    assert_eq!(
        tags,
        ["health", "products", "balance", "cart", "coupons", "orders", "outbox"]
    );
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in OPERATIONS {
            let Some(op) = item.get(*method) else {
                continue;
            };
            let summary = op["summary"].as_str().unwrap_or_default();
            assert!(
                !summary.trim().is_empty() && !summary.contains('\n'),
                "{method} {path}: summary {summary:?}"
            );
            let tag = op["tags"][0].as_str().unwrap_or_default();
            assert!(
                tags.contains(&tag),
                "{method} {path}: tag {tag:?} is not listed"
            );
        }
    }
}

#[test]
fn every_post_documents_the_idempotency_key_and_its_codes() {
    let doc = document();
    for ((method, path), responses) in problem_responses(&doc) {
        if method != "POST" {
            continue;
        }
        let parameters = doc["paths"][&path]["post"]["parameters"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(
            parameters
                .iter()
                .any(|p| p["name"] == "Idempotency-Key" && p["in"] == "header"),
            "POST {path}: the Idempotency-Key header"
        );
        let named = |code: &str, status: &str| {
            responses
                .iter()
                .any(|(s, d)| s == status && words(d).any(|w| w == code))
        };
        assert!(
            named("REQUEST_IN_PROGRESS", "409"),
            "POST {path}: 409 REQUEST_IN_PROGRESS"
        );
        assert!(
            named("IDEMPOTENCY_KEY_REUSED", "422"),
            "POST {path}: 422 IDEMPOTENCY_KEY_REUSED"
        );
    }
}

#[test]
fn each_route_documents_the_codes_api_md_lists_for_it() {
    let Some(text) = api_md() else {
        eprintln!("API.md not found; nothing to compare");
        return;
    };
    let doc = document();
    let responses: BTreeMap<(String, String), Vec<(String, String)>> = problem_responses(&doc)
        .into_iter()
        .map(|((m, p), r)| ((m, shape(&p)), r))
        .collect();
    let mut checked = 0;
    for line in text.lines() {
        let routes = api_md_routes(line);
        let Some((method, path)) = routes.iter().next() else {
            continue;
        };
        if pending_routes().contains(&(method.clone(), shape(path))) {
            continue;
        }
        let Some(documented) = responses.get(&(method.clone(), shape(path))) else {
            panic!("{method} {path} of API.md is not documented");
        };
        for code in codes_in(line).difference(&pending_codes()) {
            assert!(
                documented.iter().any(|(_, d)| words(d).any(|w| w == code)),
                "{method} {path}: API.md lists {code}, the document does not"
            );
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} route codes found in API.md");
}

#[test]
fn api_md_parsing_finds_routes_and_codes() {
    let text = "| `GET /api/v1/products/popular?days=3` | | 200 | |\n\
                | `POST /api/v1/orders` | x | 201 | 404 `PRODUCT_NOT_FOUND` (with `product_ids`), 409 `OUT_OF_STOCK`, 422 |\n\
                | `GET /metrics` | text |\n\
                errors: `code: VALIDATION_ERROR`; a wrong method: 405\n  `METHOD_NOT_ALLOWED`;\n\
                `{\"status\": 409, \"code\": \"OUT_OF_STOCK\"}`, status `PAID`, 2026 `NOT_A_CODE_HERE` is";
    let routes = api_md_routes(text);
    let expected: Routes = [
        ("GET".to_string(), "/api/v1/products/popular".to_string()),
        ("POST".to_string(), "/api/v1/orders".to_string()),
    ]
    .into();
    assert_eq!(routes, expected);
    let codes: Vec<String> = codes_in(text).into_iter().collect();
    assert_eq!(
        codes,
        [
            "METHOD_NOT_ALLOWED",
            "OUT_OF_STOCK",
            "PRODUCT_NOT_FOUND",
            "VALIDATION_ERROR"
        ]
    );
    assert_eq!(
        shape("/api/v1/orders/{order_id}/cancel"),
        "/api/v1/orders/{}/cancel"
    );
}

/// The template with each parameter filled in (ids 1, a UUID for `event_id`).
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|segment| match segment {
            "{event_id}" => "00000000-0000-4000-8000-000000000001",
            s if s.starts_with('{') => "1",
            s => s,
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn every_contract_route_is_served_and_other_methods_are_405() {
    let app = spawn_app().await;
    for (method, path) in CONTRACT {
        let url = concrete(path);
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let r = app.request(method.clone(), &url, None, None).await;
        assert!(
            r.status != 405 && r.body["code"] != "NOT_FOUND",
            "{method} {url} is not served: {} {}",
            r.status,
            r.body
        );
        // a method this path does not take
        let taken: Vec<&str> = CONTRACT
            .iter()
            .filter(|(_, p)| *p == *path)
            .map(|(m, _)| *m)
            .collect();
        let other = ["PATCH", "PUT", "DELETE", "POST", "GET"]
            .into_iter()
            .find(|m| !taken.contains(m))
            .expect("a method the path does not take");
        let r = app
            .request(
                Method::from_bytes(other.as_bytes()).unwrap(),
                &url,
                None,
                None,
            )
            .await;
        r.assert_problem(405, "METHOD_NOT_ALLOWED");
    }
    // `popular` is not taken for a product id
    let r = app.get("/api/v1/products/popular", None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body["items"].is_array());
}

/// A property of a documented request schema.
fn property<'a>(doc: &'a Value, schema: &str, field: &str) -> &'a Value {
    let p = &doc["components"]["schemas"][schema]["properties"][field];
    assert!(p.is_object(), "{schema}.{field} is not documented");
    p
}

/// The documented `minimum`/`maximum` of `schema.field` are exactly what `accepts`
/// (the domain's own validation) lets through: the bound in, one past it out.
#[track_caller]
fn assert_range(doc: &Value, schema: &str, field: &str, accepts: impl Fn(i64) -> bool) {
    let p = property(doc, schema, field);
    let min = p["minimum"].as_i64();
    let max = p["maximum"].as_i64();
    assert!(min.is_some(), "{schema}.{field} documents no minimum: {p}");
    if let Some(min) = min {
        assert!(
            accepts(min),
            "{schema}.{field}: {min} is documented but refused"
        );
        assert!(
            !accepts(min - 1),
            "{schema}.{field}: {} is accepted",
            min - 1
        );
    }
    if let Some(max) = max {
        assert!(
            accepts(max),
            "{schema}.{field}: {max} is documented but refused"
        );
        assert!(
            !accepts(max + 1),
            "{schema}.{field}: {} is accepted",
            max + 1
        );
    } else {
        assert!(accepts(i64::MAX), "{schema}.{field}: no maximum documented");
    }
}

#[track_caller]
fn assert_length(doc: &Value, schema: &str, field: &str, accepts: impl Fn(String) -> bool) {
    let p = property(doc, schema, field);
    let min = p["minLength"].as_u64().expect("minLength") as usize;
    let max = p["maxLength"].as_u64().expect("maxLength") as usize;
    assert!(accepts("x".repeat(min.max(1))));
    assert!(
        min == 0 || !accepts("x".repeat(min - 1)),
        "{schema}.{field}"
    );
    assert!(
        accepts("x".repeat(max)),
        "{schema}.{field}: {max} characters refused"
    );
    assert!(
        !accepts("x".repeat(max + 1)),
        "{schema}.{field}: {max}+1 accepted"
    );
}

#[test]
fn documented_request_bounds_are_the_domain_rules() {
    let doc = document();
    let d = &doc;
    assert_range(d, "ChargeRequest", "amount", |v| {
        balance::ChargeAmount::try_from(v).is_ok()
    });
    assert_length(d, "ChargeRequest", "payment_method", |s| {
        balance::PaymentMethod::try_from(s).is_ok()
    });
    assert_range(d, "CreateProductRequest", "price", |v| {
        stock::Price::try_from(v).is_ok()
    });
    assert_range(d, "CreateProductRequest", "stock", |v| {
        stock::StockLevel::try_from(v).is_ok()
    });
    assert_length(d, "CreateProductRequest", "name", |s| {
        stock::ProductName::try_from(s).is_ok()
    });
    // non-zero is said in words; the ends are the schema's
    assert_range(d, "StockAdjustmentRequest", "delta", |v| {
        v == 0 || stock::StockDelta::try_from(v).is_ok()
    });
    assert_range(d, "PutCartItemRequest", "quantity", |v| {
        order::cart::CartQuantity::try_from(v).is_ok()
    });
    assert_range(d, "OrderItemRequest", "quantity", |v| {
        kernel::Quantity::try_from(v).is_ok_and(|q| q.get() <= order::MAX_LINE_QUANTITY)
    });
    let positive_id = |v: i64| kernel::UserId::try_from(v).is_ok();
    assert_range(d, "OrderItemRequest", "product_id", positive_id);
    assert_range(d, "PlaceOrderRequest", "user_id", positive_id);
    assert_range(d, "PlaceOrderRequest", "coupon_id", positive_id);
    assert_range(d, "IssueRequest", "user_id", positive_id);
    let items = property(d, "PlaceOrderRequest", "items");
    assert_eq!(items["minItems"], 1);
    assert_eq!(items["maxItems"], order::MAX_LINES);
    // FIXED bounds; PERCENT's 1..=100 is said in the description
    assert_range(d, "CreateCouponRequest", "discount_value", |v| {
        coupon::Discount::new(coupon::DiscountType::Fixed, v).is_ok()
    });
    assert_range(d, "CreateCouponRequest", "min_order_amount", |v| {
        kernel::Money::try_from(v).is_ok()
    });
    assert_range(d, "CreateCouponRequest", "total_quantity", |v| {
        kernel::Quantity::try_from(v).is_ok()
    });
    // the cap of a PERCENT coupon
    assert_range(d, "CreateCouponRequest", "max_discount", |v| {
        coupon::Discount::with_cap(coupon::DiscountType::Percent, 10, Some(v)).is_ok()
    });
    assert_length(d, "CreateCouponRequest", "name", |s| {
        coupon::CouponName::try_from(s).is_ok()
    });
    let issue_to = property(d, "CreateCouponRequest", "issue_to");
    assert_eq!(issue_to["maxItems"], coupon::MAX_ISSUE_TO);
    assert_eq!(issue_to["items"]["minimum"], 1);
}

/// Every request body refuses fields the contract does not name (API.md: a typo such
/// as `coupon` for `coupon_id` is a 422, never ignored): each body schema, and each
/// object schema it refers to, says `additionalProperties: false`, which
/// `#[serde(deny_unknown_fields)]` on the request struct gives.
#[test]
fn every_request_body_refuses_unknown_fields() {
    let doc = document();
    let schemas = &doc["components"]["schemas"];
    let mut checked = BTreeSet::new();
    let mut pending: Vec<String> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if let Some(r) = op
                .pointer("/requestBody/content/application~1json/schema/$ref")
                .and_then(Value::as_str)
            {
                pending.push(r.rsplit('/').next().unwrap().to_string());
            } else {
                assert!(
                    op.get("requestBody").is_none(),
                    "{method} {path}: a request body that is not a named schema"
                );
            }
        }
    }
    while let Some(name) = pending.pop() {
        if !checked.insert(name.clone()) {
            continue;
        }
        let schema = &schemas[&name];
        if schema["type"] != "object" {
            continue;
        }
        assert_eq!(
            schema["additionalProperties"],
            Value::Bool(false),
            "{name} accepts unknown fields: add #[serde(deny_unknown_fields)]"
        );
        let text = schema.to_string();
        for piece in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            pending.push(piece.split('"').next().unwrap().to_string());
        }
    }
    assert!(checked.contains("PlaceOrderRequest") && checked.contains("OrderItemRequest"));
}

/// Operations that answer without the database: liveness, and readiness, which reports
/// a database that does not answer as its own 503 `NOT_READY`.
const WITHOUT_DATABASE: &[(&str, &str)] = &[("GET", "/health/live"), ("GET", "/health/ready")];

// Invariant (API.md, Conventions): a request that waits on the database longer than the
// configured bound gets 503 SERVICE_UNAVAILABLE, so every operation that uses the
// database (all but health) documents that answer, with its example body.
#[test]
fn every_operation_on_the_database_documents_503_service_unavailable() {
    let doc = document();
    let mut missing = Vec::new();
    let mut checked = 0;
    for ((method, path), responses) in problem_responses(&doc) {
        if WITHOUT_DATABASE.contains(&(method.as_str(), path.as_str())) {
            continue;
        }
        checked += 1;
        let named = responses
            .iter()
            .any(|(s, d)| s == "503" && words(d).any(|w| w == "SERVICE_UNAVAILABLE"));
        let example = &doc["paths"][&path][method.to_ascii_lowercase()]["responses"]["503"]
            ["content"][commerce_api::error::PROBLEM_JSON]["examples"]["SERVICE_UNAVAILABLE"]
            ["value"];
        if !named || example["code"] != "SERVICE_UNAVAILABLE" || example["status"] != 503 {
            missing.push(format!("{method} {path}"));
        }
    }
    assert!(
        missing.is_empty(),
        "these operations do not document 503 SERVICE_UNAVAILABLE with its example: {missing:#?}"
    );
    assert_eq!(checked, documented().len() - WITHOUT_DATABASE.len());
    assert!(checked >= 30, "only {checked} operations");
}
