diesel::table! {
    products (id) {
        id -> Int8,
        name -> Text,
        price -> Int8,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        max_per_user -> Nullable<Int4>,
    }
}

diesel::table! {
    stock_slots (product_id, slot) {
        product_id -> Int8,
        slot -> Int2,
        units -> Int8,
    }
}
