//! Request helpers shared by every route: the one JSON body extractor, the one path-id
//! extractor, the body limit, paging, list responses.

use crate::error::{json_body_error, unsupported_media_type, ApiError, FieldError, ProblemCode};
use actix_web::dev::Payload;
use actix_web::http::{header, StatusCode};
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use futures::future::LocalBoxFuture;
use futures::StreamExt;
use kernel::{
    ChargeId, CouponId, NotificationId, OrderId, Page, PageRequest, ProductId, RefundId, UserId,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::future::{ready, Ready};

/// The request body cap in bytes (`server.max_body_bytes`), in the app data of every
/// request. The one place that puts it in words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimit(pub usize);

impl BodyLimit {
    /// The default of `config/default.toml`.
    pub const DEFAULT: BodyLimit = BodyLimit(64 * 1024);

    /// The limit of a request's app (the default when none is configured).
    pub fn of(req: &HttpRequest) -> BodyLimit {
        req.app_data::<web::Data<BodyLimit>>()
            .map_or(Self::DEFAULT, |l| *l.get_ref())
    }

    /// The limit in words: `64 KiB`, `1 MiB`, `1000 bytes`.
    pub fn describe(self) -> String {
        let n = self.0;
        if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
            format!("{} MiB", n >> 20)
        } else if n >= 1 << 10 && n.is_multiple_of(1 << 10) {
            format!("{} KiB", n >> 10)
        } else {
            format!("{n} bytes")
        }
    }

    /// 413 PAYLOAD_TOO_LARGE naming the configured limit.
    pub fn too_large(self) -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ProblemCode::PayloadTooLarge,
            format!("the request body is larger than {}", self.describe()),
        )
    }
}

/// A JSON request body: the one body extractor of every handler. `application/json`
/// (or `+json`) up to the [`BodyLimit`]; malformed JSON is 400, a value of the wrong
/// type, a missing field or a field the request does not know is 422
/// `VALIDATION_ERROR` naming that field (`amount`, `items[0].quantity`). Request
/// structs carry `#[serde(deny_unknown_fields)]`, so a typo is refused, never ignored.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T> Json<T> {
    /// The body.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T: TryIntoDomain> Json<T> {
    /// The domain value the body stands for, or 422 naming every invalid field.
    pub fn try_into_domain(self) -> Result<T::Domain, ApiError> {
        self.0.try_into_domain()
    }
}

/// A request body that stands for a domain value: the one way a handler turns a body
/// into a command (`body.try_into_domain()?`). The domain types check themselves
/// (`TryFrom`); the body names every field that fails in one 422 `VALIDATION_ERROR`
/// ([`FieldErrors`]).
pub trait TryIntoDomain {
    /// The domain value the body stands for.
    type Domain;
    /// The domain value, or 422 naming every invalid field.
    fn try_into_domain(self) -> Result<Self::Domain, ApiError>;
}

/// The invalid fields of one request, gathered so that one 422 names them all.
#[derive(Debug, Default)]
pub struct FieldErrors(Vec<FieldError>);

impl FieldErrors {
    /// The value of a domain check of `field`, or `None` with its error recorded.
    pub fn check<T, E: std::fmt::Display>(
        &mut self,
        field: &str,
        checked: Result<T, E>,
    ) -> Option<T> {
        checked.map_err(|e| self.push(field, e.to_string())).ok()
    }

    /// Records that `field` is invalid.
    pub fn push(&mut self, field: impl AsRef<str>, message: impl AsRef<str>) {
        self.0.push(FieldError::new(field, message));
    }

    /// Whether no field failed so far.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `value` when no field failed (it is then `Some`), else 422 naming every field.
    pub fn finish<T>(self, value: Option<T>) -> Result<T, ApiError> {
        match value {
            Some(v) if self.0.is_empty() => Ok(v),
            _ => Err(ApiError::validation(self.0)),
        }
    }
}

impl<T> std::ops::Deref for Json<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = BodyLimit::of(req);
        let is_json = matches!(
            req.mime_type(),
            Ok(Some(mime)) if mime.subtype() == "json" || mime.suffix().is_some_and(|s| s == "json")
        );
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let payload = payload.take();
        Box::pin(async move {
            if !is_json {
                return Err(unsupported_media_type());
            }
            if declared.is_some_and(|n| n > limit.0) {
                return Err(limit.too_large());
            }
            let body = read_body(payload, limit).await?;
            let de = &mut serde_json::Deserializer::from_slice(&body);
            let value: T =
                serde_path_to_error::deserialize(&mut *de).map_err(|e| json_body_error(&e))?;
            de.end()
                .map_err(|e| ApiError::bad_request("body", format!("malformed JSON: {e}")))?;
            Ok(Json(value))
        })
    }
}

/// The query string as `T`, strictly: a parameter of the wrong type (`user_id=abc`,
/// `limit=`) is 400 `VALIDATION_ERROR` naming that parameter, and query structs carry
/// `#[serde(deny_unknown_fields)]`, so a typo (`stauts=PAID`) is refused, not ignored.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T> Query<T> {
    /// The parameters.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Query<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Query<T> {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let raw = req.query_string().as_bytes();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(raw));
        ready(
            serde_path_to_error::deserialize(de)
                .map(Query)
                .map_err(|e| crate::error::query_parameter_error(&e)),
        )
    }
}

