//! Statements on the local-accounts tables (local-accounts.md §5, §6). One statement per
//! function, one text for every backend (portable SQL: no dialect fragment is needed). The
//! rules that combine them — credentials, single use, expiry, revocation — live in the
//! accounts actor.

use diesel::QueryResult;

use super::sql::{Arg, Sql};
use crate::models::accounts::{
    AccountRow, CodeRow, DeviceRow, InviteRow, KeyFetchRow, RefreshTokenRow, TokenRow,
};
use crate::pool::Tx;

const ACCOUNT_COLUMNS: &str = "uid, email, auth_salt, verify_hash, kdf_version, client_salt, ka, \
     wrap_kb, verifier_set_at, keys_changed_at, created_at, disabled_at";
const DEVICE_COLUMNS: &str =
    "id, uid, session_token_id, name, device_type, details, created_at, last_access_at";
const CODE_COLUMNS: &str =
    "code_hash, uid, session_token_id, scope, code_challenge, keys_jwe, auth_at, expires_at";
const INVITE_COLUMNS: &str = "code_hash, email, uid, created_at, expires_at, used_at";
/// A token's Hawk credentials, first in every token table (sessions, key fetches, password
/// changes).
const TOKEN_COLUMNS: &str = "token_id, uid, hmac_key";

// ---- accounts ----

/// A new account, enabled (`disabled_at` NULL).
pub fn insert_account(tx: &mut Tx<'_>, a: &AccountRow) -> QueryResult<usize> {
    Sql::insert(
        "accounts",
        ACCOUNT_COLUMNS,
        [
            Arg::Str(&a.uid),
            Arg::Str(&a.email),
            Arg::Str(&a.auth_salt),
            Arg::Str(&a.verify_hash),
            Arg::I32(a.kdf_version),
            Arg::OptStr(a.client_salt.as_deref()),
            Arg::Str(&a.ka),
            Arg::Str(&a.wrap_kb),
            Arg::I64(a.verifier_set_at),
            Arg::I64(a.keys_changed_at),
            Arg::I64(a.created_at),
            Arg::OptI64(None),
        ],
    )
    .execute(tx)
}

pub fn account_by_email(tx: &mut Tx<'_>, email: &str) -> QueryResult<Option<AccountRow>> {
    Sql::row_by_key(ACCOUNT_COLUMNS, "accounts", "email", Arg::Str(email)).first(tx)
}

pub fn account_by_uid(tx: &mut Tx<'_>, uid: &str) -> QueryResult<Option<AccountRow>> {
    Sql::row_by_key(ACCOUNT_COLUMNS, "accounts", "uid", Arg::Str(uid)).first(tx)
}

pub fn list_accounts(tx: &mut Tx<'_>) -> QueryResult<Vec<AccountRow>> {
    Sql::new(format!("SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY created_at, uid")).load(tx)
}

/// Disables an account at `at` (ms), which also becomes its generation (`verifier_set_at`):
/// access tokens issued before carry an older one and are refused.
pub fn disable(tx: &mut Tx<'_>, uid: &str, at: i64) -> QueryResult<usize> {
    Sql::new("UPDATE accounts SET disabled_at = ?, verifier_set_at = ? WHERE uid = ?")
        .arg(Arg::I64(at))
        .arg(Arg::I64(at))
        .arg(Arg::Str(uid))
        .execute(tx)
}

pub fn enable(tx: &mut Tx<'_>, uid: &str) -> QueryResult<usize> {
    Sql::new("UPDATE accounts SET disabled_at = NULL WHERE uid = ?").arg(Arg::Str(uid)).execute(tx)
}

