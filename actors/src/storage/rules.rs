//! Storage rules every operation shares: preconditions (storage-api.md §5.4), the write
//! timestamp and its monotonicity (§4.2, §4.4), expiry arithmetic (§3.2), quota (§11) and the
//! bound on the collections one user holds.

use std::time::Duration;

use weft_schema::pool::Tx;
use weft_schema::queries::storage;
use weft_schema::SyncTimestamp;

use crate::storage::requests::Precondition;
use crate::storage::Storage;
use crate::storage::StorageError;

/// "Never expires": the write time plus 2 100 000 000 s, as REF writes for PUT/POST. (REF's
/// batch commits write the absolute 2 100 000 000 000 ms instead, which falls in 2036; one rule
/// for every write avoids that date.)
const NEVER_EXPIRES_MS: i64 = 2_100_000_000_000;

/// How far ahead of our clock a collection's last-modified may be for us to wait it out
/// rather than answer 503. Covers the same-tick collision (§4.4) and small clock differences
/// between webheads.
const MAX_TICK_WAIT_MS: i64 = 100;

/// Refuses the request when its precondition says so, given the resource's timestamp.
pub fn check_precondition(precondition: Precondition, resource: SyncTimestamp) -> Result<(), StorageError> {
    match precondition {
        Precondition::IfModifiedSince(ts) if resource <= ts => Err(StorageError::NotModified(resource)),
        Precondition::IfUnmodifiedSince(ts) if resource > ts => {
            Err(StorageError::PreconditionFailed(resource))
        }
        _ => Ok(()),
    }
}

/// The timestamp T of a write by a user whose data was last modified at `floor_ms`
/// (`lock_user`): T is strictly later, so that every view of the user's data — the collection
/// written, and the storage timestamp the `info/*` views answer `X-If-Modified-Since` with —
/// moves past anything a client saw before (storage-api.md §4.4 as PROTO phrases it, against
/// the user's overall timestamp). When the clock has not yet passed `floor_ms` (the user's
/// previous write, to any collection, fell in the same 10 ms tick), the write waits for the
/// next tick once, as PY did, and only then reports a conflict.
///
/// Why wait rather than take the next tick ahead of the clock: T is also the response's
/// `X-Weave-Timestamp`, the server's "now" that clients measure their clock skew and the ages
/// of items by (§4.2, §8), and the base of the write's expiry arithmetic. A T ahead of the
/// clock would make a later response's `X-Weave-Timestamp` older than an earlier write's, and
/// a user writing faster than one write per tick would drift ahead without bound. The wait
/// costs at most one tick, only to the second of two writes of one user within that tick, and
/// holds only that user's lock (`lock_user`; on SQLite the writer queue, which serialises
/// every write anyway).
pub fn write_timestamp(floor_ms: i64) -> Result<SyncTimestamp, StorageError> {
    let now = SyncTimestamp::now();
    if now.as_millis() > floor_ms {
        return Ok(now);
    }
    let wait = floor_ms - now.as_millis() + 10;
    if wait > MAX_TICK_WAIT_MS {
        return Err(StorageError::Conflict);
    }
    std::thread::sleep(Duration::from_millis(wait as u64));
    let retried = SyncTimestamp::now();
    if retried.as_millis() > floor_ms {
        Ok(retried)
    } else {
        Err(StorageError::Conflict)
    }
}

/// The absolute expiry (ms) of an item written at `t` with `ttl` seconds.
pub fn expiry(t: SyncTimestamp, ttl: u32) -> i64 {
    t.as_millis() + i64::from(ttl) * 1000
}

pub fn never_expires(t: SyncTimestamp) -> i64 {
    t.as_millis() + NEVER_EXPIRES_MS
}

/// Locks the user's data for a write and returns the time the write's timestamp must pass
/// (`write_timestamp`): the newest of the user's collection timestamps and tombstone — the
/// storage timestamp — and of the user's pending deletions (a storage deletion leaves no row
/// behind, and every item written after a deletion must be later than it, so that the deleter,
/// which removes only items at or before it, can never remove one, whichever finishes first).
/// Every write takes this lock before its collection's, so the writes of one user are ordered
/// and each one reads the floor its predecessor left.
pub fn lock_user(tx: &mut Tx<'_>, uid: i64) -> Result<i64, StorageError> {
    storage::lock_user(tx, uid)?;
    Ok(storage::write_floor(tx, uid)?)
}

/// Locks the user (`lock_user`) and then the collection's row for a write, creating the row when
/// missing; returns the collection's last-modified, whether it existed, and the time the
/// write's timestamp must pass.
pub fn lock_for_write(
    tx: &mut Tx<'_>,
    uid: i64,
    collection: i32,
) -> Result<(SyncTimestamp, bool, i64), StorageError> {
    let locked = storage::lock_user_and_collection(tx, uid, collection)?;
    let floor = storage::write_floor(tx, uid)?;
    let (current, existed) = match locked {
        Some(current) => (current, true),
        None => storage::lock_or_create_collection(tx, uid, collection)?,
    };
    Ok((SyncTimestamp::from_millis(current), existed, floor))
}

