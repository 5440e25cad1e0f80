//! One error type for every handler, rendered as RFC 9457 problem+json with a stable
//! `code`. 5xx are logged with their whole cause chain and never show internals.

use crate::extract::BodyLimit;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::ServiceResponse;
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use postgres_adapter::DatabaseUnavailable;
use serde::Serialize;
use serde_json::{Map, Value};
use std::fmt;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// One invalid field of a request.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// Where: a body field (`amount`, `items[0].quantity`), a path or query parameter.
    pub field: String,
    pub message: String,
}

/// The most characters of a field name an error shows (an unknown field is named by
/// what the client sent).
pub const MAX_FIELD_CHARS: usize = 64;
/// The most characters of a message an error shows (serde quotes offending values).
pub const MAX_MESSAGE_CHARS: usize = 160;
/// The most field errors one problem lists; the detail says how many more there were.
pub const MAX_FIELD_ERRORS: usize = 20;

/// At most `max` characters of `text`, cut with "…": what an error body may echo of
/// the client's input (API.md: "never more than a short excerpt").
pub fn excerpt(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_string(),
        Some((cut, _)) => format!("{}…", &text[..cut]),
    }
}

impl FieldError {
    /// A field error; both parts are cut to a short excerpt.
    pub fn new(field: impl AsRef<str>, message: impl AsRef<str>) -> Self {
        Self {
            field: excerpt(field.as_ref(), MAX_FIELD_CHARS),
            message: excerpt(message.as_ref(), MAX_MESSAGE_CHARS),
        }
    }
}

/// The problem+json body (documentation schema).
#[derive(Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[schema(example = "/problems/out-of-stock")]
    pub r#type: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub code: ProblemCode,
    /// Field errors (VALIDATION_ERROR only).
    #[schema(nullable = false)]
    pub errors: Option<Vec<FieldError>>,
}

/// Declares [`ProblemCode`]: each variant, its wire form and (doc comment) what it
/// means. The enum, [`ProblemCode::ALL`], the wire forms and the documented schema all
/// come from this one list, so a code the server can emit is a documented code.
macro_rules! problem_codes {
    ($($(#[doc = $doc:literal])+ $variant:ident = $code:literal,)+) => {
        /// The stable machine-readable `code` of a problem+json body: every code the
        /// server can answer with. [`ApiError`] takes one, so an undocumented code
        /// cannot be emitted.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ProblemCode {
            $($(#[doc = $doc])+ $variant,)+
        }

        impl ProblemCode {
            /// Every code, in declaration order.
            pub const ALL: &'static [ProblemCode] = &[$(ProblemCode::$variant,)+];

            /// The wire form, e.g. `OUT_OF_STOCK`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ProblemCode::$variant => $code,)+
                }
            }

            /// What the code means and the status it comes with.
            pub fn meaning(self) -> &'static str {
                match self {
                    $(ProblemCode::$variant => concat!($($doc),+).trim(),)+
                }
            }
        }
    };
}

