//! Statements on the local-accounts tables (local-accounts.md §5, §6). One statement per
//! function, one text for every backend (portable SQL: no dialect fragment is needed). The
//! rules that combine them — credentials, single use, expiry, revocation — live in the
//! accounts actor.

use diesel::QueryResult;

use super::sql::{placeholders, Arg, Row, Sql};
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
const TOKEN_COLUMNS: &str = "token_id, uid, hmac_key";

// ---- the statement shapes every table shares: one row in, one row out by its key, rows out ----

/// Inserts one row of `table`: `args` in the order of `columns`.
fn insert<const N: usize>(
    tx: &mut Tx<'_>,
    table: &str,
    columns: &str,
    args: [Arg<'_>; N],
) -> QueryResult<usize> {
    Sql::new(format!("INSERT INTO {table} ({columns}) VALUES ({})", placeholders(N))).args(args).execute(tx)
}

/// The row of `table` whose `key` column (unique) holds `value`, as `columns`.
fn row_by_key<R: Row>(
    tx: &mut Tx<'_>,
    columns: &str,
    table: &str,
    key: &str,
    value: &str,
) -> QueryResult<Option<R>> {
    Sql::new(format!("SELECT {columns} FROM {table} WHERE {key} = ?")).arg(Arg::Str(value)).first(tx)
}

/// Deletes the rows of `table` whose `key` column holds `value`; answers how many.
fn delete_by_key(tx: &mut Tx<'_>, table: &str, key: &str, value: &str) -> QueryResult<usize> {
    Sql::new(format!("DELETE FROM {table} WHERE {key} = ?")).arg(Arg::Str(value)).execute(tx)
}

/// A session's or key fetch's `TOKEN_COLUMNS`.
fn token_args(token: &TokenRow) -> [Arg<'_>; 3] {
    [Arg::Str(&token.token_id), Arg::Str(&token.uid), Arg::Str(&token.hmac_key)]
}

// ---- accounts ----

pub fn insert_account(tx: &mut Tx<'_>, a: &AccountRow) -> QueryResult<usize> {
    insert(
        tx,
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
}

pub fn account_by_email(tx: &mut Tx<'_>, email: &str) -> QueryResult<Option<AccountRow>> {
    row_by_key(tx, ACCOUNT_COLUMNS, "accounts", "email", email)
}

pub fn account_by_uid(tx: &mut Tx<'_>, uid: &str) -> QueryResult<Option<AccountRow>> {
    row_by_key(tx, ACCOUNT_COLUMNS, "accounts", "uid", uid)
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
    for table in [
        "account_sessions",
        "account_key_fetches",
        "account_devices",
        "account_oauth_codes",
        "account_refresh_tokens",
        "account_invites",
    ] {
        delete_by_key(tx, table, "uid", uid)?;
    }
    delete_by_key(tx, "accounts", "uid", uid)
}

// ---- sessions and key fetches ----

pub fn insert_session(tx: &mut Tx<'_>, token: &TokenRow, at: i64) -> QueryResult<usize> {
    let [token_id, uid, hmac_key] = token_args(token);
    insert(
        tx,
        "account_sessions",
        "token_id, uid, hmac_key, created_at, last_used_at",
        [token_id, uid, hmac_key, Arg::I64(at), Arg::I64(at)],
    )
}

pub fn session(tx: &mut Tx<'_>, token_id: &str) -> QueryResult<Option<TokenRow>> {
    row_by_key(tx, TOKEN_COLUMNS, "account_sessions", "token_id", token_id)
}

pub fn touch_session(tx: &mut Tx<'_>, token_id: &str, at: i64) -> QueryResult<usize> {
    Sql::new("UPDATE account_sessions SET last_used_at = ? WHERE token_id = ?")
        .arg(Arg::I64(at))
        .arg(Arg::Str(token_id))
        .execute(tx)
}

/// Revokes a session with its devices, codes and refresh tokens.
pub fn delete_session(tx: &mut Tx<'_>, token_id: &str) -> QueryResult<usize> {
    for table in ["account_devices", "account_oauth_codes", "account_refresh_tokens"] {
        delete_by_key(tx, table, "session_token_id", token_id)?;
    }
    delete_by_key(tx, "account_sessions", "token_id", token_id)
}

/// Revokes every session of an account (password reset, disable).
pub fn delete_sessions(tx: &mut Tx<'_>, uid: &str) -> QueryResult<usize> {
    for table in ["account_key_fetches", "account_devices", "account_oauth_codes", "account_refresh_tokens"] {
        delete_by_key(tx, table, "uid", uid)?;
    }
    delete_by_key(tx, "account_sessions", "uid", uid)
}

pub fn insert_key_fetch(tx: &mut Tx<'_>, token: &TokenRow, bundle: &str, at: i64) -> QueryResult<usize> {
    let [token_id, uid, hmac_key] = token_args(token);
    insert(
        tx,
        "account_key_fetches",
        "token_id, uid, hmac_key, bundle, created_at",
        [token_id, uid, hmac_key, Arg::Str(bundle), Arg::I64(at)],
    )
}

pub fn key_fetch_token(tx: &mut Tx<'_>, token_id: &str) -> QueryResult<Option<TokenRow>> {
    row_by_key(tx, TOKEN_COLUMNS, "account_key_fetches", "token_id", token_id)
}

pub fn key_fetch(tx: &mut Tx<'_>, token_id: &str) -> QueryResult<Option<KeyFetchRow>> {
    row_by_key(tx, "uid, bundle, created_at", "account_key_fetches", "token_id", token_id)
}

/// Every key-fetch token of an account (a sign-out).
pub fn delete_key_fetches(tx: &mut Tx<'_>, uid: &str) -> QueryResult<usize> {
    delete_by_key(tx, "account_key_fetches", "uid", uid)
}

/// Answers 1 for the one caller that consumed the token, 0 for any other.
pub fn delete_key_fetch(tx: &mut Tx<'_>, token_id: &str) -> QueryResult<usize> {
    delete_by_key(tx, "account_key_fetches", "token_id", token_id)
}

// ---- devices ----

pub fn insert_device(tx: &mut Tx<'_>, d: &DeviceRow) -> QueryResult<usize> {
    insert(
        tx,
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
    row_by_key(tx, DEVICE_COLUMNS, "account_devices", "session_token_id", token_id)
}

// ---- OAuth codes and refresh tokens ----

pub fn insert_code(tx: &mut Tx<'_>, c: &CodeRow) -> QueryResult<usize> {
    insert(
        tx,
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
}

pub fn code(tx: &mut Tx<'_>, code_hash: &str) -> QueryResult<Option<CodeRow>> {
    row_by_key(tx, CODE_COLUMNS, "account_oauth_codes", "code_hash", code_hash)
}

/// Answers 1 for the one caller that consumed the code, 0 for any other.
pub fn delete_code(tx: &mut Tx<'_>, code_hash: &str) -> QueryResult<usize> {
    delete_by_key(tx, "account_oauth_codes", "code_hash", code_hash)
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
    insert(
        tx,
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
}

pub fn refresh_token(tx: &mut Tx<'_>, token_hash: &str) -> QueryResult<Option<RefreshTokenRow>> {
    row_by_key(tx, "uid, session_token_id, scope", "account_refresh_tokens", "token_hash", token_hash)
}

pub fn delete_refresh_token(tx: &mut Tx<'_>, token_hash: &str) -> QueryResult<usize> {
    delete_by_key(tx, "account_refresh_tokens", "token_hash", token_hash)
}

// ---- invites ----

pub fn insert_invite(tx: &mut Tx<'_>, i: &InviteRow) -> QueryResult<usize> {
    insert(
        tx,
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
}

pub fn invite(tx: &mut Tx<'_>, code_hash: &str) -> QueryResult<Option<InviteRow>> {
    row_by_key(tx, INVITE_COLUMNS, "account_invites", "code_hash", code_hash)
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
