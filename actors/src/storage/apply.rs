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

/// A live stored item's fields that a write may keep.
#[derive(Debug, Clone, Copy)]
pub struct Stored {
    pub modified: i64,
    pub sortindex: Option<i32>,
    pub ttl: i64,
}

/// An item after a write: its fields, and its payload unless the stored one stays (`None`).
#[derive(Debug, Clone, Copy)]
pub struct Merged<'a> {
    pub modified: i64,
    pub sortindex: Option<i32>,
    pub ttl: i64,
    pub payload: Option<&'a str>,
}

/// The PUT-semantics rule for one item written at `t` over the live item `stored`: the one rule
/// the database write and the write-through cache (`storage/cache.rs`) both apply.
pub fn merge(item: &BsoInput, stored: Option<Stored>, t: SyncTimestamp, touch: Touch) -> Merged<'_> {
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
            Merged { modified, sortindex, ttl, payload: None }
        }
        (payload, _) => Merged {
            modified: t.as_millis(),
            sortindex,
            ttl,
            payload: Some(payload.as_deref().unwrap_or("")),
        },
    }
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
        let stored = live.get(&item.id).map(|row| Stored {
            modified: row.modified,
            sortindex: row.sortindex,
            ttl: row.ttl,
        });
        let merged = merge(item, stored, t, touch);
        match merged.payload {
            None => {
                storage::update_bso_metadata(
                    tx,
                    uid,
                    collection,
                    &item.id,
                    merged.sortindex,
                    merged.modified,
                    merged.ttl,
                )?;
            }
            Some(payload) => rows.push(NewBso {
                id: &item.id,
                sortindex: merged.sortindex,
                payload,
                modified: merged.modified,
                ttl: merged.ttl,
            }),
        }
    }
    storage::upsert_bsos(tx, uid, collection, &rows)?;
    Ok(())
}