problem_codes! {
    /// 400 (malformed JSON, path or query) or 422 (a field's value is refused): the
    /// request is not valid and nothing changed; `errors` names the fields.
    ValidationError = "VALIDATION_ERROR",
    /// 413: the request body is over the configured limit
    /// (`server.max_body_bytes`, 64 KiB by default).
    PayloadTooLarge = "PAYLOAD_TOO_LARGE",
    /// 415: the request body is not `application/json`.
    UnsupportedMediaType = "UNSUPPORTED_MEDIA_TYPE",
    /// 404: no such path.
    NotFound = "NOT_FOUND",
    /// 405: the path does not take this method (`Allow` lists those it takes).
    MethodNotAllowed = "METHOD_NOT_ALLOWED",
    /// 4xx: any other request the HTTP layer refuses.
    BadRequest = "BAD_REQUEST",
    /// 401: the bearer token is missing or invalid.
    Unauthorized = "UNAUTHORIZED",
    /// 403: the token is valid but may not act on this user or resource.
    Forbidden = "FORBIDDEN",
    /// 422: this `Idempotency-Key` was used with a different request.
    IdempotencyKeyReused = "IDEMPOTENCY_KEY_REUSED",
    /// 409: a request with this `Idempotency-Key` is still being processed.
    RequestInProgress = "REQUEST_IN_PROGRESS",
    /// 404: no such product (`product_ids` names them).
    ProductNotFound = "PRODUCT_NOT_FOUND",
    /// 409: not enough stock (`product_ids` names the products).
    OutOfStock = "OUT_OF_STOCK",
    /// 409: the order would take the user past the purchase limit (`max_per_user`) of
    /// these products (`product_ids`); nothing changed.
    PurchaseLimitExceeded = "PURCHASE_LIMIT_EXCEEDED",
    /// 422: the balance would pass 1,000,000,000 won.
    BalanceLimitExceeded = "BALANCE_LIMIT_EXCEEDED",
    /// 402: the payment gateway declined the charge; the balance is unchanged.
    PaymentDeclined = "PAYMENT_DECLINED",
    /// 503: the payment gateway did not answer; the charge is settled when it does.
    PaymentGatewayUnavailable = "PAYMENT_GATEWAY_UNAVAILABLE",
    /// 404: no such coupon.
    CouponNotFound = "COUPON_NOT_FOUND",
    /// 409: the user already owns this coupon.
    CouponAlreadyIssued = "COUPON_ALREADY_ISSUED",
    /// 409: every unit of the coupon has been issued.
    CouponSoldOut = "COUPON_SOLD_OUT",
    /// 409: the coupon cannot be issued now: outside its validity window, or deactivated.
    CouponNotActive = "COUPON_NOT_ACTIVE",
    /// 409: the coupon does not apply to this order; `reason` says why: `NOT_OWNED`,
    /// `ALREADY_USED`, `INACTIVE`, `NOT_YET_VALID`, `EXPIRED` or `BELOW_MIN_ORDER_AMOUNT`.
    CouponNotUsable = "COUPON_NOT_USABLE",
    /// 404: the user has no such notification.
    NotificationNotFound = "NOTIFICATION_NOT_FOUND",
    /// 404: no such order.
    OrderNotFound = "ORDER_NOT_FOUND",
    /// 409: the balance does not cover the order's total (`balance`, `required`).
    InsufficientBalance = "INSUFFICIENT_BALANCE",
    /// 409: the order's status does not allow this.
    InvalidOrderState = "INVALID_ORDER_STATE",
    /// 409: the order expired before it was paid.
    OrderExpired = "ORDER_EXPIRED",
    /// 409: a refund asks for more units than ordered and not yet refunded, or for
    /// products not in the order (`product_ids` names them).
    RefundExceedsOrder = "REFUND_EXCEEDS_ORDER",
    /// 404: no such event in the outbox.
    EventNotFound = "EVENT_NOT_FOUND",
    /// 409: only a DEAD outbox event can be retried.
    InvalidEventState = "INVALID_EVENT_STATE",
    /// 503: the database does not answer (readiness).
    NotReady = "NOT_READY",
    /// 503: the database did not answer within the configured bound
    /// (`COMMERCE__DATABASE__TIMEOUT_MS`): no free connection, or a statement took
    /// longer. Try again (with the same `Idempotency-Key`).
    ServiceUnavailable = "SERVICE_UNAVAILABLE",
    /// 500: an unexpected error; nothing of it is shown.
    InternalError = "INTERNAL_ERROR",
}

impl fmt::Display for ProblemCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ProblemCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// A string enum of every code, each explained in the description.
impl utoipa::PartialSchema for ProblemCode {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        let mut description = String::from(
            "Stable machine-readable code of a problem (the status it comes with, and \
             when):\n",
        );
        for code in ProblemCode::ALL {
            description.push_str(&format!("\n- `{}`: {}", code.as_str(), code.meaning()));
        }
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(ProblemCode::ALL.iter().map(|c| c.as_str())))
            .description(Some(description))
            .examples([ProblemCode::OutOfStock.as_str()])
            .into()
    }
}

