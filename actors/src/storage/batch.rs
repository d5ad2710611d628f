//! POST to a collection, with the whole batch-upload lifecycle (storage-api.md §6.8, §6.9):
//! a plain POST applies at once; `?batch=true` opens a batch and stages; `?batch=<id>` stages
//! more; `&commit=true` applies everything staged plus the body at one timestamp. Staged items
//! live in `batch_upload_items` and are invisible until the commit, which deletes the batch.
//! `max_total_records` / `max_total_bytes` are enforced on what is actually staged, at every
//! append and at the commit.

use std::collections::HashMap;

use weft_schema::models::StagedBso;
use weft_schema::pool::Tx;
use weft_schema::queries::storage::{self, Lock};
use weft_schema::timestamp::unix_millis;
use weft_schema::SyncTimestamp;

use crate::storage::apply::{apply_bsos, Touch};
use crate::storage::requests::*;
use crate::storage::rules::{
    check_collection_bound, check_precondition, check_quota, expired_batches_bound, lock_for_write,
    open_collection, settle_quota, write_timestamp,
};
use crate::storage::Storage;
use crate::storage::StorageError;

/// How many successive ids batch creation tries when one is taken. REF tries 5; a client that
/// opens batches back to back can open more than 5 in one millisecond, and a taken id costs only
/// one ignored insert, so Weft looks further before answering 503.
const BATCH_ID_ATTEMPTS: i64 = 100;

pub fn post_bsos(ctx: &Storage, tx: &mut Tx<'_>, msg: &PostBsos) -> Result<PostResult, StorageError> {
    match (&msg.batch, msg.commit) {
        // `?batch=true&commit=true` is exactly a plain POST.
        (None, _) | (Some(BatchMode::Create), true) => commit(ctx, tx, msg, None),
        (Some(BatchMode::Append(batch)), true) => commit(ctx, tx, msg, Some(*batch)),
        (Some(BatchMode::Create), false) => stage(ctx, tx, msg, None),
        (Some(BatchMode::Append(batch)), false) => stage(ctx, tx, msg, Some(*batch)),
    }
}

/// `weft_post_records{mode}`: records in the body of each successful POST, by what it did. It
/// shows operators how clients batch their uploads (and so how big their transactions are).
pub fn observe_post(ctx: &Storage, msg: &PostBsos) {
    let mode = match (&msg.batch, msg.commit) {
        (None, _) => "post",
        (Some(_), false) => "batch_stage",
        (Some(_), true) => "batch_commit",
    };
    metrics::histogram!("weft_post_records", "node" => ctx.node().to_string(), "mode" => mode)
        .record(msg.bsos.len() as f64);
}

fn stage(
    ctx: &Storage,
    tx: &mut Tx<'_>,
    msg: &PostBsos,
    existing: Option<i64>,
) -> Result<PostResult, StorageError> {
    let uid = msg.uid as i64;
    let collection = batch_collection(ctx, tx, msg, existing)?;
    // Staging neither creates nor touches the collection; it only reads its timestamp for the
    // precondition and for X-Last-Modified. Lock order everywhere: collection, then batch.
    let held = storage::lock_collection(tx, uid, collection, Lock::Read)?;
    let current = SyncTimestamp::from_millis(held.unwrap_or(0));
    check_precondition(msg.precondition, current)?;
    let batch = match existing {
        Some(batch) => {
            open_batch(ctx, tx, uid, collection, batch)?;
            batch
        }
        None => {
            let batch = new_batch(ctx, tx, uid, collection)?;
            // A batch in a collection the user does not have yet counts as one it holds.
            if held.is_none() {
                check_collection_bound(ctx, tx, uid)?;
            }
            batch
        }
    };
    let staged: Vec<StagedBso> = msg
        .bsos
        .iter()
        .map(|b| StagedBso {
            id: b.id.clone(),
            sortindex: b.sortindex,
            payload: b.payload.clone(),
            ttl_offset: b.ttl.map(|t| i32::try_from(t).unwrap_or(i32::MAX)),
        })
        .collect();
    storage::stage_batch_items(tx, batch, uid, &staged)?;
    let (count, bytes) = storage::batch_totals(tx, batch, uid)?;
    check_batch_totals(ctx, count.max(0) as u64, bytes.max(0) as u64)?;
    // What this request staged is already among the open batches' bytes the quota counts.
    check_quota(ctx, tx, uid)?;
    Ok(PostResult { outcome: PostOutcome::Staged { batch, last_modified: current }, quota_remaining: None })
}

fn commit(
    ctx: &Storage,
    tx: &mut Tx<'_>,
    msg: &PostBsos,
    batch: Option<i64>,
) -> Result<PostResult, StorageError> {
    let uid = msg.uid as i64;
    let (collection, current, floor) = match batch {
        None => open_collection(ctx, tx, uid, &msg.collection)?,
        // The open batch already counts the collection as the user's (`check_collection_bound`).
        Some(_) => {
            let collection = batch_collection(ctx, tx, msg, batch)?;
            let (current, _, floor) = lock_for_write(tx, uid, collection)?;
            (collection, current, floor)
        }
    };
    check_precondition(msg.precondition, current)?;

    let items = match batch {
        None => msg.bsos.clone(),
        Some(batch) => {
            open_batch(ctx, tx, uid, collection, batch)?;
            let staged = storage::batch_items(tx, batch, uid)?;
            let items = merge(staged, &msg.bsos);
            let bytes = items.iter().map(|b| b.payload.as_ref().map_or(0, |p| p.len() as u64)).sum();
            check_batch_totals(ctx, items.len() as u64, bytes)?;
            storage::delete_batch(tx, batch, uid)?;
            items
        }
    };
    check_quota(ctx, tx, uid)?;
    let t = write_timestamp(floor)?;
    // Every item of a batch commit gets modified = T; a plain POST changes `modified` only for
    // items whose payload or sortindex it supplies.
    let touch = if batch.is_some() { Touch::All } else { Touch::Changed };
    apply_bsos(tx, uid, collection, &items, t, touch)?;
    storage::set_collection_modified(tx, uid, collection, t.as_millis())?;
    let quota_remaining = settle_quota(ctx, tx, uid, collection, t)?;
    Ok(PostResult { outcome: PostOutcome::Committed { modified: t }, quota_remaining })
}