/// A new password: new verifier, new keys (a new kB), so generation and keys_changed_at move.
/// Only over `previous_verify_hash`: answers 0 when another change came first.
pub fn set_password(tx: &mut Tx<'_>, a: &AccountRow, previous_verify_hash: &str) -> QueryResult<usize> {
    Sql::new(
        "UPDATE accounts SET auth_salt = ?, verify_hash = ?, kdf_version = ?, client_salt = ?, ka = ?, \
           wrap_kb = ?, verifier_set_at = ?, keys_changed_at = ? WHERE uid = ? AND verify_hash = ?",
    )
    .args([
        Arg::Str(&a.auth_salt),
        Arg::Str(&a.verify_hash),
        Arg::I32(a.kdf_version),
        Arg::OptStr(a.client_salt.as_deref()),
        Arg::Str(&a.ka),
        Arg::Str(&a.wrap_kb),
        Arg::I64(a.verifier_set_at),
        Arg::I64(a.keys_changed_at),
        Arg::Str(&a.uid),
        Arg::Str(previous_verify_hash),
    ])
    .execute(tx)
}

/// Deletes the account row and every row that belongs to it.
pub fn delete_account(tx: &mut Tx<'_>, uid: &str) -> QueryResult<usize> {
    delete_sessions(tx, uid)?;
    Sql::delete_by_key("account_invites", "uid", Arg::Str(uid)).execute(tx)?;
    Sql::delete_by_key("accounts", "uid", Arg::Str(uid)).execute(tx)
}

// ---- sessions and key fetches ----

/// A row of the token table `table`: the token's Hawk credentials, then `more` values for the
/// table's `more_columns`.
pub(super) fn insert_token<'a>(
    tx: &mut Tx<'_>,
    table: &str,
    token: &'a TokenRow,
    more_columns: &str,
    more: impl IntoIterator<Item = Arg<'a>>,
) -> QueryResult<usize> {
    let credentials = [Arg::Str(&token.token_id), Arg::Str(&token.uid), Arg::Str(&token.hmac_key)];
    Sql::insert(table, &format!("{TOKEN_COLUMNS}, {more_columns}"), credentials.into_iter().chain(more))
        .execute(tx)
}

/// The Hawk credentials of a token of the token table `table`.
pub(super) fn token(tx: &mut Tx<'_>, table: &str, token_id: &str) -> QueryResult<Option<TokenRow>> {
    Sql::row_by_key(TOKEN_COLUMNS, table, "token_id", Arg::Str(token_id)).first(tx)
}

pub fn insert_session(tx: &mut Tx<'_>, token: &TokenRow, at: i64) -> QueryResult<usize> {
    insert_token(tx, "account_sessions", token, "created_at, last_used_at", [Arg::I64(at), Arg::I64(at)])
}

pub fn session(tx: &mut Tx<'_>, token_id: &str) -> QueryResult<Option<TokenRow>> {
    token(tx, "account_sessions", token_id)
}

pub fn touch_session(tx: &mut Tx<'_>, token_id: &str, at: i64) -> QueryResult<usize> {
    Sql::new("UPDATE account_sessions SET last_used_at = ? WHERE token_id = ?")
        .arg(Arg::I64(at))
        .arg(Arg::Str(token_id))
        .execute(tx)
}

/// Revokes a session with its devices (and the commands waiting for them), codes and refresh
/// tokens.
pub fn delete_session(tx: &mut Tx<'_>, token_id: &str) -> QueryResult<usize> {
    super::device_commands::delete_of_session(tx, token_id)?;
    for table in ["account_devices", "account_oauth_codes", "account_refresh_tokens"] {
        Sql::delete_by_key(table, "session_token_id", Arg::Str(token_id)).execute(tx)?;
    }
    Sql::delete_by_key("account_sessions", "token_id", Arg::Str(token_id)).execute(tx)
}

/// Revokes every session of an account (password reset, disable).
pub fn delete_sessions(tx: &mut Tx<'_>, uid: &str) -> QueryResult<usize> {
    for table in [
        "account_key_fetches",
        "account_password_changes",
        "account_devices",
        "account_device_commands",
        "account_oauth_codes",
        "account_refresh_tokens",
    ] {
        Sql::delete_by_key(table, "uid", Arg::Str(uid)).execute(tx)?;
    }
    Sql::delete_by_key("account_sessions", "uid", Arg::Str(uid)).execute(tx)
}