impl utoipa::ToSchema for ProblemCode {}

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: ProblemCode,
    detail: String,
    extra: Map<String, Value>,
    cause: Option<anyhow::Error>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: ProblemCode, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            extra: Map::new(),
            cause: None,
        }
    }

    /// Adds an extension member (`product_ids`, `errors`, ...).
    pub fn with(mut self, key: &str, value: impl Serialize) -> Self {
        self.extra.insert(
            key.to_string(),
            serde_json::to_value(value).unwrap_or(Value::Null),
        );
        self
    }

    /// The wire form of the code, e.g. `OUT_OF_STOCK`.
    pub fn code(&self) -> &'static str {
        self.code.as_str()
    }

    /// 422 VALIDATION_ERROR naming the fields (at most [`MAX_FIELD_ERRORS`] of them).
    pub fn validation(mut errors: Vec<FieldError>) -> Self {
        let more = errors.len().saturating_sub(MAX_FIELD_ERRORS);
        errors.truncate(MAX_FIELD_ERRORS);
        let mut detail = errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; ");
        if more > 0 {
            detail.push_str(&format!(" (and {more} more)"));
        }
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ProblemCode::ValidationError,
            detail,
        )
        .with("errors", errors)
    }

    /// 400 VALIDATION_ERROR for a malformed path, query or body.
    pub fn bad_request(field: &str, message: impl AsRef<str>) -> Self {
        let error = FieldError::new(field, message);
        Self::new(
            StatusCode::BAD_REQUEST,
            ProblemCode::ValidationError,
            format!("{}: {}", error.field, error.message),
        )
        .with("errors", vec![error])
    }

    pub fn not_found(code: ProblemCode, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, detail)
    }

    pub fn conflict(code: ProblemCode, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, ProblemCode::Unauthorized, detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, ProblemCode::Forbidden, detail)
    }

    /// An unexpected failure: 500, cause logged, nothing of it shown.
    pub fn internal(cause: anyhow::Error) -> Self {
        let mut e = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ProblemCode::InternalError,
            "an unexpected error occurred",
        );
        e.cause = Some(cause);
        e
    }

    /// A dependency is down (database, gateway): 503, cause logged.
    pub fn unavailable(code: ProblemCode, detail: impl Into<String>, cause: anyhow::Error) -> Self {
        let mut e = Self::new(StatusCode::SERVICE_UNAVAILABLE, code, detail);
        e.cause = Some(cause);
        e
    }

    pub(crate) fn body(&self) -> Value {
        let mut body = Map::new();
        body.insert(
            "type".into(),
            Value::String(problem_type(self.code.as_str())),
        );
        body.insert("title".into(), Value::String(title(self.status)));
        body.insert("status".into(), Value::from(self.status.as_u16()));
        body.insert("detail".into(), Value::String(self.detail.clone()));
        body.insert("code".into(), Value::String(self.code.as_str().into()));
        for (k, v) in &self.extra {
            body.insert(k.clone(), v.clone());
        }
        Value::Object(body)
    }
}

fn problem_type(code: &str) -> String {
    format!("/problems/{}", code.to_ascii_lowercase().replace('_', "-"))
}

fn title(status: StatusCode) -> String {
    status.canonical_reason().unwrap_or("Error").to_string()
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.detail)
    }
}

