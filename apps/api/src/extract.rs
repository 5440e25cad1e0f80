//! Request helpers shared by every route: ids in paths, paging, list responses.

use crate::error::ApiError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use kernel::{Page, PageRequest};
use serde::{Deserialize, Serialize};

/// Parses a positive id from a path segment: 400 VALIDATION_ERROR otherwise.
pub fn parse_id<T: TryFrom<i64>>(raw: Option<&str>, field: &str) -> Result<T, ApiError> {
    raw.and_then(|s| s.parse::<i64>().ok())
        .and_then(|v| T::try_from(v).ok())
        .ok_or_else(|| ApiError::bad_request(field, "must be a positive integer id"))
}

/// `?limit=&cursor=` of every list endpoint.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
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
