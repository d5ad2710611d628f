//! diesel table definitions, shared by SQLite and MySQL (the column types are the common
//! subset both map to the same Rust types).

diesel::table! {
    bso (userid, collection, id) {
        userid -> BigInt,
        collection -> Integer,
        id -> Text,
        sortindex -> Nullable<Integer>,
        payload -> Text,
        modified -> BigInt,
        ttl -> BigInt,
        payload_size -> Nullable<Integer>,
    }
}

diesel::table! {
    collections (id) {
        id -> Integer,
        name -> Text,
    }
}

diesel::table! {
    user_collections (userid, collection) {
        userid -> BigInt,
        collection -> Integer,
        last_modified -> BigInt,
        total_bytes -> Nullable<BigInt>,
        count -> Nullable<Integer>,
    }
}

diesel::table! {
    batch_uploads (batch, userid) {
        batch -> BigInt,
        userid -> BigInt,
        collection -> Integer,
    }
}

diesel::table! {
    batch_upload_items (batch, userid, id) {
        batch -> BigInt,
        userid -> BigInt,
        id -> Text,
        sortindex -> Nullable<Integer>,
        payload -> Nullable<Text>,
        payload_size -> Nullable<Integer>,
        ttl_offset -> Nullable<Integer>,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    bso,
    collections,
    user_collections,
    batch_uploads,
    batch_upload_items
);

// Tokenserver tables (tokenserver-api.md §8.1), column order as in the reference.

diesel::table! {
    services (id) {
        id -> Integer,
        service -> Nullable<Text>,
        pattern -> Nullable<Text>,
    }
}

diesel::table! {
    nodes (id) {
        id -> BigInt,
        service -> Integer,
        node -> Text,
        available -> Integer,
        current_load -> Integer,
        capacity -> Integer,
        downed -> Integer,
        backoff -> Integer,
    }
}

diesel::table! {
    users (uid) {
        uid -> BigInt,
        service -> Integer,
        email -> Text,
        generation -> BigInt,
        client_state -> Text,
        created_at -> BigInt,
        replaced_at -> Nullable<BigInt>,
        nodeid -> BigInt,
        keys_changed_at -> Nullable<BigInt>,
    }
}

diesel::allow_tables_to_appear_in_same_query!(services, nodes, users);
