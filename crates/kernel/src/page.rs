use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("limit must be between 1 and {max}, got {got}")]
pub struct PageRequestError {
    pub got: i64,
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
    pub const MAX_LIMIT: u16 = 100;
    pub const DEFAULT_LIMIT: u16 = 20;

    pub fn new(limit: i64, after: Option<i64>) -> Result<Self, PageRequestError> {
        match u16::try_from(limit) {
            Ok(l) if (1..=Self::MAX_LIMIT).contains(&l) => Ok(Self { limit: l, after }),
            _ => Err(PageRequestError {
                got: limit,
                max: Self::MAX_LIMIT,
            }),
        }
    }

    pub fn first(limit: u16) -> Self {
        Self {
            limit: limit.clamp(1, Self::MAX_LIMIT),
            after: None,
        }
    }

    pub fn limit(&self) -> u16 {
        self.limit
    }

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
    pub items: Vec<T>,
    pub next: Option<i64>,
}

impl<T> Page<T> {
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next: self.next,
        }
    }
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
