use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("limit must be between 1 and {max}, got {got}")]
/// A page size outside 1..=[`PageRequest::MAX_LIMIT`].
pub struct PageRequestError {
    /// The limit asked for.
    pub got: i64,
    /// The largest limit allowed.
    pub max: u16,
}

/// Keyset paging: at most `limit` items that come after the item keyed `after`
/// in the list's own order (each list documents its order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    limit: u16,
    after: Option<i64>,
}

impl PageRequest {
    /// The most items one page holds.
    pub const MAX_LIMIT: u16 = 100;
    /// The page size when the caller names none.
    pub const DEFAULT_LIMIT: u16 = 20;

    /// A request for `limit` items (1..=[`Self::MAX_LIMIT`]) after the item keyed `after`
    /// (`None`: from the start of the list).
    pub fn new(limit: i64, after: Option<i64>) -> Result<Self, PageRequestError> {
        match u16::try_from(limit) {
            Ok(l) if (1..=Self::MAX_LIMIT).contains(&l) => Ok(Self { limit: l, after }),
            _ => Err(PageRequestError {
                got: limit,
                max: Self::MAX_LIMIT,
            }),
        }
    }

    /// The first `limit` items of a list (clamped into 1..=[`Self::MAX_LIMIT`]).
    pub fn first(limit: u16) -> Self {
        Self {
            limit: limit.clamp(1, Self::MAX_LIMIT),
            after: None,
        }
    }

    /// How many items the page holds at most.
    pub fn limit(&self) -> u16 {
        self.limit
    }

    /// The key of the item to continue after (`None`: from the start).
    pub fn after(&self) -> Option<i64> {
        self.after
    }

    /// Adapters fetch one more row than the limit to know whether a next page exists.
    pub fn fetch_limit(&self) -> i64 {
        i64::from(self.limit) + 1
    }

    /// Builds the page from `limit + 1` fetched rows, using `key` for the cursor.
    pub fn page<T>(&self, mut rows: Vec<T>, key: impl Fn(&T) -> i64) -> Page<T> {
        let next = if rows.len() > usize::from(self.limit) {
            rows.truncate(usize::from(self.limit));
            rows.last().map(&key)
        } else {
            None
        };
        Page { items: rows, next }
    }
}

impl Default for PageRequest {
    fn default() -> Self {
        Self::first(Self::DEFAULT_LIMIT)
    }
}

/// One page of a list and the key to continue after, if there is more.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Page<T> {
    /// The items, in the list's order.
    pub items: Vec<T>,
    /// The key to continue after (the last item's); `None` on the last page.
    pub next: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_is_bounded() {
        assert!(PageRequest::new(0, None).is_err());
        assert!(PageRequest::new(101, None).is_err());
        assert_eq!(PageRequest::new(100, Some(4)).unwrap().after(), Some(4));
    }

    #[test]
    fn page_sets_cursor_only_when_more_rows_exist() {
        let req = PageRequest::new(2, None).unwrap();
        let full = req.page(vec![10, 9, 8], |v| *v);
        assert_eq!(
            full,
            Page {
                items: vec![10, 9],
                next: Some(9)
            }
        );
        let last = req.page(vec![10, 9], |v| *v);
        assert_eq!(
            last,
            Page {
                items: vec![10, 9],
                next: None
            }
        );
    }
}
