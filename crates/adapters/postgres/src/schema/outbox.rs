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

diesel::table! {
    outbox_attempts (id) {
        id -> Int8,
        outbox_id -> Int8,
        started_at -> Timestamptz,
        duration_ms -> Int8,
        status_code -> Nullable<Int4>,
        error -> Nullable<Text>,
    }
}

diesel::joinable!(outbox_attempts -> outbox_events (outbox_id));
diesel::allow_tables_to_appear_in_same_query!(outbox_attempts, outbox_events);
