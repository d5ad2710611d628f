//! `read`: the read side of a second device catching up. Setup seeds every user's history with
//! `--records-per-user` records in `SEED_COMMITS` separate commits, remembering each commit's
//! timestamp; an iteration is `info/collections` plus `GET storage/history?newer=<one of those
//! timestamps>&full=1&limit=100`, so reads return anything from a full page to a partial one.

use rand::Rng;

use super::{get_records, info_collections, upload, BatchKinds, User};
use crate::http::{Session, Step};

/// Separate commits the seed is split into (each gives one `newer=` boundary).
const SEED_COMMITS: usize = 4;

const SEED_UPLOAD: BatchKinds = BatchKinds {
    single: "seed: POST history (batch=true&commit=true)",
    create: "seed: POST history (batch=true)",
    append: "seed: POST history (batch append)",
    commit: "seed: POST history (batch commit)",
};

pub async fn setup(s: &mut Session, user: &mut User) -> Step<()> {
    info_collections(s, user, false).await?;
    let total = s.shared.opts.records_per_user;
    let size = s.shared.opts.payload_bytes;
    let per_commit = total.div_ceil(SEED_COMMITS);
    let mut markers = vec!["0".to_string()];
    let mut left = total;
    while left > 0 {
        let count = per_commit.min(left);
        left -= count;
        let records = s.shared.pool.records(&mut s.rng, count, size);
        let ts = upload(s, user, "history", &records, &SEED_UPLOAD).await?;
        if left > 0 {
            markers.push(ts);
        }
    }
    user.read_markers = markers;
    Ok(())
}

pub async fn iteration(s: &mut Session, user: &mut User) -> Step<()> {
    info_collections(s, user, false).await?;
    let newer = if user.read_markers.is_empty() {
        "0".to_string()
    } else {
        user.read_markers[s.rng.gen_range(0..user.read_markers.len())].clone()
    };
    let query = format!("newer={newer}&full=1&limit=100");
    get_records(s, user, "GET history?newer&full=1&limit=100", "history", &query).await?;
    Ok(())
}
