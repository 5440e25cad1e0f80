//! The port-conformance suite: the guarantees each port documents ("MUST ..."), stated
//! once as tests that take nothing but the ports, and run against every adapter.
//!
//! An adapter's test binary provides an async function that builds a fresh, empty set
//! of [`Stores`] and expands [`port_conformance!`] with it:
//!
//! ```ignore
//! async fn stores() -> conformance::Stores { /* a fresh database */ }
//! conformance::port_conformance!(crate::stores);
//! ```
//!
//! Each test says which invariant it holds. Races run real concurrent callers (a
//! multi-threaded runtime; a database pool of several connections): an adapter that
//! holds an invariant only by luck fails them.
#![warn(missing_docs)]

pub mod balance;
pub mod cart;
pub mod coupon;
pub mod fixtures;
pub mod idempotency;
pub mod inbox;
pub mod order;
pub mod outbox;
pub mod stock;

use futures::future::BoxFuture;
use std::any::Any;
use std::sync::Arc;

/// Writes one event to the outbox in a step of its own (events are otherwise written
/// by the writer's adapter inside the writer's transaction, not through a port).
pub type Enqueue =
    Arc<dyn Fn(::outbox::Event) -> BoxFuture<'static, anyhow::Result<()>> + Send + Sync>;

/// Builds the `Idempotency-Key` store over the same data with this lease and time to live.
pub type KeysWith = Arc<
    dyn Fn(std::time::Duration, std::time::Duration) -> Arc<dyn kernel::IdempotencyStore>
        + Send
        + Sync,
>;

/// Every port of one adapter, over one fresh, empty store.
pub struct Stores {
    /// Products and stock.
    pub stock: Arc<dyn ::stock::StockStore>,
    /// Coupons and their owners.
    pub coupons: Arc<dyn ::coupon::CouponStore>,
    /// Users' notifications.
    pub inbox: Arc<dyn ::coupon::NotificationInbox>,
    /// Balances, history and charges.
    pub balances: Arc<dyn ::balance::BalanceStore>,
    /// Carts.
    pub carts: Arc<dyn ::order::cart::CartStore>,
    /// Orders.
    pub orders: Arc<dyn ::order::OrderStore>,
    /// The outbox, as relays and operators see it.
    pub outbox: Arc<dyn ::outbox::OutboxStore>,
    /// `Idempotency-Key`s (claims hold 60 s, keys live an hour).
    pub keys: Arc<dyn kernel::IdempotencyStore>,
    /// `Idempotency-Key`s of the same store with another lease and time to live.
    pub keys_with: KeysWith,
    /// Writes an event to the outbox.
    pub enqueue: Enqueue,
    /// Whatever must live as long as the stores (a test database).
    pub keep_alive: Box<dyn Any + Send + Sync>,
}

/// Expands to one `#[tokio::test]` per conformance test, in one module per port, each
/// running against the stores `$stores().await` builds (`$stores`: the absolute path of
/// an `async fn() -> conformance::Stores`). The test binary needs `tokio` (macros,
/// multi-threaded runtime).
#[macro_export]
macro_rules! port_conformance {
    ($stores:path) => {
        $crate::__conformance_tests! { $stores;
            stock: [
                products_are_created_read_and_listed_in_ascending_id_pages,
                restocks_and_write_offs_never_take_stock_below_zero,
                concurrent_write_offs_never_take_stock_below_zero,
                concurrent_restocks_and_write_offs_keep_the_sum_exact,
                an_update_changes_only_what_it_names,
            ],
            coupon: [
                creation_issues_to_each_recipient_once_with_one_notification,
                refusals_name_their_reason_and_consume_no_unit,
                concurrent_issues_never_pass_total_quantity,
                the_same_user_racing_gets_one_unit,
                a_deactivated_coupon_is_neither_issued_nor_used_and_past_uses_stay,
                a_capped_percent_coupon_is_stored_and_applied_with_its_cap,
                a_users_coupons_page_newest_first_and_expire_at_read_time,
            ],
            inbox: [
                marking_read_is_idempotent_and_scoped_to_its_owner,
                notifications_page_newest_first,
            ],
            balance: [
                a_user_never_charged_has_zero,
                approving_twice_credits_once,
                declining_releases_the_headroom_and_credits_nothing,
                concurrent_opens_never_pass_the_limit,
                a_claim_opens_one_charge_and_its_credit_completes_the_key,
                a_credit_whose_claim_was_lost_changes_nothing,
                stale_charges_are_the_pending_ones_before_the_cutoff,
                history_pages_newest_first,
            ],
            cart: [
                quantities_are_set_not_added_and_lines_come_in_product_order,
                an_unknown_product_is_refused_and_changes_nothing,
                paying_drops_the_paid_products_from_that_users_cart_only,
            ],
            order: [
                a_placed_order_reads_back_as_answered,
                a_refused_order_changes_nothing,
                concurrent_orders_never_oversell,
                concurrent_buyers_are_never_refused_while_units_remain,
                a_purchase_limit_holds_across_concurrent_orders_of_one_user,
                cancelled_and_refunded_units_stop_counting_against_a_limit,
                opposite_order_multi_line_orders_never_deadlock,
                an_order_is_paid_at_most_once,
                a_coupon_is_used_by_at_most_one_order,
                a_cancelled_order_gives_back_stock_coupon_and_money,
                a_claim_is_completed_once_with_the_work_and_a_second_completion_rolls_back,
                concurrent_refunds_and_a_cancel_never_refund_more_than_the_total,
                a_free_order_writes_payment_and_refund_rows_of_zero,
                money_and_stock_given_back_may_pass_their_caps,
                a_refund_then_a_cancel_return_everything_once,
                ordering_from_the_cart_takes_its_lines,
                expiry_cancels_only_due_pending_orders,
                orders_are_listed_and_searched_newest_first,
            ],
            outbox: [
                an_enqueued_event_is_pending_and_due_at_once_with_its_body_unchanged,
                a_claim_holds_until_its_lease_ends_then_the_event_is_due_again,
                a_later_event_of_an_order_waits_until_the_earlier_one_is_delivered,
                a_batch_is_oldest_first_and_bounded,
                delivery_and_failure_are_recorded,
                a_failure_from_a_lost_claim_changes_nothing,
                only_a_dead_event_can_be_retried_and_it_starts_over,
                the_list_filters_by_status_and_pages_in_write_order,
                an_empty_outbox_has_no_backlog,
                concurrent_claimers_share_the_events_without_overlap,
                every_attempt_is_logged_with_its_outcome,
                an_event_waiting_behind_an_undelivered_one_names_it,
                a_bulk_retry_revives_exactly_the_matching_dead_events,
                retention_deletes_only_old_delivered_events,
                concurrent_purges_share_the_work,
            ],
            idempotency: [
                a_key_is_claimed_once_then_replayed,
                a_released_or_abandoned_claim_can_be_taken_again,
                expired_keys_are_reusable_and_purged,
                concurrent_claims_of_one_key_admit_one,
            ],
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_tests {
    ($stores:path; $($port:ident: [$($test:ident),* $(,)?]),* $(,)?) => {
        $(
            mod $port {
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $test() {
                        $crate::$port::$test($stores().await).await;
                    }
                )*
            }
        )*
    };
}
