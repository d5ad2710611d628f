//! Statements on `account_password_changes` (issue 21: FxA's `/v1/password/change/start` and
//! `/finish`). A row is the Hawk credentials of one passwordChangeToken and the verifier the old
//! password matched; the accounts actor decides when one is valid. Rows go with the account's
//! sessions (`accounts::delete_sessions`) and with the account.

use diesel::QueryResult;

use super::accounts;
use super::sql::{Arg, Sql};
use crate::models::accounts::{PasswordChangeRow, TokenRow};
use crate::pool::Tx;

const TABLE: &str = "account_password_changes";

pub fn insert(tx: &mut Tx<'_>, token: &TokenRow, verify_hash: &str, at: i64) -> QueryResult<usize> {
    accounts::insert_token(tx, TABLE, token, "verify_hash, created_at", [Arg::Str(verify_hash), Arg::I64(at)])
}

/// The Hawk credentials of a passwordChangeToken.
pub fn token(tx: &mut Tx<'_>, token_id: &str) -> QueryResult<Option<TokenRow>> {
    accounts::token(tx, TABLE, token_id)
}

/// The change a passwordChangeToken started, with the time it started (a change expires).
pub fn change(tx: &mut Tx<'_>, token_id: &str) -> QueryResult<Option<PasswordChangeRow>> {
    Sql::row_by_key("uid, verify_hash, created_at", TABLE, "token_id", Arg::Str(token_id)).first(tx)
}

/// Answers 1 for the one caller that consumed the token, 0 for any other.
pub fn delete(tx: &mut Tx<'_>, token_id: &str) -> QueryResult<usize> {
    Sql::delete_by_key(TABLE, "token_id", Arg::Str(token_id)).execute(tx)
}