/// Staged items first, then the commit body's items over them field by field (the body wins
/// for the same id, storage-api.md §13.14), in first-seen order.
fn merge(staged: Vec<StagedBso>, body: &[BsoInput]) -> Vec<BsoInput> {
    let mut order: Vec<String> = Vec::with_capacity(staged.len() + body.len());
    let mut items: HashMap<String, BsoInput> = HashMap::with_capacity(staged.len() + body.len());
    let staged = staged.into_iter().map(|s| BsoInput {
        id: s.id,
        sortindex: s.sortindex,
        payload: s.payload,
        ttl: s.ttl_offset.and_then(|t| u32::try_from(t).ok()),
    });
    for item in staged.chain(body.iter().cloned()) {
        match items.get_mut(&item.id) {
            Some(merged) => {
                merged.sortindex = item.sortindex.or(merged.sortindex);
                merged.ttl = item.ttl.or(merged.ttl);
                if item.payload.is_some() {
                    merged.payload = item.payload;
                }
            }
            None => {
                order.push(item.id.clone());
                items.insert(item.id.clone(), item);
            }
        }
    }
    order.into_iter().filter_map(|id| items.remove(&id)).collect()
}

/// The id of the collection a POST addresses. A write without a batch id registers a new
/// name; a batch id can only belong to a collection someone wrote before, so an unknown name
/// means the batch id is invalid.
fn batch_collection(
    ctx: &Storage,
    tx: &mut Tx<'_>,
    msg: &PostBsos,
    batch: Option<i64>,
) -> Result<i32, StorageError> {
    match batch {
        None => ctx.ensure_collection_id(tx, &msg.collection),
        Some(_) => ctx.collection_id(tx, &msg.collection)?.ok_or(StorageError::InvalidBatch),
    }
}

fn check_batch_totals(ctx: &Storage, count: u64, bytes: u64) -> Result<(), StorageError> {
    if count > ctx.config().max_total_records || bytes > ctx.config().max_total_bytes {
        return Err(StorageError::BatchLimitExceeded);
    }
    Ok(())
}

/// Creates a batch for (user, collection): id = creation ms + uid % 10 (REF), + 1 on collision.
/// The whole millisecond, not the 10 ms tick, so that back-to-back batches rarely collide.
/// Refused when the user already has `max_open_batches` open: each may stage up to
/// `max_total_bytes`, and a client that opens batches and never commits them would otherwise
/// fill the database (neither reference bounds them).
fn new_batch(ctx: &Storage, tx: &mut Tx<'_>, uid: i64, collection: i32) -> Result<i64, StorageError> {
    let open = storage::open_batches(tx, uid, expired_batches_bound(ctx))?;
    if open.max(0) as u64 >= ctx.config().max_open_batches {
        return Err(StorageError::TooManyOpenBatches);
    }
    let base = unix_millis() + uid % 10;
    for attempt in 0..BATCH_ID_ATTEMPTS {
        if storage::create_batch(tx, base + attempt, uid, collection)? {
            return Ok(base + attempt);
        }
    }
    Err(StorageError::Conflict)
}

/// Locks an existing batch; refuses ids that are unknown, another collection's, or expired
/// (REF: creation time in the id + lifetime; 400 rather than 404).
fn open_batch(
    ctx: &Storage,
    tx: &mut Tx<'_>,
    uid: i64,
    collection: i32,
    batch: i64,
) -> Result<(), StorageError> {
    match storage::lock_batch(tx, batch, uid)? {
        Some(owner) if owner == collection => {}
        _ => return Err(StorageError::InvalidBatch),
    }
    if batch <= expired_batches_bound(ctx) {
        return Err(StorageError::InvalidBatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_body_wins_field_by_field() {
        let staged = vec![
            StagedBso {
                id: "a".into(),
                sortindex: Some(1),
                payload: Some("old".into()),
                ttl_offset: Some(60),
            },
            StagedBso { id: "b".into(), sortindex: None, payload: Some("b".into()), ttl_offset: None },
        ];
        let body = vec![
            BsoInput { id: "a".into(), payload: Some("new".into()), ..Default::default() },
            BsoInput { id: "c".into(), ttl: Some(5), ..Default::default() },
        ];
        let merged = merge(staged, &body);
        let ids: Vec<&str> = merged.iter().map(|b| b.id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c"]);
        assert_eq!(merged[0].payload.as_deref(), Some("new"));
        assert_eq!(merged[0].sortindex, Some(1));
        assert_eq!(merged[0].ttl, Some(60));
    }
}
