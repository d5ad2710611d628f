//! `sync`: the periodic sync of a desktop Firefox (storage-api.md §12.1). Every sync starts
//! with a conditional `info/collections`; most stop at its 304. The others sometimes re-read
//! `meta/global` and `crypto/keys`, upload this device's tabs and read the others', fetch new
//! history with `newer=` and upload their own new visits in one `?batch=true&commit=true`,
//! and now and then update this device's `clients` record. Setup gives every user the
//! `meta/global` and `crypto/keys` of a first sync when it has none.

use rand::Rng;

use super::{get_records, info_collections, put_item, upload, BatchKinds, User};
use crate::http::{Request, Session, Step};
use crate::payload::Bso;

/// Share of syncs that find nothing changed and stop after `info/collections`.
pub const QUIET_SYNCS: f64 = 0.75;
/// Of the other syncs: how often each engine has something to do.
pub const META_REFRESH: f64 = 0.3;
pub const TABS: f64 = 0.8;
pub const HISTORY: f64 = 0.6;
pub const CLIENTS: f64 = 0.2;
/// New history visits per sync: 1 to this many (bounded by `--records-per-post`).
pub const MAX_NEW_VISITS: usize = 20;
/// Firefox's ttl for tabs and clients records (21 days).
pub const TABS_TTL_S: u32 = 1_814_400;

const HISTORY_UPLOAD: BatchKinds = BatchKinds {
    single: "POST history (batch=true&commit=true)",
    create: "POST history (batch=true)",
    append: "POST history (batch append)",
    commit: "POST history (batch commit)",
};

fn device_id(user: &User) -> String {
    format!("device{:06}", user.uid % 1_000_000)
}

pub async fn setup(s: &mut Session, user: &mut User) -> Step<()> {
    info_collections(s, user, false).await?;
    if user.collections.contains_key("meta") {
        return Ok(());
    }
    // A fresh account's first sync: create-only PUTs (`X-If-Unmodified-Since: 0`).
    let size = s.shared.opts.payload_bytes;
    for (collection, id) in [("meta", "global"), ("crypto", "keys")] {
        let record = Bso {
            id: id.to_string(),
            payload: s.shared.pool.payload(&mut s.rng, size),
            sortindex: None,
            ttl: None,
        };
        put_item(s, user, "PUT meta/global, crypto/keys (first sync)", collection, &record, "0".into())
            .await?;
    }
    Ok(())
}

pub async fn iteration(s: &mut Session, user: &mut User) -> Step<()> {
    info_collections(s, user, true).await?;
    if s.rng.gen_bool(QUIET_SYNCS) {
        return Ok(());
    }
    if s.rng.gen_bool(META_REFRESH) {
        for (kind, path) in
            [("GET meta/global", "storage/meta/global"), ("GET crypto/keys", "storage/crypto/keys")]
        {
            s.call(kind, Request::get(user.path(path), &user.creds), &[200]).await?;
        }
    }
    let size = s.shared.opts.payload_bytes;
    if s.rng.gen_bool(TABS) {
        let record = Bso {
            id: device_id(user),
            payload: s.shared.pool.payload(&mut s.rng, size),
            sortindex: None,
            ttl: Some(TABS_TTL_S),
        };
        let xius = user.collection_ts("tabs");
        put_item(s, user, "PUT tabs", "tabs", &record, xius).await?;
        get_records(s, user, "GET tabs?full=1", "tabs", "full=1").await?;
    }
    if s.rng.gen_bool(HISTORY) {
        let newer = user.collection_ts("history");
        let query = format!("newer={newer}&full=1&limit=1000");
        get_records(s, user, "GET history?newer&full=1&limit=1000", "history", &query).await?;
        let count = s.rng.gen_range(1..=MAX_NEW_VISITS.min(s.shared.opts.records_per_post));
        let records = s.shared.pool.records(&mut s.rng, count, size);
        upload(s, user, "history", &records, &HISTORY_UPLOAD).await?;
    }
    if s.rng.gen_bool(CLIENTS) {
        let record = Bso {
            id: device_id(user),
            payload: s.shared.pool.payload(&mut s.rng, size),
            sortindex: None,
            ttl: Some(TABS_TTL_S),
        };
        let xius = user.collection_ts("clients");
        put_item(s, user, "PUT clients", "clients", &record, xius).await?;
        get_records(s, user, "GET clients?full=1", "clients", "full=1").await?;
    }
    Ok(())
}
