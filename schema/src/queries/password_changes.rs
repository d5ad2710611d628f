//! Statements on `account_password_changes` (issue 21: FxA's `/v1/password/change/start` and
//! `/finish`). A row is the Hawk credentials of one passwordChangeToken and the verifier the old
//! password matched; the accounts actor decides when one is valid. Rows go with the account's
//! sessions (`accounts::delete_sessions`) and with the account.

use diesel::QueryResult;

use super::sql::{Arg, Sql};
use crate::models::accounts::{PasswordChangeRow, TokenRow};
use crate::pool::Tx;

pub fn insert(tx: &mut Tx<'_>, token: &TokenRow, verify_hash: &str, at: i64) -> QueryResult<usize> {
    Sql::new(
        "INSERT INTO account_password_changes (token_id, uid, hmac_key, verify_hash, created_at) \
         VALUES (?, ?, ?, ?, ?)",
    )
    .args([
        Arg::Str(&token.token_id),
        Arg::Str(&token.uid),
        Arg::Str(&token.hmac_key),
        Arg::Str(verify_hash),
        Arg::I64(at),
    ])
    .execute(tx)
}

/// The Hawk credentials of a passwordChangeToken.
pub fn token(tx: &mut Tx<'_>, token_id: &str) -> QueryResult<Option<TokenRow>> {
    Sql::new("SELECT token_id, uid, hmac_key FROM account_password_changes WHERE token_id = ?")
        .arg(Arg::Str(token_id))
        .first(tx)
}

pub fn change(tx: &mut Tx<'_>, token_id: &str) -> QueryResult<Option<PasswordChangeRow>> {
    Sql::new("SELECT uid, verify_hash, created_at FROM account_password_changes WHERE token_id = ?")
        .arg(Arg::Str(token_id))
        .first(tx)
}

/// Answers 1 for the one caller that consumed the token, 0 for any other.
pub fn delete(tx: &mut Tx<'_>, token_id: &str) -> QueryResult<usize> {
    Sql::new("DELETE FROM account_password_changes WHERE token_id = ?").arg(Arg::Str(token_id)).execute(tx)
}
