//! Row types read from and written to the storage tables. Times are integer milliseconds as
//! stored (tokenserver-api.md §9); `bso.ttl` is the absolute expiry, not a duration.

use diesel::sql_types::{BigInt, Integer, Nullable, Text};
use diesel::QueryableByName;

/// A stored BSO as reads return it. `payload` is empty for id-only reads.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct BsoRow {
    #[diesel(sql_type = Text)]
    pub id: String,
    #[diesel(sql_type = BigInt)]
    pub modified: i64,
    #[diesel(sql_type = Text)]
    pub payload: String,
    #[diesel(sql_type = Nullable<Integer>)]
    pub sortindex: Option<i32>,
}

/// A user's `user_collections` row with the collection's name (`None` for the tombstone).
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct UserCollectionRow {
    #[diesel(sql_type = Integer)]
    pub collection: i32,
    #[diesel(sql_type = Nullable<Text>)]
    pub name: Option<String>,
    #[diesel(sql_type = BigInt)]
    pub last_modified: i64,
}

/// A `user_collections` row's timestamp, as a write's locks read it.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct CollectionModified {
    #[diesel(sql_type = Integer)]
    pub collection: i32,
    #[diesel(sql_type = BigInt)]
    pub last_modified: i64,
}

/// What a write needs to know about an item that already exists (live or expired).
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct ExistingBso {
    #[diesel(sql_type = Text)]
    pub id: String,
    #[diesel(sql_type = Nullable<Integer>)]
    pub sortindex: Option<i32>,
    #[diesel(sql_type = BigInt)]
    pub modified: i64,
    #[diesel(sql_type = BigInt)]
    pub ttl: i64,
}

/// A live BSO with everything an export carries; `ttl` is the absolute expiry (ms).
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct ExportedBso {
    #[diesel(sql_type = Text)]
    pub id: String,
    #[diesel(sql_type = Nullable<Integer>)]
    pub sortindex: Option<i32>,
    #[diesel(sql_type = Text)]
    pub payload: String,
    #[diesel(sql_type = BigInt)]
    pub modified: i64,
    #[diesel(sql_type = BigInt)]
    pub ttl: i64,
}

/// A complete BSO row to write (every column decided by the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBso<'a> {
    pub id: &'a str,
    pub sortindex: Option<i32>,
    pub payload: &'a str,
    pub modified: i64,
    pub ttl: i64,
}

impl ExportedBso {
    /// The row to write for it as it was (an import, or a user's move to another node).
    pub fn as_new(&self) -> NewBso<'_> {
        NewBso {
            id: &self.id,
            sortindex: self.sortindex,
            payload: &self.payload,
            modified: self.modified,
            ttl: self.ttl,
        }
    }
}

/// A staged batch item; `None` means the client did not supply the field.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct StagedBso {
    #[diesel(sql_type = Text)]
    pub id: String,
    #[diesel(sql_type = Nullable<Integer>)]
    pub sortindex: Option<i32>,
    #[diesel(sql_type = Nullable<Text>)]
    pub payload: Option<String>,
    #[diesel(sql_type = Nullable<Integer>)]
    pub ttl_offset: Option<i32>,
}

/// A pending collection deletion: the collection's items with `modified <= deleted_at` are
/// deleted for readers and wait for the deleter.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct DeletedCollection {
    #[diesel(sql_type = BigInt)]
    pub userid: i64,
    #[diesel(sql_type = Integer)]
    pub collection: i32,
    #[diesel(sql_type = BigInt)]
    pub deleted_at: i64,
}

/// The primary key of a `bso` row.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct BsoKey {
    #[diesel(sql_type = BigInt)]
    pub userid: i64,
    #[diesel(sql_type = Integer)]
    pub collection: i32,
    #[diesel(sql_type = Text)]
    pub id: String,
}

/// The primary key of a `batch_upload_items` row.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct BatchKey {
    #[diesel(sql_type = BigInt)]
    pub batch: i64,
    #[diesel(sql_type = BigInt)]
    pub userid: i64,
    #[diesel(sql_type = Text)]
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub(crate) struct NamedCount {
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = BigInt)]
    pub value: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, QueryableByName)]
pub(crate) struct Single {
    #[diesel(sql_type = BigInt)]
    pub value: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, QueryableByName)]
pub(crate) struct OptionalSingle {
    #[diesel(sql_type = Nullable<BigInt>)]
    pub value: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, QueryableByName)]
pub(crate) struct Totals {
    #[diesel(sql_type = BigInt)]
    pub count: i64,
    #[diesel(sql_type = BigInt)]
    pub bytes: i64,
}

pub mod accounts;
pub mod device_commands;
pub mod tokenserver;

/// A user's `weft_user_moves` row: where a move between nodes stands on this node.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct MoveMarker {
    #[diesel(sql_type = Integer)]
    pub state: i32,
    /// The other node of the move (canonical URL).
    #[diesel(sql_type = Text)]
    pub peer: String,
    /// When the state was entered (ms).
    #[diesel(sql_type = BigInt)]
    pub since: i64,
    /// For a moved user: when every token for this node has expired (ms).
    #[diesel(sql_type = BigInt)]
    pub purge_after: i64,
}
