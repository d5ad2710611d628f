//! Row types of the tokenserver tables (`services`, `nodes`, `users`, tokenserver-api.md §8).
//! Times are integer milliseconds as stored; `generation` and `keys_changed_at` are FxA's
//! millisecond timestamps, `i64::MAX` generation marks a retired user.

use diesel::sql_types::{BigInt, Integer, Nullable, Text};
use diesel::QueryableByName;

/// One `users` row of an account with the URL of its node (`None` when the node row is gone,
/// which means "no node", §8.1).
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct UserRecord {
    #[diesel(sql_type = BigInt)]
    pub uid: i64,
    #[diesel(sql_type = BigInt)]
    pub nodeid: i64,
    #[diesel(sql_type = Nullable<Text>)]
    pub node: Option<String>,
    #[diesel(sql_type = BigInt)]
    pub generation: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub keys_changed_at: Option<i64>,
    #[diesel(sql_type = Text)]
    pub client_state: String,
    #[diesel(sql_type = BigInt)]
    pub created_at: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub replaced_at: Option<i64>,
}

/// A `users` row as an export carries it: the node by URL (ids differ between databases).
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct Account {
    #[diesel(sql_type = BigInt)]
    pub uid: i64,
    #[diesel(sql_type = Text)]
    pub email: String,
    #[diesel(sql_type = BigInt)]
    pub generation: i64,
    #[diesel(sql_type = Text)]
    pub client_state: String,
    #[diesel(sql_type = BigInt)]
    pub created_at: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub replaced_at: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub keys_changed_at: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    pub node: Option<String>,
}

/// A `users` row to insert; `replaced_at` is always NULL for a new row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser<'a> {
    pub service: i32,
    pub email: &'a str,
    pub generation: i64,
    pub client_state: &'a str,
    pub created_at: i64,
    pub nodeid: i64,
    pub keys_changed_at: Option<i64>,
}

/// A `nodes` row. `downed` and `backoff` are 0/1 flags stored as INT.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct NodeRow {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub node: String,
    #[diesel(sql_type = Integer)]
    pub available: i32,
    #[diesel(sql_type = Integer)]
    pub current_load: i32,
    #[diesel(sql_type = Integer)]
    pub capacity: i32,
    #[diesel(sql_type = Integer)]
    pub downed: i32,
    #[diesel(sql_type = Integer)]
    pub backoff: i32,
}

/// The columns of a `nodes` row an operator sets; `None` leaves a column as it is (updates).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeFields {
    pub capacity: Option<i32>,
    pub available: Option<i32>,
    pub current_load: Option<i32>,
    pub downed: Option<i32>,
    pub backoff: Option<i32>,
}

/// A replaced `users` row waiting for the purge (tokenserver-api.md §10.6), with its node's URL
/// and `downed` flag (`None` when the node row is gone).
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct ReplacedUser {
    #[diesel(sql_type = BigInt)]
    pub uid: i64,
    #[diesel(sql_type = BigInt)]
    pub nodeid: i64,
    #[diesel(sql_type = Text)]
    pub email: String,
    #[diesel(sql_type = BigInt)]
    pub generation: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub keys_changed_at: Option<i64>,
    #[diesel(sql_type = Text)]
    pub client_state: String,
    #[diesel(sql_type = BigInt)]
    pub replaced_at: i64,
    #[diesel(sql_type = Nullable<Text>)]
    pub node: Option<String>,
    #[diesel(sql_type = Nullable<Integer>)]
    pub downed: Option<i32>,
}
