//! `write`: every iteration is one POST of `--records-per-post` new BSOs of
//! `--payload-bytes` each to one of the user's big collections, sent as Firefox sends uploads
//! (`?batch=true&commit=true`, `X-If-Unmodified-Since` of the collection).

use rand::Rng;

use super::{upload, BatchKinds, User};
use crate::http::{Session, Step};

/// The collections the writes go to, one chosen per POST.
pub const WRITE_COLLECTIONS: [&str; 4] = ["history", "bookmarks", "forms", "passwords"];

const WRITE_UPLOAD: BatchKinds = BatchKinds {
    single: "POST (batch=true&commit=true)",
    create: "POST (batch=true)",
    append: "POST (batch append)",
    commit: "POST (batch commit)",
};

pub async fn iteration(s: &mut Session, user: &mut User) -> Step<()> {
    let collection = WRITE_COLLECTIONS[s.rng.gen_range(0..WRITE_COLLECTIONS.len())];
    let (count, size) = (s.shared.opts.records_per_post, s.shared.opts.payload_bytes);
    let records = s.shared.pool.records(&mut s.rng, count, size);
    upload(s, user, collection, &records, &WRITE_UPLOAD).await?;
    Ok(())
}
