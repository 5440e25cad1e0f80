diesel::table! {
    orders (id) {
        id -> Int8,
        user_id -> Int8,
        status -> Text,
        subtotal -> Int8,
        discount -> Int8,
        total -> Int8,
        coupon_id -> Nullable<Int8>,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        paid_at -> Nullable<Timestamptz>,
        cancelled_at -> Nullable<Timestamptz>,
        cancel_reason -> Nullable<Text>,
        refunded_total -> Int8,
    }
}

diesel::table! {
    order_lines (order_id, line_no) {
        order_id -> Int8,
        line_no -> Int2,
        product_id -> Int8,
        name -> Text,
        unit_price -> Int8,
        quantity -> Int4,
        subtotal -> Int8,
    }
}

diesel::table! {
    payments (id) {
        id -> Int8,
        order_id -> Int8,
        user_id -> Int8,
        amount -> Int8,
        status -> Text,
        paid_at -> Timestamptz,
        refunded_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    refunds (id) {
        id -> Int8,
        order_id -> Int8,
        amount -> Int8,
        reason -> Nullable<Text>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    refund_items (refund_id, product_id) {
        refund_id -> Int8,
        product_id -> Int8,
        quantity -> Int4,
    }
}
