//! One error type for every handler, rendered as RFC 9457 problem+json with a stable
//! `code`. 5xx are logged with their whole cause chain and never show internals.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::ServiceResponse;
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
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

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
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
    /// Stable machine-readable code, e.g. `OUT_OF_STOCK`.
    #[schema(example = "OUT_OF_STOCK")]
    pub code: String,
    /// Field errors (VALIDATION_ERROR only).
    #[schema(nullable = false)]
    pub errors: Option<Vec<FieldError>>,
}

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    detail: String,
    extra: Map<String, Value>,
    cause: Option<anyhow::Error>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
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

    pub fn code(&self) -> &'static str {
        self.code
    }

    /// 422 VALIDATION_ERROR naming the fields.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; ");
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR", detail)
            .with("errors", errors)
    }

    /// 400 VALIDATION_ERROR for a malformed path, query or body.
    pub fn bad_request(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self::new(
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            format!("{field}: {message}"),
        )
        .with("errors", vec![FieldError::new(field, message)])
    }

    pub fn not_found(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, detail)
    }

    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "FORBIDDEN", detail)
    }

    /// An unexpected failure: 500, cause logged, nothing of it shown.
    pub fn internal(cause: anyhow::Error) -> Self {
        let mut e = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_ERROR",
            "an unexpected error occurred",
        );
        e.cause = Some(cause);
        e
    }

    /// A dependency is down (database, gateway): 503, cause logged.
    pub fn unavailable(
        code: &'static str,
        detail: impl Into<String>,
        cause: anyhow::Error,
    ) -> Self {
        let mut e = Self::new(StatusCode::SERVICE_UNAVAILABLE, code, detail);
        e.cause = Some(cause);
        e
    }

    fn body(&self) -> Value {
        let mut body = Map::new();
        body.insert("type".into(), Value::String(problem_type(self.code)));
        body.insert("title".into(), Value::String(title(self.status)));
        body.insert("status".into(), Value::from(self.status.as_u16()));
        body.insert("detail".into(), Value::String(self.detail.clone()));
        body.insert("code".into(), Value::String(self.code.into()));
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

/// Unexpected failures become 500 (or 503 when the database pool gave up).
impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        let pool_exhausted = e
            .chain()
            .any(|c| c.to_string().contains("getting a database connection"));
        if pool_exhausted {
            ApiError::unavailable(
                "SERVICE_UNAVAILABLE",
                "the database is not available, try again",
                e,
            )
        } else {
            ApiError::internal(e)
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
                    code = self.code,
                    error = format!("{cause:#}"),
                    "request failed"
                ),
                None => tracing::error!(code = self.code, detail = %self.detail, "request failed"),
            }
        }
        HttpResponse::build(self.status)
            .content_type(PROBLEM_JSON)
            .json(self.body())
    }
}

/// Body errors: malformed JSON 400, wrong shape 422, too large 413, not JSON 415.
pub fn json_error(err: JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let api = match &err {
        JsonPayloadError::OverflowKnownLength { .. } | JsonPayloadError::Overflow { .. } => {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
                "the request body is larger than 64 KiB",
            )
        }
        JsonPayloadError::ContentType => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "the request body must be application/json",
        ),
        JsonPayloadError::Deserialize(e) if e.is_data() => {
            ApiError::validation(vec![FieldError::new(
                field_of(&e.to_string()),
                clean_message(&e.to_string()),
            )])
        }
        JsonPayloadError::Deserialize(e) => {
            ApiError::bad_request("body", format!("malformed JSON: {e}"))
        }
        other => ApiError::bad_request("body", other.to_string()),
    };
    api.into()
}

/// serde names the field in "missing field `x`" and "unknown variant" messages only.
fn field_of(message: &str) -> String {
    match (message.find('`'), message.starts_with("missing field")) {
        (Some(start), true) => message[start + 1..]
            .split('`')
            .next()
            .unwrap_or("body")
            .to_string(),
        _ => "body".to_string(),
    }
}

fn clean_message(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
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
    let (code, detail) = match status {
        StatusCode::NOT_FOUND => ("NOT_FOUND", "no such resource"),
        StatusCode::METHOD_NOT_ALLOWED => (
            "METHOD_NOT_ALLOWED",
            "this method is not allowed on this resource",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            "PAYLOAD_TOO_LARGE",
            "the request body is larger than 64 KiB",
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "UNSUPPORTED_MEDIA_TYPE",
            "the request body must be application/json",
        ),
        s if s.is_server_error() => ("INTERNAL_ERROR", "an unexpected error occurred"),
        _ => ("BAD_REQUEST", "the request is not valid"),
    };
    let problem = ApiError::new(status, code, detail);
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
    Err(ApiError::not_found("NOT_FOUND", "no such resource"))
}

pub type BoxedResponse = HttpResponse<BoxBody>;
