//! The end of a move on the source: once every token issued for it has expired
//! (`purge_after`), a moved user's data there is deleted — recorded as a storage deletion, so
//! that the deleter's `Deleted` purge removes the rows in its paced chunks — and its
//! `weft_user_moves` row goes with it, in one transaction. Run by the deleter before each pass.

use weft_schema::pool::Tx;
use weft_schema::queries::storage;
use weft_schema::queries::user_move::{self as q, MOVED, SETTLED};
use weft_schema::SyncTimestamp;

use crate::storage::StorageError;
use crate::storage::{Access, Operation, Storage};

/// Users handled per pass at most; the next pass takes the rest.
const USERS_PER_PASS: i64 = 1000;

/// Forgets one moved user whose tokens have expired. Not a user's request: `user()` is `None`,
/// so the move guard (which answers a moved user 401) does not apply.
struct ForgetMoved {
    uid: i64,
}

impl Operation for ForgetMoved {
    type Output = bool;
    const NAME: &'static str = "ForgetMovedUser";
    const ACCESS: Access = Access::Write;

    fn run(&self, _: &Storage, tx: &mut Tx<'_>) -> Result<bool, StorageError> {
        let now = SyncTimestamp::now().as_millis();
        match q::marker(tx, self.uid)? {
            Some(m) if m.state == MOVED && m.purge_after <= now => {
                // The copy has been frozen since the hold, so every item is older than now.
                storage::delete_storage(tx, self.uid, now)?;
                q::delete_marker(tx, self.uid)?;
                Ok(true)
            }
            Some(m) if m.state == SETTLED && m.purge_after <= now => {
                q::delete_marker(tx, self.uid)?;
                Ok(false)
            }
            _ => Ok(false),
        }
    }
}

/// Deletes the data of the moved users whose tokens for this node have all expired (answers
/// how many users), and the markers of settled moves the caches have read.
pub fn purge_moved(storage: &Storage) -> Result<u64, StorageError> {
    let now = SyncTimestamp::now().as_millis();
    let due = storage.pool().get()?.single_statement(|tx| q::due(tx, now, USERS_PER_PASS))?;
    let mut forgotten = 0;
    for uid in due {
        forgotten += u64::from(storage.execute(&ForgetMoved { uid })?);
    }
    Ok(forgotten)
}
