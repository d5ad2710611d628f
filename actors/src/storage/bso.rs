//! Single-item operations: GET, PUT and DELETE of `/storage/{collection}/{id}`
//! (storage-api.md §6.11–§6.13). Their precondition resource is the item's timestamp.

use weft_schema::pool::Tx;
use weft_schema::queries::storage;
use weft_schema::SyncTimestamp;

use crate::storage::apply::{apply_bsos, Touch};
use crate::storage::requests::*;
use crate::storage::rules::{
    check_precondition, check_quota, lock_existing_for_write, open_collection, settle_quota, write_timestamp,
};
use crate::storage::Storage;
use crate::storage::StorageError;

/// The live item's timestamp (0 when missing or expired).
fn item_timestamp(
    tx: &mut Tx<'_>,
    uid: i64,
    collection: i32,
    id: &str,
) -> Result<SyncTimestamp, StorageError> {
    let now = SyncTimestamp::now().as_millis();
    Ok(SyncTimestamp::from_millis(storage::bso_modified(tx, uid, collection, id, now)?.unwrap_or(0)))
}

/// One statement: the live row carries both the item and its timestamp for the precondition.
pub fn get_bso(ctx: &Storage, tx: &mut Tx<'_>, msg: &GetBso) -> Result<Bso, StorageError> {
    let row = match ctx.collection_id(tx, &msg.collection)? {
        Some(collection) => {
            storage::get_bso(tx, msg.uid as i64, collection, &msg.id, SyncTimestamp::now().as_millis())?
        }
        None => None,
    };
    let resource = SyncTimestamp::from_millis(row.as_ref().map_or(0, |r| r.modified));
    check_precondition(msg.precondition, resource)?;
    Ok(row.ok_or(StorageError::NotFound)?.into())
}

pub fn put_bso(ctx: &Storage, tx: &mut Tx<'_>, msg: &PutBso) -> Result<PutResult, StorageError> {
    let uid = msg.uid as i64;
    let (collection, _, floor) = open_collection(ctx, tx, uid, &msg.collection)?;
    check_precondition(msg.precondition, item_timestamp(tx, uid, collection, &msg.bso.id)?)?;
    check_quota(ctx, tx, uid)?;
    let t = write_timestamp(floor)?;
    apply_bsos(tx, uid, collection, std::slice::from_ref(&msg.bso), t, Touch::Changed)?;
    storage::set_collection_modified(tx, uid, collection, t.as_millis())?;
    let quota_remaining = settle_quota(ctx, tx, uid, collection, t)?;
    Ok(PutResult { modified: t, quota_remaining })
}

pub fn delete_bso(ctx: &Storage, tx: &mut Tx<'_>, msg: &DeleteBso) -> Result<SyncTimestamp, StorageError> {
    let uid = msg.uid as i64;
    let Some(collection) = ctx.collection_id(tx, &msg.collection)? else {
        check_precondition(msg.precondition, SyncTimestamp::ZERO)?;
        return Err(StorageError::NotFound);
    };
    let Some((_, floor)) = lock_existing_for_write(tx, uid, collection)? else {
        check_precondition(msg.precondition, SyncTimestamp::ZERO)?;
        return Err(StorageError::NotFound);
    };
    let item = item_timestamp(tx, uid, collection, &msg.id)?;
    check_precondition(msg.precondition, item)?;
    if item == SyncTimestamp::ZERO {
        return Err(StorageError::NotFound);
    }
    let t = write_timestamp(floor)?;
    storage::delete_bsos(tx, uid, collection, std::slice::from_ref(&msg.id))?;
    storage::set_collection_modified(tx, uid, collection, t.as_millis())?;
    settle_quota(ctx, tx, uid, collection, t)?;
    Ok(t)
}