/// `lock_for_write` for a write that needs the collection to exist (a deletion): `None`, with
/// nothing created, when the user has no such collection.
pub fn lock_existing_for_write(
    tx: &mut Tx<'_>,
    uid: i64,
    collection: i32,
) -> Result<Option<(SyncTimestamp, i64)>, StorageError> {
    let Some(current) = storage::lock_user_and_collection(tx, uid, collection)? else {
        return Ok(None);
    };
    Ok(Some((SyncTimestamp::from_millis(current), storage::write_floor(tx, uid)?)))
}

/// Batch ids at or below this have expired; greater ones are open (REF: an id is its creation
/// time in ms, and a batch lives `batch_ttl_ms`).
pub fn expired_batches_bound(ctx: &Storage) -> i64 {
    SyncTimestamp::now().as_millis() - ctx.config().batch_ttl_ms
}

/// Refuses a write when the user's usage has reached the quota and quota is enforced (REF
/// checks before the write, so one write can cross the limit). Usage is the recorded bytes of
/// the collections plus what the user's open batches stage, so that batches opened and never
/// committed cannot hold more than the quota.
pub fn check_quota(ctx: &Storage, tx: &mut Tx<'_>, uid: i64) -> Result<(), StorageError> {
    let config = ctx.config();
    if !config.quota_enabled {
        return Ok(());
    }
    let staged = storage::staged_bytes(tx, uid, expired_batches_bound(ctx))?.max(0) as u64;
    let usage = storage::quota_usage(tx, uid)?.max(0) as u64 + staged;
    if usage >= config.quota_limit_bytes {
        if config.quota_enforce {
            return Err(StorageError::QuotaExceeded);
        }
        // Without the uid: no log line carries one in clear (ARCHITECTURE.md).
        tracing::info!(usage, "user at quota limit (not enforced)");
    }
    Ok(())
}

/// The collection a write by `uid` goes to, the user and its row locked for the write
/// (`lock_for_write`) and created when the user had no such collection (§3.3, within
/// `check_collection_bound`), with its last-modified and the time the write's timestamp must
/// pass.
pub fn open_collection(
    ctx: &Storage,
    tx: &mut Tx<'_>,
    uid: i64,
    name: &str,
) -> Result<(i32, SyncTimestamp, i64), StorageError> {
    let collection = ctx.ensure_collection_id(tx, name)?;
    let (current, existed, floor) = lock_for_write(tx, uid, collection)?;
    if !existed {
        check_collection_bound(ctx, tx, uid)?;
    }
    Ok((collection, current, floor))
}

/// Refuses the write that made the user hold more than `max_user_collections` collections
/// (its own, and those with an open batch): the error rolls the transaction back, and with it
/// the collection and the name's registration, so neither the user's rows nor the global name
/// table grow. The storage spec and Mozilla's servers set no such bound; Weft answers as for
/// a write over quota (403, body 14), a refusal Firefox already reports to the user rather than
/// retrying. First writes of one user to new collections running at the same moment can pass
/// the bound by their number: it bounds growth, it is not an exact count.
pub fn check_collection_bound(ctx: &Storage, tx: &mut Tx<'_>, uid: i64) -> Result<(), StorageError> {
    let held = storage::held_collections(tx, uid)?.max(0) as u64;
    if held > ctx.config().max_user_collections {
        return Err(StorageError::TooManyCollections);
    }
    Ok(())
}

/// After a write: refresh the collection's quota bookkeeping and report what remains when
/// little does (PY: `X-Weave-Quota-Remaining` below 1 MiB).
pub fn settle_quota(
    ctx: &Storage,
    tx: &mut Tx<'_>,
    uid: i64,
    collection: i32,
    now: SyncTimestamp,
) -> Result<Option<u64>, StorageError> {
    let config = ctx.config();
    if !config.quota_enabled {
        return Ok(None);
    }
    storage::refresh_collection_totals(tx, uid, collection, now.as_millis())?;
    if !config.quota_enforce {
        return Ok(None);
    }
    let usage = storage::quota_usage(tx, uid)?.max(0) as u64;
    let remaining = config.quota_limit_bytes.saturating_sub(usage);
    Ok((remaining < 1024 * 1024).then_some(remaining))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preconditions_compare_as_the_spec_says() {
        let ts = SyncTimestamp::from_millis(5000);
        let same = Precondition::IfModifiedSince(ts);
        assert!(matches!(check_precondition(same, ts), Err(StorageError::NotModified(_))));
        assert!(
            check_precondition(Precondition::IfModifiedSince(SyncTimestamp::from_millis(4990)), ts).is_ok()
        );
        assert!(check_precondition(Precondition::IfUnmodifiedSince(ts), ts).is_ok());
        assert!(matches!(
            check_precondition(Precondition::IfUnmodifiedSince(SyncTimestamp::from_millis(4990)), ts),
            Err(StorageError::PreconditionFailed(_))
        ));
        // "create only": X-If-Unmodified-Since: 0 against an existing item.
        assert!(check_precondition(Precondition::IfUnmodifiedSince(SyncTimestamp::ZERO), ts).is_err());
        assert!(check_precondition(
            Precondition::IfUnmodifiedSince(SyncTimestamp::ZERO),
            SyncTimestamp::ZERO
        )
        .is_ok());
    }

    #[test]
    fn write_timestamp_waits_out_the_same_tick() {
        let now = SyncTimestamp::now().as_millis();
        let t = write_timestamp(now).expect("one tick is waited out");
        assert!(t.as_millis() > now);
        assert!(matches!(write_timestamp(now + 10_000), Err(StorageError::Conflict)));
    }
}
