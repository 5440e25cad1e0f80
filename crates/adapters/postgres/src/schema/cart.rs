use super::stock::products;

diesel::table! {
    cart_items (user_id, product_id) {
        user_id -> Int8,
        product_id -> Int8,
        quantity -> Int4,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::joinable!(cart_items -> products (product_id));
diesel::allow_tables_to_appear_in_same_query!(cart_items, products);
