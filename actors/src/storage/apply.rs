//! Applying BSOs to the stored collection with PUT semantics (storage-api.md §6.12, §6.9):
//! supplied fields overwrite, absent fields keep the stored value, expired rows count as
//! absent. Everything is written with two statements whatever the number of items: one read
//! of the rows already there, one multi-row upsert (plus one small update per payload-less
//! change of a live row, which Firefox rarely sends).

use std::collections::HashMap;

use weft_schema::models::NewBso;
use weft_schema::pool::Tx;
use weft_schema::queries::storage;
use weft_schema::SyncTimestamp;

use crate::storage::requests::BsoInput;
use crate::storage::rules::{expiry, never_expires};
use crate::storage::StorageError;

/// Whether every applied item gets `modified = T` (a batch commit), or only those whose
/// payload or sortindex changes (PUT and plain POST: a ttl-only update keeps `modified`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Touch {
    Changed,
    All,
}

pub fn apply_bsos(
    tx: &mut Tx<'_>,
    uid: i64,
    collection: i32,
    items: &[BsoInput],
    t: SyncTimestamp,
    touch: Touch,
) -> Result<(), StorageError> {
    if items.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = items.iter().map(|b| b.id.as_str()).collect();
    let live: HashMap<String, _> = storage::existing_bsos(tx, uid, collection, &ids)?
        .into_iter()
        .filter(|row| row.ttl > t.as_millis())
        .map(|row| (row.id.clone(), row))
        .collect();

    let mut rows = Vec::with_capacity(items.len());
    for item in items {
        let stored = live.get(&item.id);
        let ttl = match (item.ttl, stored) {
            (Some(ttl), _) => expiry(t, ttl),
            (None, Some(row)) => row.ttl,
            (None, None) => never_expires(t),
        };
        let sortindex = item.sortindex.or(stored.and_then(|row| row.sortindex));
        match (&item.payload, stored) {
            (None, Some(row)) => {
                let changed = item.sortindex.is_some() || touch == Touch::All;
                let modified = if changed { t.as_millis() } else { row.modified };
                storage::update_bso_metadata(tx, uid, collection, &item.id, sortindex, modified, ttl)?;
            }
            (payload, _) => rows.push(NewBso {
                id: &item.id,
                sortindex,
                payload: payload.as_deref().unwrap_or(""),
                modified: t.as_millis(),
                ttl,
            }),
        }
    }
    storage::upsert_bsos(tx, uid, collection, &rows)?;
    Ok(())
}
