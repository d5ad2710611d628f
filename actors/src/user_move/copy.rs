//! Step 2 of a move: the user's data written on the target as it is on the source — every
//! collection with its last-modified, the tombstone, every live item with its modified, ttl
//! and sortindex — replacing whatever the target held for the uid, in one write transaction
//! on the target that also marks the user `INCOMING`. The same statements as `weft import`;
//! items are read and written a page at a time, so memory stays bounded by a page.

use weft_schema::models::{ExportedBso, MoveMarker, NewBso};
use weft_schema::pool::Tx;
use weft_schema::queries::storage::{self, TOMBSTONE_COLLECTION};
use weft_schema::queries::transfer;
use weft_schema::queries::user_move::{self as q, INCOMING};
use weft_schema::timestamp::unix_millis;

use super::MoveError;

/// Items read and written per statement.
const PAGE: i64 = 200;

/// What a copy wrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Copied {
    pub bsos: u64,
    /// Payload bytes.
    pub bytes: u64,
}

/// Copies user `uid` from the source transaction `from` (of node `source`) into the target
/// transaction `to`.
pub fn copy_user(from: &mut Tx<'_>, to: &mut Tx<'_>, uid: i64, source: &str) -> Result<Copied, MoveError> {
    q::wait_for_writers(from, uid)?;
    let now = unix_millis();
    let incoming = MoveMarker { state: INCOMING, peer: source.to_string(), since: now, purge_after: 0 };
    q::put_marker(to, uid, &incoming)?;
    storage::erase_user(to, uid)?;
    let mut copied = Copied::default();
    for row in storage::user_collections(from, uid)? {
        if row.collection == TOMBSTONE_COLLECTION {
            transfer::put_collection_modified(to, uid, TOMBSTONE_COLLECTION, row.last_modified)?;
            continue;
        }
        // Collection ids are per database: the name is what both nodes agree on.
        let name = row.name.ok_or(MoveError::UnnamedCollection { uid, collection: row.collection })?;
        let id = match storage::collection_id(to, &name)? {
            Some(id) => id,
            None => storage::create_collection(to, &name)?,
        };
        transfer::put_collection_modified(to, uid, id, row.last_modified)?;
        let mut after = String::new();
        loop {
            let page = transfer::bsos_after(from, uid, row.collection, &after, now, PAGE)?;
            let rows: Vec<NewBso<'_>> = page.iter().map(ExportedBso::as_new).collect();
            if !rows.is_empty() {
                storage::upsert_bsos(to, uid, id, &rows)?;
            }
            copied.bsos += page.len() as u64;
            copied.bytes += page.iter().map(|b| b.payload.len() as u64).sum::<u64>();
            match page.last() {
                Some(last) if page.len() as i64 == PAGE => after.clone_from(&last.id),
                _ => break,
            }
        }
        storage::refresh_collection_totals(to, uid, id, now)?;
    }
    Ok(copied)
}
