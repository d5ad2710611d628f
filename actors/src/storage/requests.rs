//! The storage operations' requests and replies, one request per protocol operation
//! (storage-api.md §6). Each request carries the authenticated uid and, where the protocol has
//! one, the request's precondition; each reply carries the timestamps the HTTP layer needs for
//! `X-Last-Modified`. Wire forms (batch ids, offset tokens) are the HTTP layer's business: here
//! they are numbers.

use weft_schema::SyncTimestamp;

/// `X-If-Modified-Since` / `X-If-Unmodified-Since` (storage-api.md §5.4), already parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precondition {
    #[default]
    None,
    IfModifiedSince(SyncTimestamp),
    IfUnmodifiedSince(SyncTimestamp),
}

/// One BSO as a client sent it, validated (storage-api.md §3.1). `None` means "not supplied":
/// the stored value (or the default for a new item) is kept.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BsoInput {
    pub id: String,
    pub sortindex: Option<i32>,
    pub payload: Option<String>,
    /// Seconds from the write (or the commit) until the item expires.
    pub ttl: Option<u32>,
}

/// One stored BSO as returned to clients. `payload` is empty for id-only reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bso {
    pub id: String,
    pub modified: SyncTimestamp,
    pub payload: String,
    pub sortindex: Option<i32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sort {
    /// `modified` descending, then `id` descending; also the default.
    #[default]
    Newest,
    Oldest,
    /// `sortindex` descending (NULL last), then `id` descending.
    Index,
}

/// A continuation point of a collection read: where the next page starts
/// (`X-Weave-Next-Offset`, storage-api.md §6.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offset {
    /// Skip this many rows of the ordering (`sort=index`).
    Rows(u64),
    /// Resume at items with `modified` at or beyond `bound`, skipping `skip` of them.
    Timestamp { bound: SyncTimestamp, skip: u64 },
}

/// Filters of `GET /storage/{collection}`.
#[derive(Debug, Clone, Default)]
pub struct BsoQuery {
    /// Only these ids (at most 100, validated); empty means all.
    pub ids: Vec<String>,
    pub newer: Option<SyncTimestamp>,
    pub older: Option<SyncTimestamp>,
    pub sort: Sort,
    /// At most this many items; the shard caps it at `max_total_records`.
    pub limit: Option<u64>,
    pub offset: Option<Offset>,
    /// Full BSOs rather than ids.
    pub full: bool,
}

/// What `?batch=` asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchMode {
    /// `?batch=true`: open a new batch.
    Create,
    /// `?batch=<id>`: the batch number.
    Append(i64),
}

/// A reply that carries the resource's last-modified time (`X-Last-Modified`).
#[derive(Debug, Clone, PartialEq)]
pub struct Timestamped<T> {
    pub last_modified: SyncTimestamp,
    pub value: T,
}

/// `GET info/collections`: name → last-modified.
#[derive(Debug, Clone)]
pub struct GetCollections {
    pub uid: u64,
    pub precondition: Precondition,
}

/// `GET info/quota`: payload bytes in use.
#[derive(Debug, Clone)]
pub struct GetQuota {
    pub uid: u64,
    pub precondition: Precondition,
}

/// `GET info/collection_usage`: name → payload bytes of live items.
#[derive(Debug, Clone)]
pub struct GetCollectionUsage {
    pub uid: u64,
    pub precondition: Precondition,
}

/// `GET info/collection_counts`: name → number of live items.
#[derive(Debug, Clone)]
pub struct GetCollectionCounts {
    pub uid: u64,
    pub precondition: Precondition,
}

/// `DELETE /1.5/{uid}` and `DELETE /1.5/{uid}/storage`. Replies with the new storage timestamp.
#[derive(Debug, Clone)]
pub struct DeleteStorage {
    pub uid: u64,
    pub precondition: Precondition,
}

/// One page of `GET /storage/{collection}`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BsoPage {
    pub items: Vec<Bso>,
    /// Where the next page starts, when more items match.
    pub next_offset: Option<Offset>,
}

#[derive(Debug, Clone)]
pub struct GetBsos {
    pub uid: u64,
    pub collection: String,
    pub query: BsoQuery,
    pub precondition: Precondition,
}

/// The outcome of a POST: written (200) or staged into a batch (202).
#[derive(Debug, Clone, PartialEq)]
pub enum PostOutcome {
    /// Applied at `modified` (non-batch POST or commit).
    Committed { modified: SyncTimestamp },
    /// Staged into batch number `batch`; `last_modified` is the collection's unchanged
    /// timestamp.
    Staged { batch: i64, last_modified: SyncTimestamp },
}

#[derive(Debug, Clone, PartialEq)]
pub struct PostResult {
    pub outcome: PostOutcome,
    /// Remaining quota in bytes, when quota is enforced and little remains.
    pub quota_remaining: Option<u64>,
}

/// `POST /storage/{collection}` with or without `?batch`/`&commit`. `bsos` holds only the items
/// that passed validation and size accounting; the handler reports the others as failed.
#[derive(Debug, Clone)]
pub struct PostBsos {
    pub uid: u64,
    pub collection: String,
    pub bsos: Vec<BsoInput>,
    pub batch: Option<BatchMode>,
    pub commit: bool,
    pub precondition: Precondition,
}

/// `DELETE /storage/{collection}` (all of it, or only `ids`). Replies with the new timestamp:
/// the storage timestamp for a whole-collection delete, the collection's for `ids`.
#[derive(Debug, Clone)]
pub struct DeleteCollection {
    pub uid: u64,
    pub collection: String,
    /// `Some` for `?ids=`; may be empty (touches the collection, deletes nothing).
    pub ids: Option<Vec<String>>,
    pub precondition: Precondition,
}

#[derive(Debug, Clone)]
pub struct GetBso {
    pub uid: u64,
    pub collection: String,
    pub id: String,
    pub precondition: Precondition,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PutResult {
    pub modified: SyncTimestamp,
    pub quota_remaining: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct PutBso {
    pub uid: u64,
    pub collection: String,
    pub bso: BsoInput,
    pub precondition: Precondition,
}

/// Replies with the collection's new timestamp.
#[derive(Debug, Clone)]
pub struct DeleteBso {
    pub uid: u64,
    pub collection: String,
    pub id: String,
    pub precondition: Precondition,
}
