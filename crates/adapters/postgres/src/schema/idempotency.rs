diesel::table! {
    idempotency_keys (caller, key) {
        caller -> Text,
        key -> Text,
        request_hash -> Text,
        status -> Text,
        response_status -> Nullable<Int2>,
        response_headers -> Nullable<Jsonb>,
        response_body -> Nullable<Bytea>,
        locked_until -> Timestamptz,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        claim_id -> Uuid,
    }
}
