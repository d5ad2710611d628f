//! Statements on `account_device_commands` (issue 25): device commands waiting for their
//! target device. One statement per function, one text for every backend. The rules (same
//! account, registered command, size, expiry, index order) live in the accounts actor.

use diesel::QueryResult;

use super::sql::{Arg, Sql};
use crate::models::device_commands::DeviceCommandRow;
use crate::pool::Tx;

const COLUMNS: &str = "device_id, idx, uid, command, payload, sender, created_at, expires_at";

/// Locks the target device's row until the transaction ends, so that two commands sent to it
/// at once get different indexes (the next index is read after this under READ COMMITTED;
/// SQLite's write transactions are serial anyway).
pub fn lock_device(tx: &mut Tx<'_>, uid: &str, device_id: &str) -> QueryResult<usize> {
    Sql::new("UPDATE account_devices SET last_access_at = last_access_at WHERE uid = ? AND id = ?")
        .arg(Arg::Str(uid))
        .arg(Arg::Str(device_id))
        .execute(tx)
}

/// The highest index the device's pending commands use (0 when none).
pub fn last_index(tx: &mut Tx<'_>, device_id: &str) -> QueryResult<i64> {
    #[derive(diesel::QueryableByName)]
    struct Last {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        idx: i64,
    }
    let last: Option<Last> =
        Sql::new("SELECT COALESCE(MAX(idx), 0) AS idx FROM account_device_commands WHERE device_id = ?")
            .arg(Arg::Str(device_id))
            .first(tx)?;
    Ok(last.map_or(0, |l| l.idx))
}

/// How many unexpired commands wait for the device.
pub fn pending(tx: &mut Tx<'_>, device_id: &str, now: i64) -> QueryResult<i64> {
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let count: Option<Count> =
        Sql::new("SELECT COUNT(*) AS n FROM account_device_commands WHERE device_id = ? AND expires_at > ?")
            .arg(Arg::Str(device_id))
            .arg(Arg::I64(now))
            .first(tx)?;
    Ok(count.map_or(0, |c| c.n))
}

pub fn insert(tx: &mut Tx<'_>, c: &DeviceCommandRow) -> QueryResult<usize> {
    Sql::insert(
        "account_device_commands",
        COLUMNS,
        [
            Arg::Str(&c.device_id),
            Arg::I64(c.idx),
            Arg::Str(&c.uid),
            Arg::Str(&c.command),
            Arg::Str(&c.payload),
            Arg::Str(&c.sender),
            Arg::I64(c.created_at),
            Arg::I64(c.expires_at),
        ],
    )
    .execute(tx)
}

/// The device's unexpired commands from index `from` on, oldest first, at most `limit`.
pub fn from_index(
    tx: &mut Tx<'_>,
    device_id: &str,
    from: i64,
    limit: i64,
    now: i64,
) -> QueryResult<Vec<DeviceCommandRow>> {
    Sql::new(format!(
        "SELECT {COLUMNS} FROM account_device_commands WHERE device_id = ? AND idx >= ? AND expires_at > ? \
         ORDER BY idx LIMIT ?"
    ))
    .arg(Arg::Str(device_id))
    .arg(Arg::I64(from))
    .arg(Arg::I64(now))
    .arg(Arg::I64(limit))
    .load(tx)
}

/// Removes the device's expired commands (at each new command sent to it).
pub fn delete_expired(tx: &mut Tx<'_>, device_id: &str, now: i64) -> QueryResult<usize> {
    Sql::new("DELETE FROM account_device_commands WHERE device_id = ? AND expires_at <= ?")
        .arg(Arg::Str(device_id))
        .arg(Arg::I64(now))
        .execute(tx)
}

/// Every command waiting for the devices of a session (before the session's devices go).
pub fn delete_of_session(tx: &mut Tx<'_>, session_token_id: &str) -> QueryResult<usize> {
    Sql::new(
        "DELETE FROM account_device_commands WHERE device_id IN \
           (SELECT id FROM account_devices WHERE session_token_id = ?)",
    )
    .arg(Arg::Str(session_token_id))
    .execute(tx)
}
