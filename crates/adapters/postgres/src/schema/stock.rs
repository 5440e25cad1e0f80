diesel::table! {
    products (id) {
        id -> Int8,
        name -> Text,
        price -> Int8,
        stock -> Int8,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}