/// Reads a whole body, refusing it as soon as it passes the limit.
pub async fn read_body(mut payload: Payload, limit: BodyLimit) -> Result<web::Bytes, ApiError> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|_| ApiError::bad_request("body", "the body could not be read"))?;
        if body.len() + chunk.len() > limit.0 {
            return Err(limit.too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// A value a path segment holds: an id in plain decimal ([`kernel::parse_plain_id`])
/// or an event's UUID.
pub trait PathValue: Sized {
    /// What a valid segment looks like, for the 400 message.
    const EXPECTED: &'static str;
    /// The value, or `None` when the segment is not one.
    fn parse(raw: &str) -> Option<Self>;
}

macro_rules! id_path_values {
    ($($id:ty),+) => {$(
        impl PathValue for $id {
            const EXPECTED: &'static str =
                "must be a positive integer id in plain decimal (no sign, no leading zero)";
            fn parse(raw: &str) -> Option<Self> {
                raw.parse().ok()
            }
        }
    )+};
}
id_path_values!(
    UserId,
    ProductId,
    OrderId,
    CouponId,
    ChargeId,
    NotificationId,
    RefundId
);

impl PathValue for uuid::Uuid {
    const EXPECTED: &'static str = "must be a UUID";
    fn parse(raw: &str) -> Option<Self> {
        uuid::Uuid::try_parse(raw).ok()
    }
}

/// The path parameter `name` of the matched route: 400 VALIDATION_ERROR naming it
/// unless it is a `T`.
pub fn path_value<T: PathValue>(req: &HttpRequest, name: &str) -> Result<T, ApiError> {
    req.match_info()
        .get(name)
        .and_then(T::parse)
        .ok_or_else(|| ApiError::bad_request(name, T::EXPECTED))
}

/// The one path-id extractor: the **last** parameter of the matched route (the resource
/// the path names: `{id}` of `/products/{id}/stock`, `{product_id}` of
/// `/users/{user_id}/cart/items/{product_id}`), parsed strictly as a `T`; `07`, `+7`
/// and ` 7` are not ids (400 VALIDATION_ERROR naming the parameter). The
/// `{user_id}` of `/users/{user_id}/...` is read by [`crate::auth::UserScope`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathId<T>(pub T);

impl<T> PathId<T> {
    /// The id.
    pub fn get(self) -> T {
        self.0
    }
}

impl<T: PathValue> FromRequest for PathId<T> {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let last = req
            .match_info()
            .iter()
            .last()
            .map(|(name, _)| name.to_string());
        ready(match last {
            Some(name) => path_value(req, &name).map(PathId),
            None => Err(ApiError::internal(anyhow::anyhow!(
                "PathId used on a route without a path parameter"
            ))),
        })
    }
}

/// `?limit=&cursor=` of every list endpoint.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// 1..=100, default 20
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page
    pub cursor: Option<String>,
}

impl ListQuery {
    pub fn page(&self) -> Result<PageRequest, ApiError> {
        let after = self.cursor.as_deref().map(decode_cursor).transpose()?;
        let limit = self.limit.unwrap_or(i64::from(PageRequest::DEFAULT_LIMIT));
        PageRequest::new(limit, after).map_err(|e| ApiError::bad_request("limit", e.to_string()))
    }
}

const CURSOR_PREFIX: &str = "k1:";

/// Cursors are opaque to clients: a versioned, encoded key.
pub fn encode_cursor(key: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{CURSOR_PREFIX}{key}"))
}

pub fn decode_cursor(raw: &str) -> Result<i64, ApiError> {
    URL_SAFE_NO_PAD
        .decode(raw)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| {
            s.strip_prefix(CURSOR_PREFIX)
                .and_then(|k| k.parse::<i64>().ok())
        })
        .ok_or_else(|| ApiError::bad_request("cursor", "not a cursor this API returned"))
}

/// `{"items": [...], "next_cursor": "..." | null}`
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ListResponse<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> ListResponse<T> {
    pub fn from_page<U>(page: Page<U>, f: impl FnMut(U) -> T) -> Self {
        let next_cursor = page.next.map(encode_cursor);
        ListResponse {
            items: page.items.into_iter().map(f).collect(),
            next_cursor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_limit_is_put_in_words_in_one_place() {
        assert_eq!(BodyLimit(65_536).describe(), "64 KiB");
        assert_eq!(BodyLimit(1 << 20).describe(), "1 MiB");
        assert_eq!(BodyLimit(1000).describe(), "1000 bytes");
        assert_eq!(
            BodyLimit(2048).too_large().to_string(),
            "413 PAYLOAD_TOO_LARGE: the request body is larger than 2 KiB"
        );
    }

    #[test]
    fn path_values_are_plain_decimal_ids_or_uuids() {
        assert_eq!(
            <kernel::OrderId as PathValue>::parse("12").map(|i| i.get()),
            Some(12)
        );
        for bad in ["012", "+12", " 12", "12 ", "0", ""] {
            assert!(
                <kernel::OrderId as PathValue>::parse(bad).is_none(),
                "{bad:?}"
            );
        }
        assert!(<uuid::Uuid as PathValue>::parse("0b5e3bb1-1f5c-4c8e-9d1e-6f2f2b4f3c11").is_some());
        assert!(<uuid::Uuid as PathValue>::parse("nope").is_none());
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        assert_eq!(decode_cursor(&encode_cursor(12345)).unwrap(), 12345);
        assert!(decode_cursor("not-base64!").is_err());
        assert!(decode_cursor(&URL_SAFE_NO_PAD.encode("x:1")).is_err());
    }

    #[test]
    fn limit_defaults_to_20_and_is_bounded() {
        let q = ListQuery {
            limit: None,
            cursor: None,
        };
        assert_eq!(q.page().unwrap().limit(), 20);
        let q = ListQuery {
            limit: Some(101),
            cursor: None,
        };
        assert_eq!(q.page().unwrap_err().code(), "VALIDATION_ERROR");
    }
}
