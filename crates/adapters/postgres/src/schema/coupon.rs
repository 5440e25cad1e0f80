// A view over `coupon_definitions` adding `issued_quantity` (the sum of the slots);
// every column but that one can be inserted and updated through it.
diesel::table! {
    coupons (id) {
        id -> Int8,
        name -> Text,
        discount_type -> Text,
        discount_value -> Int8,
        min_order_amount -> Int8,
        total_quantity -> Nullable<Int8>,
        issued_quantity -> Int8,
        valid_from -> Timestamptz,
        valid_until -> Timestamptz,
        created_at -> Timestamptz,
        max_discount -> Nullable<Int8>,
        deactivated_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    coupon_slots (coupon_id, slot) {
        coupon_id -> Int8,
        slot -> Int2,
        issued -> Int8,
        remaining -> Nullable<Int8>,
        open -> Bool,
    }
}

diesel::table! {
    user_coupons (id) {
        id -> Int8,
        coupon_id -> Int8,
        user_id -> Int8,
        status -> Text,
        issued_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
        order_id -> Nullable<Int8>,
    }
}

// The users' inbox; coupons are its only source so far.
diesel::table! {
    notifications (id) {
        id -> Int8,
        user_id -> Int8,
        kind -> Text,
        message -> Text,
        coupon_id -> Nullable<Int8>,
        created_at -> Timestamptz,
        read_at -> Nullable<Timestamptz>,
    }
}

diesel::joinable!(user_coupons -> coupons (coupon_id));
diesel::joinable!(notifications -> coupons (coupon_id));
diesel::allow_tables_to_appear_in_same_query!(coupons, user_coupons, notifications);