pub fn insert_key_fetch(tx: &mut Tx<'_>, token: &TokenRow, bundle: &str, at: i64) -> QueryResult<usize> {
    insert_token(tx, "account_key_fetches", token, "bundle, created_at", [Arg::Str(bundle), Arg::I64(at)])
}

pub fn key_fetch_token(tx: &mut Tx<'_>, token_id: &str) -> QueryResult<Option<TokenRow>> {
    token(tx, "account_key_fetches", token_id)
}

/// The key bundle of a key-fetch token, with the time it was issued (a key fetch expires).
pub fn key_fetch(tx: &mut Tx<'_>, token_id: &str) -> QueryResult<Option<KeyFetchRow>> {
    Sql::row_by_key("uid, bundle, created_at", "account_key_fetches", "token_id", Arg::Str(token_id))
        .first(tx)
}

/// Every key-fetch token of an account (a sign-out).
pub fn delete_key_fetches(tx: &mut Tx<'_>, uid: &str) -> QueryResult<usize> {
    Sql::delete_by_key("account_key_fetches", "uid", Arg::Str(uid)).execute(tx)
}

/// Answers 1 for the one caller that consumed the token, 0 for any other.
pub fn delete_key_fetch(tx: &mut Tx<'_>, token_id: &str) -> QueryResult<usize> {
    Sql::delete_by_key("account_key_fetches", "token_id", Arg::Str(token_id)).execute(tx)
}

// ---- devices ----

pub fn insert_device(tx: &mut Tx<'_>, d: &DeviceRow) -> QueryResult<usize> {
    Sql::insert(
        "account_devices",
        DEVICE_COLUMNS,
        [
            Arg::Str(&d.id),
            Arg::Str(&d.uid),
            Arg::Str(&d.session_token_id),
            Arg::Str(&d.name),
            Arg::Str(&d.device_type),
            Arg::Str(&d.details),
            Arg::I64(d.created_at),
            Arg::I64(d.last_access_at),
        ],
    )
    .execute(tx)
}

pub fn update_device(tx: &mut Tx<'_>, d: &DeviceRow) -> QueryResult<usize> {
    Sql::new(
        "UPDATE account_devices SET session_token_id = ?, name = ?, device_type = ?, details = ?, \
           last_access_at = ? WHERE id = ? AND uid = ?",
    )
    .args([
        Arg::Str(&d.session_token_id),
        Arg::Str(&d.name),
        Arg::Str(&d.device_type),
        Arg::Str(&d.details),
        Arg::I64(d.last_access_at),
        Arg::Str(&d.id),
        Arg::Str(&d.uid),
    ])
    .execute(tx)
}

pub fn devices(tx: &mut Tx<'_>, uid: &str) -> QueryResult<Vec<DeviceRow>> {
    Sql::new(format!("SELECT {DEVICE_COLUMNS} FROM account_devices WHERE uid = ? ORDER BY created_at, id"))
        .arg(Arg::Str(uid))
        .load(tx)
}

pub fn device(tx: &mut Tx<'_>, uid: &str, id: &str) -> QueryResult<Option<DeviceRow>> {
    Sql::new(format!("SELECT {DEVICE_COLUMNS} FROM account_devices WHERE uid = ? AND id = ?"))
        .arg(Arg::Str(uid))
        .arg(Arg::Str(id))
        .first(tx)
}

pub fn device_of_session(tx: &mut Tx<'_>, token_id: &str) -> QueryResult<Option<DeviceRow>> {
    Sql::row_by_key(DEVICE_COLUMNS, "account_devices", "session_token_id", Arg::Str(token_id)).first(tx)
}

// ---- OAuth codes and refresh tokens ----

