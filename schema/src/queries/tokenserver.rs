//! Statements on the tokenserver tables `services`, `nodes` and `users` (tokenserver-api.md
//! §7, §8.2, §10). The rules that combine them (get-or-create, consistency checks, node choice,
//! capacity release) live in the tokenserver actor; these functions each run one statement.

use diesel::QueryResult;

use super::dialect::Lock;
use super::dialect::{greatest, insert_ignore, int64, last_insert_id, lock_clause};
use super::sql::{Arg, Sql};
use crate::models::tokenserver::{NewUser, NodeFields, NodeRow, ReplacedUser, UserRecord};
use crate::models::Single;
use crate::pool::Tx;

/// The service name of Sync 1.5 in the `services` table.
pub const SYNC_SERVICE: &str = "sync-1.5";

/// How many of an account's rows get-or-create loads (§6.2).
const USER_ROWS_LIMIT: i64 = 20;

const NODE_COLUMNS: &str = "id, node, available, current_load, capacity, downed, backoff";

// ---- services ----

/// The id of service `name` (looked up by name: its value depends on the migration history).
pub fn service_id(tx: &mut Tx<'_>, name: &str) -> QueryResult<Option<i32>> {
    let int64 = int64(tx.backend());
    Ok(Sql::new(format!("SELECT CAST(id AS {int64}) AS value FROM services WHERE service = ?"))
        .arg(Arg::Str(name))
        .first::<Single>(tx)?
        .map(|r| r.value as i32))
}

// ---- users ----

/// A `UserRecord`: a `users` row with its node's URL (the rows are filtered by the caller).
const USER_RECORD: &str = "SELECT users.uid AS uid, users.nodeid AS nodeid, nodes.node AS node, \
       users.generation AS generation, users.keys_changed_at AS keys_changed_at, \
       users.client_state AS client_state, users.created_at AS created_at, \
       users.replaced_at AS replaced_at \
     FROM users LEFT OUTER JOIN nodes ON users.nodeid = nodes.id";

/// The `users` row of uid `uid` with its node's URL.
pub fn user_by_uid(tx: &mut Tx<'_>, service: i32, uid: i64) -> QueryResult<Option<UserRecord>> {
    Sql::new(format!("{USER_RECORD} WHERE users.service = ? AND users.uid = ?"))
        .arg(Arg::I32(service))
        .arg(Arg::I64(uid))
        .first(tx)
}

/// The account's most recent rows, newest first by `(created_at, uid)`, with their node URL
/// (§8.2). The caller picks the current row (§6.2 step 1).
pub fn user_records(tx: &mut Tx<'_>, service: i32, email: &str) -> QueryResult<Vec<UserRecord>> {
    Sql::new(format!(
        "{USER_RECORD} WHERE users.email = ? AND users.service = ? \
         ORDER BY users.created_at DESC, users.uid DESC LIMIT ?"
    ))
    .arg(Arg::Str(email))
    .arg(Arg::I32(service))
    .arg(Arg::I64(USER_ROWS_LIMIT))
    .load(tx)
}

/// Inserts a user row and returns its uid.
pub fn insert_user(tx: &mut Tx<'_>, user: &NewUser<'_>) -> QueryResult<i64> {
    let backend = tx.backend();
    Sql::new(
        "INSERT INTO users (service, email, generation, client_state, created_at, nodeid, \
           keys_changed_at, replaced_at) VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
    )
    .arg(Arg::I32(user.service))
    .arg(Arg::Str(user.email))
    .arg(Arg::I64(user.generation))
    .arg(Arg::Str(user.client_state))
    .arg(Arg::I64(user.created_at))
    .arg(Arg::I64(user.nodeid))
    .arg(Arg::OptI64(user.keys_changed_at))
    .execute(tx)?;
    Sql::new(last_insert_id(backend))
        .first::<Single>(tx)?
        .map(|r| r.value)
        .ok_or(diesel::result::Error::NotFound)
}

