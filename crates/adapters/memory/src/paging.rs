//! Keyset paging over rows already in the list's order.

use kernel::{Page, PageRequest};

/// Which way a list runs.
#[derive(Clone, Copy)]
pub(crate) enum Order {
    /// Ascending keys: a page continues after (above) the cursor.
    Ascending,
    /// Descending keys (newest first): a page continues below the cursor.
    Descending,
}

/// The page of `rows` (in the list's order) that `page` asks for, keyed by `key`.
pub(crate) fn keyset<T>(
    rows: impl IntoIterator<Item = T>,
    page: PageRequest,
    order: Order,
    key: impl Fn(&T) -> i64,
) -> Page<T> {
    let after = page.after();
    let fetched: Vec<T> = rows
        .into_iter()
        .filter(|row| match (after, order) {
            (None, _) => true,
            (Some(cursor), Order::Ascending) => key(row) > cursor,
            (Some(cursor), Order::Descending) => key(row) < cursor,
        })
        .take(usize::try_from(page.fetch_limit()).unwrap_or(usize::MAX))
        .collect();
    page.page(fetched, key)
}
