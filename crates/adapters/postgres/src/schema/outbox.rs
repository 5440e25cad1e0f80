diesel::table! {
    outbox_events (id) {
        id -> Int8,
        event_id -> Uuid,
        event_type -> Text,
        order_id -> Int8,
        payload -> Jsonb,
        status -> Text,
        attempts -> Int4,
        last_error -> Nullable<Text>,
        next_attempt_at -> Timestamptz,
        created_at -> Timestamptz,
        delivered_at -> Nullable<Timestamptz>,
    }
}
