//! Collection operations: reading a collection with its filters and paging, and deleting it
//! or some of its items (storage-api.md §6.7, §6.10). Their precondition resource is the
//! collection's timestamp.

use weft_schema::models::{BsoRow, ExportedBso};
use weft_schema::pool::Tx;
use weft_schema::queries::storage::{self, BsoFilter, Lock, Order};
use weft_schema::queries::transfer;
use weft_schema::SyncTimestamp;

use crate::storage::requests::*;
use crate::storage::rules::{
    check_precondition, lock_existing_for_write, open_collection, settle_quota, write_timestamp,
};
use crate::storage::StorageError;
use crate::storage::{Access, Operation, Storage};

impl From<BsoRow> for Bso {
    fn from(row: BsoRow) -> Bso {
        Bso {
            id: row.id,
            modified: SyncTimestamp::from_millis(row.modified),
            payload: row.payload,
            sortindex: row.sortindex,
        }
    }
}

pub fn get_bsos(ctx: &Storage, tx: &mut Tx<'_>, msg: &GetBsos) -> Result<Timestamped<BsoPage>, StorageError> {
    let uid = msg.uid as i64;
    let Some(collection) = ctx.collection_id(tx, &msg.collection)? else {
        check_precondition(msg.precondition, SyncTimestamp::ZERO)?;
        return Ok(Timestamped { last_modified: SyncTimestamp::ZERO, value: BsoPage::default() });
    };
    let last_modified =
        SyncTimestamp::from_millis(storage::lock_collection(tx, uid, collection, Lock::Read)?.unwrap_or(0));
    check_precondition(msg.precondition, last_modified)?;
    let value = find_page(ctx, tx, uid, collection, &msg.query)?;
    Ok(Timestamped { last_modified, value })
}

/// A page of a collection whose timestamp the caller already read from the cache and checked
/// the precondition against: one statement, without the row lock (`storage/cache.rs` says
/// why the pair is still a correct reply).
pub struct PageAfter<'a>(pub &'a GetBsos);

impl Operation for PageAfter<'_> {
    type Output = BsoPage;
    const NAME: &'static str = "GetBsosPage";
    const ACCESS: Access = Access::Snapshot;

    fn user(&self) -> Option<u64> {
        Some(self.0.uid)
    }

    fn run(&self, ctx: &Storage, tx: &mut Tx<'_>) -> Result<BsoPage, StorageError> {
        match ctx.collection_id(tx, &self.0.collection)? {
            Some(collection) => find_page(ctx, tx, self.0.uid as i64, collection, &self.0.query),
            None => Ok(BsoPage::default()),
        }
    }
}

/// How a collection read selects its page (REF's paging, storage-api.md §6.7), in stored units.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub order: Order,
    /// Offset-token bound: `modified <= bound` (newest first) or `>= bound` (oldest first).
    pub bound: Option<i64>,
    pub skip: i64,
    /// Unlimited reads are capped like REF's (10 000 rows), with a next offset beyond.
    pub limit: u64,
}

impl Window {
    pub fn of(ctx: &Storage, query: &BsoQuery) -> Window {
        let cap = ctx.config().max_read_records;
        let order = match query.sort {
            Sort::Newest => Order::Newest,
            Sort::Oldest => Order::Oldest,
            Sort::Index => Order::Index,
        };
        let (bound, skip) = match query.offset {
            None => (None, 0),
            Some(Offset::Rows(n)) => (None, n),
            // A timestamp token only means something for a timestamp ordering.
            Some(Offset::Timestamp { bound, skip }) if order != Order::Index => {
                (Some(bound.as_millis()), skip)
            }
            Some(Offset::Timestamp { skip, .. }) => (None, skip),
        };
        let skip = i64::try_from(skip).unwrap_or(i64::MAX);
        Window { order, bound, skip, limit: query.limit.map_or(cap, |l| l.min(cap)) }
    }

    /// The page from the first `limit + 1` matching items after the skip (one more than asked
    /// tells whether a next page exists).
    pub fn page(&self, mut items: Vec<Bso>) -> BsoPage {
        let more = items.len() as u64 > self.limit;
        items.truncate(self.limit as usize);
        let next_offset = more.then(|| self.next_offset(&items));
        BsoPage { items, next_offset }
    }

    /// Where the page after `items` starts: a plain row offset for `sort=index`; otherwise the
    /// last item's `modified` as the bound and, as the skip, the returned items at that bound
    /// (plus the previous skip when the whole page sat at the previous bound).
    fn next_offset(&self, items: &[Bso]) -> Offset {
        let skip = self.skip.max(0) as u64;
        let Some(last) = items.last() else {
            return Offset::Rows(skip);
        };
        if self.order == Order::Index {
            return Offset::Rows(skip + items.len() as u64);
        }
        let at_bound = items.iter().rev().take_while(|b| b.modified == last.modified).count() as u64;
        let carried = if at_bound == items.len() as u64 && self.bound == Some(last.modified.as_millis()) {
            skip
        } else {
            0
        };
        Offset::Timestamp { bound: last.modified, skip: at_bound + carried }
    }
}

