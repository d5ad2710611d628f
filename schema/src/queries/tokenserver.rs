//! Statements on the tokenserver tables `services`, `nodes` and `users` (tokenserver-api.md
//! §7, §8.2, §10). The rules that combine them (get-or-create, consistency checks, allocation
//! retries) live in the tokenserver actor; these functions each run one statement, except
//! `choose_node`, which also orders the candidates (see there).

use diesel::QueryResult;

use super::dialect::{greatest, insert_ignore, int64, last_insert_id, least};
use super::sql::{Arg, Sql};
use crate::models::tokenserver::{NewUser, NodeFields, NodeRow, UserRecord};
use crate::models::Single;
use crate::pool::{Backend, Tx};

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

/// The account's most recent rows, newest first by `(created_at, uid)`, with their node URL
/// (§8.2). The caller picks the current row (§6.2 step 1).
pub fn user_records(tx: &mut Tx<'_>, service: i32, email: &str) -> QueryResult<Vec<UserRecord>> {
    Sql::new(
        "SELECT users.uid AS uid, users.nodeid AS nodeid, nodes.node AS node, \
           users.generation AS generation, users.keys_changed_at AS keys_changed_at, \
           users.client_state AS client_state, users.created_at AS created_at, \
           users.replaced_at AS replaced_at \
         FROM users LEFT OUTER JOIN nodes ON users.nodeid = nodes.id \
         WHERE users.email = ? AND users.service = ? \
         ORDER BY users.created_at DESC, users.uid DESC LIMIT ?",
    )
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

/// The best node for a new user (§7.1), or `None` when no node has a released slot.
///
/// The candidates are selected in SQL and ordered here, identically for both backends: by
/// `ln(current_load) / ln(capacity)` with empty nodes (MySQL's NULL from `LOG(0)`) first, then
/// larger `available`, then lower id. SQLite has no `LOG` in every build, and its SQL ordering
/// (a linear ratio, as PY used) would choose differently from MySQL's.
pub fn choose_node(tx: &mut Tx<'_>, service: i32) -> QueryResult<Option<NodeRow>> {
    let mut candidates: Vec<NodeRow> = Sql::new(format!(
        "SELECT {NODE_COLUMNS} FROM nodes \
         WHERE service = ? AND available > 0 AND capacity > current_load AND downed = 0 AND backoff = 0"
    ))
    .arg(Arg::I32(service))
    .load(tx)?;
    candidates.sort_by(|a, b| {
        load_ratio(a)
            .partial_cmp(&load_ratio(b))
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(b.available.cmp(&a.available))
            .then(a.id.cmp(&b.id))
    });
    Ok(candidates.into_iter().next())
}

/// MySQL's `LOG(current_load) / LOG(capacity)`; `None` (sorting first, like NULL in MySQL) where
/// MySQL yields NULL: a load of 0 and a capacity whose log is 0 (division by zero).
fn load_ratio(node: &NodeRow) -> Option<f64> {
    if node.current_load <= 0 || node.capacity <= 1 {
        return None;
    }
    Some(f64::from(node.current_load).ln() / f64::from(node.capacity).ln())
}

/// Releases more slots on every node that has none left but still has room (§7.1):
/// `available = min(max(round(capacity × rate), 1), capacity − current_load)`. `rate` is a
/// validated setting in (0, 1], written into the text as a decimal literal so that MySQL
/// computes it in exact decimal arithmetic, as it does for REF's statement. Returns the nodes
/// changed.
///
/// The `max(…, 1)` is Weft's: with REF's formula a node whose capacity × rate rounds to 0
/// (capacity below 5 at the default 10 %) never releases a slot, so it can only ever hold the
/// users of its initial allotment. For every larger node the result is REF's.
pub fn release_capacity(tx: &mut Tx<'_>, service: i32, rate: f64) -> QueryResult<usize> {
    let backend = tx.backend();
    // SQLite would store a REAL with a fraction as is in an INTEGER column: round explicitly.
    let released = match backend {
        Backend::Sqlite => format!("MAX(CAST(ROUND(capacity * {rate}) AS INTEGER), 1)"),
        // PostgreSQL's ROUND of a numeric rounds half away from zero, as MySQL's does.
        Backend::Mysql | Backend::Postgres => format!("GREATEST(ROUND(capacity * {rate}), 1)"),
    };
    Sql::new(format!(
        "UPDATE nodes SET available = {}({released}, capacity - current_load) \
         WHERE service = ? AND available <= 0 AND capacity > current_load AND downed = 0",
        least(backend)
    ))
    .arg(Arg::I32(service))
    .execute(tx)
}

/// Takes one slot of a node for a new user (§7.2), only if it still qualifies: the condition
/// makes the capacity accounting atomic when two requests chose the same last slot. Returns
/// whether the slot was taken.
pub fn take_slot(tx: &mut Tx<'_>, node_id: i64) -> QueryResult<bool> {
    let backend = tx.backend();
    let changed = Sql::new(format!(
        "UPDATE nodes SET current_load = current_load + 1, available = {}(available - 1, 0) \
         WHERE id = ? AND available > 0 AND capacity > current_load AND downed = 0 AND backoff = 0",
        greatest(backend)
    ))
    .arg(Arg::I64(node_id))
    .execute(tx)?;
    Ok(changed == 1)
}

/// Counts one more user on a node regardless of its released slots, for an operator's explicit
/// assignment (§10.5).
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
    Sql::new(format!("UPDATE nodes SET {} WHERE id = ?", assignments.join(", ")))
        .args(set.iter().map(|(_, v)| Arg::I32(*v)))
        .arg(Arg::I64(node_id))
        .execute(tx)
}

pub fn delete_node(tx: &mut Tx<'_>, node_id: i64) -> QueryResult<usize> {
    Sql::new("DELETE FROM nodes WHERE id = ?").arg(Arg::I64(node_id)).execute(tx)
}