/// Marks one row replaced at `at` (ms).
pub fn mark_replaced(tx: &mut Tx<'_>, service: i32, uid: i64, at: i64) -> QueryResult<usize> {
    Sql::new("UPDATE users SET replaced_at = ? WHERE service = ? AND uid = ?")
        .arg(Arg::I64(at))
        .arg(Arg::I32(service))
        .arg(Arg::I64(uid))
        .execute(tx)
}

/// Marks every live row of the account created before `at` replaced at `at` (§8.2).
pub fn replace_older_records(tx: &mut Tx<'_>, service: i32, email: &str, at: i64) -> QueryResult<usize> {
    Sql::new(
        "UPDATE users SET replaced_at = ? \
         WHERE service = ? AND email = ? AND replaced_at IS NULL AND created_at < ?",
    )
    .arg(Arg::I64(at))
    .arg(Arg::I32(service))
    .arg(Arg::Str(email))
    .arg(Arg::I64(at))
    .execute(tx)
}

/// Raises the current row's generation and keys_changed_at in place (§6.4). The guards keep a
/// concurrent request from moving either value backwards.
pub fn update_generation(
    tx: &mut Tx<'_>,
    service: i32,
    email: &str,
    generation: i64,
    keys_changed_at: Option<i64>,
) -> QueryResult<usize> {
    Sql::new(
        "UPDATE users SET generation = ?, keys_changed_at = ? \
         WHERE service = ? AND email = ? AND generation <= ? \
           AND COALESCE(keys_changed_at, 0) <= COALESCE(?, keys_changed_at, 0) \
           AND replaced_at IS NULL",
    )
    .arg(Arg::I64(generation))
    .arg(Arg::OptI64(keys_changed_at))
    .arg(Arg::I32(service))
    .arg(Arg::Str(email))
    .arg(Arg::I64(generation))
    .arg(Arg::OptI64(keys_changed_at))
    .execute(tx)
}

/// Marks every row on a node replaced at `at` (§10.4), current or not.
pub fn unassign_node(tx: &mut Tx<'_>, node_id: i64, at: i64) -> QueryResult<usize> {
    Sql::new("UPDATE users SET replaced_at = ? WHERE nodeid = ?")
        .arg(Arg::I64(at))
        .arg(Arg::I64(node_id))
        .execute(tx)
}

// ---- nodes ----

pub fn node_by_url(tx: &mut Tx<'_>, service: i32, node: &str) -> QueryResult<Option<NodeRow>> {
    Sql::new(format!("SELECT {NODE_COLUMNS} FROM nodes WHERE service = ? AND node = ?"))
        .arg(Arg::I32(service))
        .arg(Arg::Str(node))
        .first(tx)
}

/// Every node of the service, in id order.
pub fn list_nodes(tx: &mut Tx<'_>, service: i32) -> QueryResult<Vec<NodeRow>> {
    Sql::new(format!("SELECT {NODE_COLUMNS} FROM nodes WHERE service = ? ORDER BY id"))
        .arg(Arg::I32(service))
        .load(tx)
}

/// Locks a node's row for the rest of the transaction and returns it, so that the caller's
/// decision to assign a user there holds until the commit (SQLite's write transactions are
/// exclusive already).
pub fn lock_node(tx: &mut Tx<'_>, node_id: i64) -> QueryResult<Option<NodeRow>> {
    let backend = tx.backend();
    Sql::new(format!("SELECT {NODE_COLUMNS} FROM nodes WHERE id = ?{}", lock_clause(backend, Lock::Write)))
        .arg(Arg::I64(node_id))
        .first(tx)
}

/// Sets the slots released on a node that has none left (§7.1); a node that got slots from a
/// concurrent release meanwhile is left as it is. Returns whether the row changed.
pub fn release_slots(tx: &mut Tx<'_>, node_id: i64, available: i32) -> QueryResult<bool> {
    let changed = Sql::new("UPDATE nodes SET available = ? WHERE id = ? AND available <= 0")
        .arg(Arg::I32(available))
        .arg(Arg::I64(node_id))
        .execute(tx)?;
    Ok(changed == 1)
}

