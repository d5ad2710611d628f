//! `launch`: launch day, when every user's Firefox re-uploads everything. One iteration takes
//! the next user in turn and re-uploads its bookmarks, history, passwords and forms, each
//! through one batch (`?batch=true`, appends of `--records-per-post`, `&commit=true`).
//! `--records-per-user` records are split over the four collections; ids are the same at every
//! round, so a second round replaces the first, as a re-upload does.

use super::{upload, BatchKinds, User};
use crate::http::{Session, Step};
use crate::payload::Bso;

/// Collection, share of the user's records, id prefix.
pub const LAUNCH_COLLECTIONS: [(&str, f64, &str); 4] =
    [("bookmarks", 0.3, "bm"), ("history", 0.4, "hi"), ("passwords", 0.1, "pw"), ("forms", 0.2, "fo")];

const LAUNCH_UPLOAD: BatchKinds = BatchKinds {
    single: "POST (batch=true&commit=true)",
    create: "POST (batch=true)",
    append: "POST (batch append)",
    commit: "POST (batch commit)",
};

/// How many of `total` records go to a collection with this share (at least one).
pub fn share(total: usize, share: f64) -> usize {
    ((total as f64 * share).round() as usize).max(1)
}

/// The stable id of a user's `index`-th record of a collection: 12 characters like a GUID.
pub fn launch_id(prefix: &str, index: usize) -> String {
    format!("{prefix}{index:010}")
}

pub async fn iteration(s: &mut Session, user: &mut User) -> Step<()> {
    let size = s.shared.opts.payload_bytes;
    for (collection, fraction, prefix) in LAUNCH_COLLECTIONS {
        let count = share(s.shared.opts.records_per_user, fraction);
        let records: Vec<Bso> = (0..count)
            .map(|i| Bso {
                id: launch_id(prefix, i),
                payload: s.shared.pool.payload(&mut s.rng, size),
                sortindex: Some(((i * 7) % 100) as i32),
                ttl: None,
            })
            .collect();
        upload(s, user, collection, &records, &LAUNCH_UPLOAD).await?;
    }
    Ok(())
}
