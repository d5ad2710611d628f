//! The four steps of a move (see `mod.rs`) and `move_user`, which looks at where a move of the
//! user stands and runs the steps that remain. Each step is one transaction, run again as a
//! whole on a deadlock or a lost connection (the one retry policy).

use std::time::{Duration, Instant};

use weft_schema::models::MoveMarker;
use weft_schema::pool::Tx;
use weft_schema::queries::tokenserver as ts;
use weft_schema::queries::user_move::{self as q, HELD, INCOMING, MOVED, SETTLED};
use weft_schema::retry::{with_retries, DbFailure};
use weft_schema::timestamp::unix_millis;
use weft_schema::{DbError, DbPool};

use super::copy::{copy_user, Copied};

/// A storage node: its canonical URL (as the tokenserver's `nodes.node` has it) and its
/// database.
#[derive(Clone, Copy)]
pub struct NodeDb<'a> {
    pub url: &'a str,
    pub pool: &'a DbPool,
}

#[derive(Debug, thiserror::Error)]
pub enum MoveError {
    #[error(transparent)]
    Database(#[from] DbError),
    #[error("the tokenserver database has no sync-1.5 service")]
    NoSyncService,
    #[error("node {0} is not one of the tokenserver's nodes")]
    UnknownNode(String),
    #[error("no user with uid {0} in the tokenserver")]
    NoSuchUser(i64),
    #[error("uid {0} is a replaced record (the account has a newer one); only a live record moves")]
    Replaced(i64),
    #[error("user {uid} is on {actual}, not on {expected}")]
    NotOnSource { uid: i64, actual: String, expected: String },
    #[error("user {uid} is being moved to {peer}: run the move to {peer} again to finish it")]
    MovingElsewhere { uid: i64, peer: String },
    #[error(
        "user {uid} moved away from {node} less than a token lifetime ago (tokens for it are valid \
         until {until_ms} ms): it can move back once the deleter has removed its old copy there"
    )]
    RecentlyMovedAway { uid: i64, node: String, until_ms: i64 },
    #[error("user {uid}: collection id {collection} has no name in `collections` on the source")]
    UnnamedCollection { uid: i64, collection: i32 },
    #[error(
        "user {0} changed in the tokenserver during the move (new keys or retired): the move was undone"
    )]
    Changed(i64),
}

impl From<diesel::result::Error> for MoveError {
    fn from(err: diesel::result::Error) -> Self {
        MoveError::Database(err.into())
    }
}

impl DbFailure for MoveError {
    fn db_error(&self) -> Option<&DbError> {
        match self {
            MoveError::Database(err) => Some(err),
            _ => None,
        }
    }
}

/// What `move_user` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoveOutcome {
    /// The user was moved (or a move interrupted after its copy was finished).
    Moved {
        bsos: u64,
        bytes: u64,
        /// From the hold's commit to the release: how long the user's writes were refused.
        held: Duration,
    },
    /// The user was on the target already; nothing was left to do.
    AlreadyThere,
}

#[derive(Debug, Clone, Copy)]
pub struct MoveSettings {
    /// How long a token issued for the source may still be used after the switch (the token
    /// lifetime, plus a margin for one minted from a read just before the switch): so long the
    /// source answers the moved user 401, before the deleter may remove its copy.
    pub token_lifetime: Duration,
}

/// How long a settled marker stays for the caches to read (`storage::user_moves::MoveWatch` reads
/// every second).
const SETTLED_KEPT_MS: i64 = 60_000;

fn on_retry(attempt: u32, err: &DbError) {
    tracing::warn!(attempt, error = %err, "user move: transaction failed; retrying");
}