pub fn insert_code(tx: &mut Tx<'_>, c: &CodeRow) -> QueryResult<usize> {
    Sql::insert(
        "account_oauth_codes",
        CODE_COLUMNS,
        [
            Arg::Str(&c.code_hash),
            Arg::Str(&c.uid),
            Arg::Str(&c.session_token_id),
            Arg::Str(&c.scope),
            Arg::Str(&c.code_challenge),
            Arg::Str(&c.keys_jwe),
            Arg::I64(c.auth_at),
            Arg::I64(c.expires_at),
        ],
    )
    .execute(tx)
}

pub fn code(tx: &mut Tx<'_>, code_hash: &str) -> QueryResult<Option<CodeRow>> {
    Sql::row_by_key(CODE_COLUMNS, "account_oauth_codes", "code_hash", Arg::Str(code_hash)).first(tx)
}

/// Answers 1 for the one caller that consumed the code, 0 for any other.
pub fn delete_code(tx: &mut Tx<'_>, code_hash: &str) -> QueryResult<usize> {
    Sql::delete_by_key("account_oauth_codes", "code_hash", Arg::Str(code_hash)).execute(tx)
}

pub fn delete_expired_codes(tx: &mut Tx<'_>, now: i64) -> QueryResult<usize> {
    Sql::new("DELETE FROM account_oauth_codes WHERE expires_at <= ?").arg(Arg::I64(now)).execute(tx)
}

pub fn insert_refresh_token(
    tx: &mut Tx<'_>,
    token_hash: &str,
    t: &RefreshTokenRow,
    at: i64,
) -> QueryResult<usize> {
    Sql::insert(
        "account_refresh_tokens",
        "token_hash, uid, session_token_id, scope, created_at",
        [
            Arg::Str(token_hash),
            Arg::Str(&t.uid),
            Arg::Str(&t.session_token_id),
            Arg::Str(&t.scope),
            Arg::I64(at),
        ],
    )
    .execute(tx)
}

pub fn refresh_token(tx: &mut Tx<'_>, token_hash: &str) -> QueryResult<Option<RefreshTokenRow>> {
    Sql::row_by_key(
        "uid, session_token_id, scope",
        "account_refresh_tokens",
        "token_hash",
        Arg::Str(token_hash),
    )
    .first(tx)
}

pub fn delete_refresh_token(tx: &mut Tx<'_>, token_hash: &str) -> QueryResult<usize> {
    Sql::delete_by_key("account_refresh_tokens", "token_hash", Arg::Str(token_hash)).execute(tx)
}

// ---- invites ----

/// A new invite, unused (`used_at` NULL).
pub fn insert_invite(tx: &mut Tx<'_>, i: &InviteRow) -> QueryResult<usize> {
    Sql::insert(
        "account_invites",
        INVITE_COLUMNS,
        [
            Arg::Str(&i.code_hash),
            Arg::OptStr(i.email.as_deref()),
            Arg::OptStr(i.uid.as_deref()),
            Arg::I64(i.created_at),
            Arg::I64(i.expires_at),
            Arg::OptI64(None),
        ],
    )
    .execute(tx)
}

pub fn invite(tx: &mut Tx<'_>, code_hash: &str) -> QueryResult<Option<InviteRow>> {
    Sql::row_by_key(INVITE_COLUMNS, "account_invites", "code_hash", Arg::Str(code_hash)).first(tx)
}

/// Marks an unused, unexpired invite used; answers 1 for the one caller that used it.
pub fn use_invite(tx: &mut Tx<'_>, code_hash: &str, now: i64) -> QueryResult<usize> {
    Sql::new(
        "UPDATE account_invites SET used_at = ? WHERE code_hash = ? AND used_at IS NULL AND expires_at > ?",
    )
    .arg(Arg::I64(now))
    .arg(Arg::Str(code_hash))
    .arg(Arg::I64(now))
    .execute(tx)
}