/// Unexpected failures become 500, or 503 SERVICE_UNAVAILABLE when the database was
/// unavailable (a typed [`DatabaseUnavailable`] in the chain: no free connection, no
/// connection, no answer within `COMMERCE__DATABASE__TIMEOUT_MS`).
impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        if e.chain().any(|c| c.is::<kernel::ClaimLost>()) {
            // another request with the same key committed first; its answer is stored
            return ApiError::conflict(
                ProblemCode::RequestInProgress,
                "another request with this Idempotency-Key completed first; send it again to get its answer",
            );
        }
        match DatabaseUnavailable::find(&e) {
            Some(_) => ApiError::unavailable(
                ProblemCode::ServiceUnavailable,
                "the database did not answer in time; try again",
                e,
            ),
            None => ApiError::internal(e),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        if self.status.is_server_error() {
            match &self.cause {
                Some(cause) => tracing::error!(
                    code = self.code.as_str(),
                    error = format!("{cause:#}"),
                    "request failed"
                ),
                None => {
                    tracing::error!(code = self.code.as_str(), detail = %self.detail, "request failed")
                }
            }
        }
        HttpResponse::build(self.status)
            .content_type(PROBLEM_JSON)
            .json(self.body())
    }
}

/// The answer to a JSON body that could not be read: too large 413, not JSON 415,
/// malformed 400, the wrong shape 422 naming the field (`items[0].quantity`, or the
/// unknown or missing field itself).
pub fn json_body_error(err: &serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    use serde_json::error::Category;
    let inner = err.inner();
    let message = clean_message(&inner.to_string());
    match inner.classify() {
        Category::Data => {
            let path = err.path().to_string();
            let parent = if path == "." { "" } else { path.as_str() };
            // the path ends at the unknown field itself, but at the parent of a missing one
            let field = match named_field(&message) {
                Some(name) if parent == name || parent.ends_with(&format!(".{name}")) => {
                    parent.to_string()
                }
                Some(name) if parent.is_empty() => name.to_string(),
                Some(name) => format!("{parent}.{name}"),
                None if parent.is_empty() => "body".to_string(),
                None => parent.to_string(),
            };
            ApiError::validation(vec![FieldError::new(field, message)])
        }
        _ => ApiError::bad_request("body", format!("malformed JSON: {message}")),
    }
}

/// A query string that is not the parameters of its route: 400 `VALIDATION_ERROR` naming
/// the parameter (a wrong type, a missing value, a parameter the route does not know).
pub fn query_parameter_error(
    err: &serde_path_to_error::Error<serde_urlencoded::de::Error>,
) -> ApiError {
    let message = clean_message(&err.inner().to_string());
    let path = err.path().to_string();
    let field = match named_field(&message) {
        Some(name) => name.to_string(),
        None if path == "." || path.is_empty() => "query".to_string(),
        None => path,
    };
    ApiError::bad_request(&field, message)
}

/// The field serde names in "missing field `x`" and "unknown field `x`, expected ...".
fn named_field(message: &str) -> Option<&str> {
    let rest = message
        .strip_prefix("missing field `")
        .or_else(|| message.strip_prefix("unknown field `"))?;
    rest.split('`').next()
}

/// serde's message without " at line 1 column 7".
fn clean_message(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// Body errors of actix's own JSON extractor (nothing uses it; [`crate::extract::Json`]
/// is the one JSON extractor), answered as problems all the same.
pub fn json_error(err: JsonPayloadError, req: &HttpRequest) -> actix_web::Error {
    let api = match &err {
        JsonPayloadError::OverflowKnownLength { .. } | JsonPayloadError::Overflow { .. } => {
            BodyLimit::of(req).too_large()
        }
        JsonPayloadError::ContentType => unsupported_media_type(),
        _ => ApiError::bad_request("body", "malformed JSON"),
    };
    api.into()
}

/// 415 UNSUPPORTED_MEDIA_TYPE.
pub fn unsupported_media_type() -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ProblemCode::UnsupportedMediaType,
        "the request body must be application/json",
    )
}

pub fn path_error(err: PathError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::bad_request("path", err.to_string()).into()
}

pub fn query_error(err: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::bad_request("query", err.to_string()).into()
}