/// Counts one more user on a node and takes one of its released slots, if any (§7.2; an
/// operator's explicit assignment, §10.5, counts even without one).
pub fn count_assignment(tx: &mut Tx<'_>, node_id: i64) -> QueryResult<usize> {
    let backend = tx.backend();
    Sql::new(format!(
        "UPDATE nodes SET current_load = current_load + 1, available = {}(available - 1, 0) WHERE id = ?",
        greatest(backend)
    ))
    .arg(Arg::I64(node_id))
    .execute(tx)
}

/// Inserts a node row; every field of `fields` must be set. Returns the new id.
pub fn insert_node(tx: &mut Tx<'_>, service: i32, node: &str, fields: &NodeFields) -> QueryResult<i64> {
    Sql::new(
        "INSERT INTO nodes (service, node, available, current_load, capacity, downed, backoff) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .arg(Arg::I32(service))
    .arg(Arg::Str(node))
    .arg(Arg::I32(fields.available.unwrap_or(0)))
    .arg(Arg::I32(fields.current_load.unwrap_or(0)))
    .arg(Arg::I32(fields.capacity.unwrap_or(0)))
    .arg(Arg::I32(fields.downed.unwrap_or(0)))
    .arg(Arg::I32(fields.backoff.unwrap_or(0)))
    .execute(tx)?;
    node_by_url(tx, service, node)?.map(|n| n.id).ok_or(diesel::result::Error::NotFound)
}

/// Registers `node` with all of `capacity` available (REF's `init_node_url`, §7.4), unless a
/// node of that name exists. Returns whether a row was inserted.
pub fn insert_initial_node(tx: &mut Tx<'_>, service: i32, node: &str, capacity: i32) -> QueryResult<bool> {
    let backend = tx.backend();
    let inserted = Sql::new(insert_ignore(
        backend,
        "INTO nodes (service, node, available, current_load, capacity, downed, backoff) \
         VALUES (?, ?, ?, 0, ?, 0, 0)",
    ))
    .arg(Arg::I32(service))
    .arg(Arg::Str(node))
    .arg(Arg::I32(capacity))
    .arg(Arg::I32(capacity))
    .execute(tx)?;
    Ok(inserted == 1)
}

/// Sets the given columns of a node (§10.2); returns the rows changed (0: no such node).
pub fn update_node(tx: &mut Tx<'_>, node_id: i64, fields: &NodeFields) -> QueryResult<usize> {
    let columns = [
        ("capacity", fields.capacity),
        ("available", fields.available),
        ("current_load", fields.current_load),
        ("downed", fields.downed),
        ("backoff", fields.backoff),
    ];
    let set: Vec<(&str, i32)> = columns.iter().filter_map(|(c, v)| v.map(|v| (*c, v))).collect();
    if set.is_empty() {
        return Ok(0);
    }
    let assignments: Vec<String> = set.iter().map(|(c, _)| format!("{c} = ?")).collect();
    Sql::varying(format!("UPDATE nodes SET {} WHERE id = ?", assignments.join(", ")))
        .args(set.iter().map(|(_, v)| Arg::I32(*v)))
        .arg(Arg::I64(node_id))
        .execute(tx)
}

pub fn delete_node(tx: &mut Tx<'_>, node_id: i64) -> QueryResult<usize> {
    Sql::new("DELETE FROM nodes WHERE id = ?").arg(Arg::I64(node_id)).execute(tx)
}

/// Retires an account (tokenserver-api.md §6.1, §8.2): every live row gets MAX generation, so
/// no token is issued again, and is marked replaced at `at`, so the purge of replaced users
/// (§10.6) deletes its data once the grace period has passed. Used when a local account is
/// deleted and for FxA's account-deleted event.
pub fn retire_user(tx: &mut Tx<'_>, service: i32, email: &str, at: i64) -> QueryResult<usize> {
    Sql::new(
        "UPDATE users SET generation = ?, replaced_at = ? \
         WHERE service = ? AND email = ? AND replaced_at IS NULL",
    )
    .arg(Arg::I64(i64::MAX))
    .arg(Arg::I64(at))
    .arg(Arg::I32(service))
    .arg(Arg::Str(email))
    .execute(tx)
}

/// Raises the live rows' generation to `generation` (FxA's password-change event, §10.8); a row
/// already at or above it is left alone, so a late event never lowers the value.
pub fn raise_generation(tx: &mut Tx<'_>, service: i32, email: &str, generation: i64) -> QueryResult<usize> {
    Sql::new(
        "UPDATE users SET generation = ? \
         WHERE service = ? AND email = ? AND replaced_at IS NULL AND generation < ?",
    )
    .arg(Arg::I64(generation))
    .arg(Arg::I32(service))
    .arg(Arg::Str(email))
    .arg(Arg::I64(generation))
    .execute(tx)
}

// ---- the purge of replaced users (§10.6) ----

const REPLACED_FILTER: &str = "users.service = ? AND users.replaced_at IS NOT NULL AND users.replaced_at < ?";

/// Up to `limit` rows replaced before `before` (ms) with a uid above `after_uid`, in uid order,
/// with their node's URL and `downed` flag (§8.2's old-records query). The uid order lets a
/// pass go on after the last row it handled whatever happened to the rows before it. With
/// `node`, only rows on that node.
pub fn replaced_users(
    tx: &mut Tx<'_>,
    service: i32,
    before: i64,
    after_uid: i64,
    node: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<ReplacedUser>> {
    Sql::new(format!(
        "SELECT users.uid AS uid, users.nodeid AS nodeid, users.email AS email, \
           users.generation AS generation, users.keys_changed_at AS keys_changed_at, \
           users.client_state AS client_state, users.replaced_at AS replaced_at, \
           nodes.node AS node, nodes.downed AS downed \
         FROM users LEFT OUTER JOIN nodes ON users.nodeid = nodes.id \
         WHERE {REPLACED_FILTER} AND users.uid > ?{} \
         ORDER BY users.uid LIMIT ?",
        if node.is_some() { " AND nodes.node = ?" } else { "" }
    ))
    .arg(Arg::I32(service))
    .arg(Arg::I64(before))
    .arg(Arg::I64(after_uid))
    .args(node.map(Arg::Str))
    .arg(Arg::I64(limit))
    .load(tx)
}

/// How many rows `replaced_users` would go through (the purge's backlog).
pub fn count_replaced_users(
    tx: &mut Tx<'_>,
    service: i32,
    before: i64,
    node: Option<&str>,
) -> QueryResult<i64> {
    let int64 = int64(tx.backend());
    Ok(Sql::new(format!(
        "SELECT CAST(COUNT(*) AS {int64}) AS value \
         FROM users LEFT OUTER JOIN nodes ON users.nodeid = nodes.id \
         WHERE {REPLACED_FILTER}{}",
        if node.is_some() { " AND nodes.node = ?" } else { "" }
    ))
    .arg(Arg::I32(service))
    .arg(Arg::I64(before))
    .args(node.map(Arg::Str))
    .first::<Single>(tx)?
    .map_or(0, |r| r.value))
}

/// Deletes a user row that is replaced (a live row is never deleted, whatever the caller saw).
/// Returns the rows deleted: 0 when an earlier pass deleted it already.
pub fn delete_replaced_user(tx: &mut Tx<'_>, service: i32, uid: i64) -> QueryResult<usize> {
    Sql::new("DELETE FROM users WHERE service = ? AND uid = ? AND replaced_at IS NOT NULL")
        .arg(Arg::I32(service))
        .arg(Arg::I64(uid))
        .execute(tx)
}

/// Gives a purged user's slot back to its node (§7.3).
pub fn release_slot(tx: &mut Tx<'_>, node_id: i64) -> QueryResult<usize> {
    Sql::new("UPDATE nodes SET available = available + 1, current_load = current_load - 1 WHERE id = ?")
        .arg(Arg::I64(node_id))
        .execute(tx)
}