fn write<T>(pool: &DbPool, step: impl Fn(&mut Tx<'_>) -> Result<T, MoveError>) -> Result<T, MoveError> {
    with_retries(on_retry, || pool.get()?.write_transaction(&step))
}

fn read<T>(pool: &DbPool, step: impl Fn(&mut Tx<'_>) -> Result<T, MoveError>) -> Result<T, MoveError> {
    with_retries(on_retry, || pool.get()?.read_transaction(&step))
}

/// Moves user `uid` from `source` to `target`, or finishes a move of it that was interrupted:
/// runs whichever steps remain and answers what was done. Running it again after it succeeded
/// answers `AlreadyThere`.
pub fn move_user(
    tokenserver: &DbPool,
    source: NodeDb<'_>,
    target: NodeDb<'_>,
    uid: i64,
    settings: MoveSettings,
) -> Result<MoveOutcome, MoveError> {
    let (service, source_id, target_id, user) = read(tokenserver, |tx| {
        let service = ts::service_id(tx, ts::SYNC_SERVICE)?.ok_or(MoveError::NoSyncService)?;
        let node_id = |tx: &mut Tx<'_>, url: &str| -> Result<i64, MoveError> {
            Ok(ts::node_by_url(tx, service, url)?.ok_or_else(|| MoveError::UnknownNode(url.into()))?.id)
        };
        let (source_id, target_id) = (node_id(tx, source.url)?, node_id(tx, target.url)?);
        let user = q::user_by_uid(tx, service, uid)?.ok_or(MoveError::NoSuchUser(uid))?;
        Ok((service, source_id, target_id, user))
    })?;
    if user.replaced_at.is_some() {
        return Err(MoveError::Replaced(uid));
    }
    let purge_after = || unix_millis() + millis(settings.token_lifetime);
    if user.nodeid == target_id {
        // Switched already: only the release may be left.
        return match read(target.pool, |tx| Ok(q::marker(tx, uid)?))? {
            Some(m) if m.state == INCOMING && m.peer == source.url => {
                let started = Instant::now();
                release(source, target, uid, purge_after())?;
                Ok(MoveOutcome::Moved { bsos: 0, bytes: 0, held: started.elapsed() })
            }
            Some(m) if m.state == INCOMING => Err(MoveError::MovingElsewhere { uid, peer: m.peer }),
            _ => Ok(MoveOutcome::AlreadyThere),
        };
    }
    if user.nodeid != source_id {
        return Err(MoveError::NotOnSource {
            uid,
            actual: user.node.unwrap_or_else(|| "no node".into()),
            expected: source.url.into(),
        });
    }
    match read(source.pool, |tx| Ok(q::marker(tx, uid)?))? {
        Some(m) if m.state == HELD && m.peer != target.url => {
            return Err(MoveError::MovingElsewhere { uid, peer: m.peer })
        }
        _ => {}
    }
    match read(target.pool, |tx| Ok(q::marker(tx, uid)?))? {
        Some(m) if m.state == MOVED && m.purge_after > unix_millis() => {
            return Err(MoveError::RecentlyMovedAway {
                uid,
                node: target.url.into(),
                until_ms: m.purge_after,
            })
        }
        _ => {}
    }

    hold(source, target.url, uid)?;
    let held = Instant::now();
    let copied = copy(source, target, uid)?;
    let switched = write(tokenserver, |tx| {
        if q::switch_node(tx, service, uid, source_id, target_id)? == 1 {
            ts::release_slot(tx, source_id)?;
            ts::count_assignment(tx, target_id)?;
            return Ok(true);
        }
        // Not switched by this transaction: switched by an earlier run, or the row changed.
        Ok(q::user_by_uid(tx, service, uid)?
            .is_some_and(|u| u.nodeid == target_id && u.replaced_at.is_none()))
    })?;
    if !switched {
        undo(source, target, uid)?;
        return Err(MoveError::Changed(uid));
    }
    release(source, target, uid, purge_after())?;
    Ok(MoveOutcome::Moved { bsos: copied.bsos, bytes: copied.bytes, held: held.elapsed() })
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Step 1: the user's writes on `source` are refused from this transaction's commit on, and
/// every write that began before it has committed (or rolled back) when it returns.
fn hold(source: NodeDb<'_>, target: &str, uid: i64) -> Result<(), MoveError> {
    write(source.pool, |tx| {
        q::wait_for_writers(tx, uid)?;
        let held = MoveMarker { state: HELD, peer: target.to_string(), since: unix_millis(), purge_after: 0 };
        q::put_marker(tx, uid, &held)?;
        Ok(())
    })
}

/// Step 2: the source read and the target written in one transaction each, the target's
/// committing last, so the target holds either nothing new or the whole copy.
fn copy(source: NodeDb<'_>, target: NodeDb<'_>, uid: i64) -> Result<Copied, MoveError> {
    with_retries(on_retry, || {
        let mut from = source.pool.get()?;
        let mut to = target.pool.get()?;
        from.read_transaction(|from| to.write_transaction(|to| copy_user(from, to, uid, source.url)))
    })
}

/// Step 4: the source refuses the moved user with 401 until `purge_after`, then the target
/// serves it.
fn release(source: NodeDb<'_>, target: NodeDb<'_>, uid: i64, purge_after: i64) -> Result<(), MoveError> {
    write(source.pool, |tx| {
        let moved =
            MoveMarker { state: MOVED, peer: target.url.to_string(), since: unix_millis(), purge_after };
        q::put_marker(tx, uid, &moved)?;
        Ok(())
    })?;
    write(target.pool, |tx| settle(tx, uid, INCOMING))
}

/// The user's marker here says the move is over, if it says `state`: kept a minute so that
/// every webhead's cache learns it (`storage::user_moves::MoveWatch`), then the deleter removes it.
fn settle(tx: &mut Tx<'_>, uid: i64, state: i32) -> Result<(), MoveError> {
    if let Some(m) = q::marker(tx, uid)?.filter(|m| m.state == state) {
        let now = unix_millis();
        q::put_marker(
            tx,
            uid,
            &MoveMarker { state: SETTLED, since: now, purge_after: now + SETTLED_KEPT_MS, ..m },
        )?;
    }
    Ok(())
}

/// Takes a move back before its switch: the target's copy goes, the source serves the user
/// again.
fn undo(source: NodeDb<'_>, target: NodeDb<'_>, uid: i64) -> Result<(), MoveError> {
    write(target.pool, |tx| {
        if q::marker(tx, uid)?.is_some_and(|m| m.state == INCOMING) {
            weft_schema::queries::storage::erase_user(tx, uid)?;
        }
        settle(tx, uid, INCOMING)
    })?;
    write(source.pool, |tx| settle(tx, uid, HELD))
}