/// Any error response not already problem+json (actix's own 404/405, a panic's 500)
/// is rewritten as one, keeping its status.
pub fn problemize<B: MessageBody + 'static>(
    res: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    if is_problem {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let problem = match status {
        StatusCode::NOT_FOUND => ApiError::new(status, ProblemCode::NotFound, "no such resource"),
        StatusCode::METHOD_NOT_ALLOWED => ApiError::new(
            status,
            ProblemCode::MethodNotAllowed,
            "this method is not allowed on this resource",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => BodyLimit::of(res.request()).too_large(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => unsupported_media_type(),
        s if s.is_server_error() => ApiError::new(
            status,
            ProblemCode::InternalError,
            "an unexpected error occurred",
        ),
        _ => ApiError::new(status, ProblemCode::BadRequest, "the request is not valid"),
    };
    let (req, mut old) = res.into_parts();
    let mut new = HttpResponse::build(status)
        .content_type(PROBLEM_JSON)
        .body(problem.body().to_string());
    // keep headers such as Allow
    if let Some(allow) = old.headers_mut().remove(header::ALLOW).next() {
        new.headers_mut().insert(header::ALLOW, allow);
    }
    new.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    Ok(ErrorHandlerResponse::Response(
        ServiceResponse::new(req, new).map_into_right_body(),
    ))
}

/// The fallback service: unknown paths.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found(
        ProblemCode::NotFound,
        "no such resource",
    ))
}

pub type BoxedResponse = HttpResponse<BoxBody>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn problem_codes_are_distinct_screaming_snake_case_and_explained() {
        let wire: BTreeSet<&str> = ProblemCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(wire.len(), ProblemCode::ALL.len(), "a code is listed twice");
        for code in ProblemCode::ALL {
            let s = code.as_str();
            assert!(
                s.chars().all(|c| c.is_ascii_uppercase() || c == '_') && !s.starts_with('_'),
                "{s}"
            );
            assert_eq!(serde_json::to_value(code).unwrap(), s);
            assert!(code.meaning().len() > 5, "{s} has no meaning");
            assert!(
                code.meaning().chars().next().unwrap().is_ascii_digit(),
                "{s}: {}",
                code.meaning()
            );
        }
    }

    #[test]
    fn the_documented_schema_lists_every_code() {
        let schema =
            serde_json::to_value(<ProblemCode as utoipa::PartialSchema>::schema()).unwrap();
        let listed: Vec<&str> = schema["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let all: Vec<&str> = ProblemCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(listed, all);
        let description = schema["description"].as_str().unwrap();
        for code in all {
            assert!(description.contains(&format!("`{code}`")), "{code}");
        }
    }

    #[test]
    fn field_errors_and_their_count_are_bounded_excerpts() {
        let e = FieldError::new("f".repeat(1_000), "m".repeat(100_000));
        assert_eq!(e.field.chars().count(), MAX_FIELD_CHARS + 1);
        assert_eq!(e.message.chars().count(), MAX_MESSAGE_CHARS + 1);
        assert!(e.message.ends_with('…'));
        assert_eq!(excerpt("가나다", 2), "가나…");
        assert_eq!(excerpt("short", 10), "short");
        let many = (0..100)
            .map(|i| FieldError::new(format!("f{i}"), "bad"))
            .collect();
        let body = ApiError::validation(many).body();
        assert_eq!(body["errors"].as_array().unwrap().len(), MAX_FIELD_ERRORS);
        assert!(body["detail"].as_str().unwrap().ends_with("(and 80 more)"));
    }

    #[test]
    fn problem_bodies_carry_the_code_and_a_type_derived_from_it() {
        let body = ApiError::conflict(ProblemCode::OutOfStock, "none left").body();
        assert_eq!(body["code"], "OUT_OF_STOCK");
        assert_eq!(body["type"], "/problems/out-of-stock");
        assert_eq!(body["status"], 409);
    }
}