fn find_page(
    ctx: &Storage,
    tx: &mut Tx<'_>,
    uid: i64,
    collection: i32,
    query: &BsoQuery,
) -> Result<BsoPage, StorageError> {
    let window = Window::of(ctx, query);
    if window.limit == 0 {
        return Ok(BsoPage::default());
    }
    let filter = BsoFilter {
        ids: &query.ids,
        newer: query.newer.map(SyncTimestamp::as_millis),
        older: query.older.map(SyncTimestamp::as_millis),
        bound: window.bound,
        order: Some(window.order),
        limit: Some(window.limit as i64 + 1),
        skip: window.skip,
        full: query.full,
    };
    let rows = storage::find_bsos(tx, uid, collection, &filter, SyncTimestamp::now().as_millis())?;
    Ok(window.page(rows.into_iter().map(Bso::from).collect()))
}

/// Every live item of a collection with its expiry, and the collection's timestamp, read under
/// the collection's row lock so that they agree: what the write-through cache keeps.
pub struct LoadItems<'a> {
    pub uid: u64,
    pub collection: &'a str,
    /// At most this many items; `None` in the reply beyond.
    pub max_items: i64,
}

/// The collection's timestamp (0: none) and, unless there were more than `max_items`, its items.
pub type LoadedItems = (SyncTimestamp, Option<Vec<ExportedBso>>);

impl Operation for LoadItems<'_> {
    type Output = LoadedItems;
    const NAME: &'static str = "LoadItems";
    const ACCESS: Access = Access::Read;

    fn user(&self) -> Option<u64> {
        Some(self.uid)
    }

    fn run(&self, ctx: &Storage, tx: &mut Tx<'_>) -> Result<LoadedItems, StorageError> {
        let uid = self.uid as i64;
        let Some(collection) = ctx.collection_id(tx, self.collection)? else {
            return Ok((SyncTimestamp::ZERO, Some(vec![])));
        };
        let Some(modified) = storage::lock_collection(tx, uid, collection, Lock::Read)? else {
            return Ok((SyncTimestamp::ZERO, Some(vec![])));
        };
        // The export's read: live items in id order, everything the cache needs, ttl included.
        let now = SyncTimestamp::now().as_millis();
        let items = transfer::bsos_after(tx, uid, collection, "", now, self.max_items + 1)?;
        let complete = items.len() as i64 <= self.max_items;
        Ok((SyncTimestamp::from_millis(modified), complete.then_some(items)))
    }
}

pub fn delete_collection(
    ctx: &Storage,
    tx: &mut Tx<'_>,
    msg: &DeleteCollection,
) -> Result<SyncTimestamp, StorageError> {
    let uid = msg.uid as i64;
    let Some(ids) = &msg.ids else {
        return delete_whole_collection(ctx, tx, msg);
    };
    // Deleting by ids touches the collection, creating it when missing (both references).
    let (collection, current, floor) = open_collection(ctx, tx, uid, &msg.collection)?;
    check_precondition(msg.precondition, current)?;
    let t = write_timestamp(floor)?;
    storage::delete_bsos(tx, uid, collection, ids)?;
    storage::set_collection_modified(tx, uid, collection, t.as_millis())?;
    settle_quota(ctx, tx, uid, collection, t)?;
    Ok(t)
}

/// Deletes the collection for readers at once (its record goes, the tombstone moves to the
/// deletion time T, its items written at or before T become invisible) and leaves the items to
/// the deleter, so the answer takes a few statements whatever the collection's size. Replies
/// with the storage timestamp. A missing collection is not an error: nothing changes.
fn delete_whole_collection(
    ctx: &Storage,
    tx: &mut Tx<'_>,
    msg: &DeleteCollection,
) -> Result<SyncTimestamp, StorageError> {
    let uid = msg.uid as i64;
    let current = match ctx.collection_id(tx, &msg.collection)? {
        Some(collection) => {
            lock_existing_for_write(tx, uid, collection)?.map(|(current, floor)| (collection, current, floor))
        }
        None => None,
    };
    let Some((collection, current, floor)) = current else {
        check_precondition(msg.precondition, SyncTimestamp::ZERO)?;
        return Ok(SyncTimestamp::from_millis(storage::storage_modified(tx, uid)?));
    };
    check_precondition(msg.precondition, current)?;
    let t = write_timestamp(floor)?;
    storage::delete_collection(tx, uid, collection, t.as_millis())?;
    Ok(SyncTimestamp::from_millis(storage::storage_modified(tx, uid)?))
}
