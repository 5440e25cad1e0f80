diesel::table! {
    balances (user_id) {
        user_id -> Int8,
        balance -> Int8,
        pending_credit -> Int8,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    balance_charges (id) {
        id -> Int8,
        user_id -> Int8,
        amount -> Int8,
        payment_method -> Text,
        status -> Text,
        gateway_transaction_id -> Nullable<Text>,
        decline_reason -> Nullable<Text>,
        balance_after -> Nullable<Int8>,
        created_at -> Timestamptz,
        settled_at -> Nullable<Timestamptz>,
        claim_id -> Nullable<Uuid>,
    }
}

diesel::table! {
    balance_history (id) {
        id -> Int8,
        user_id -> Int8,
        kind -> Text,
        amount -> Int8,
        balance_after -> Int8,
        order_id -> Nullable<Int8>,
        charge_id -> Nullable<Int8>,
        refund_id -> Nullable<Int8>,
        created_at -> Timestamptz,
    }
}
