//! Keyset paging, the one way the adapter's newest-first lists page: order by the list's
//! key descending, continue below the cursor, fetch one row more than the page to know
//! whether another page follows ([`kernel::PageRequest::page`] builds the page from
//! those rows). (The product list runs in ascending id with its stock summed from the
//! slots, so it is one prepared statement of its own: `stock.rs`.)

use diesel::dsl::{Desc, Lt};
use diesel::expression::Expression;
use diesel::query_dsl::methods::{FilterDsl, LimitDsl, OrderDsl};
use diesel::sql_types::BigInt;
use diesel::ExpressionMethods;
use kernel::PageRequest;

/// `query` ordered by `key` descending, below the cursor of `page`, limited to
/// `page.fetch_limit()` rows. `query` is a boxed select (`.into_boxed()`), so each step
/// keeps its type.
pub(crate) fn newest_first<Q, K>(query: Q, key: K, page: PageRequest) -> Q
where
    K: Expression<SqlType = BigInt> + ExpressionMethods + Copy,
    Q: FilterDsl<Lt<K, i64>, Output = Q> + OrderDsl<Desc<K>, Output = Q> + LimitDsl<Output = Q>,
{
    let query = match page.after() {
        Some(after) => OrderDsl::order(FilterDsl::filter(query, key.lt(after)), key.desc()),
        None => OrderDsl::order(query, key.desc()),
    };
    LimitDsl::limit(query, page.fetch_limit())
}
