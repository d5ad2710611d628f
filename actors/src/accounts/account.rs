//! What every operation on one account builds on: the transactions the operations run in, the
//! password (its quick-stretch version, the slow stretch and the check with the wrong-password
//! limit), a new session and key-fetch token, and what revokes or deletes an account with its
//! tokenserver user. `ops` (sign-in, OAuth, devices) and `settings` (the account page) use it.

use serde_json::{json, Value};
use weft_schema::models::accounts::{AccountRow, TokenRow};
use weft_schema::pool::Tx;
use weft_schema::queries::accounts as q;
use weft_schema::queries::tokenserver as ts;
use weft_schema::DbPool;

use super::error::AccountError;
use super::onepw::{hex, key_bundle, random_bytes, stretch, token_keys, unhex};
use super::shared::Shared;

/// The quick stretch the page used (`accounts.kdf_version`, local-accounts.md §4): version 1
/// is email-salted PBKDF2 with 1000 rounds, version 2 FxA's 650,000 rounds salted with
/// `NS + "quickStretchV2:" + <32 hex>`. The server stores scrypt(authPW) either way.
const KDF_V1: i32 = 1;
pub(super) const KDF_V2: i32 = 2;
pub(super) const CLIENT_SALT_PREFIX: &str = "identity.mozilla.com/picl/v1/quickStretchV2:";

/// (kdf_version, the 32 hex stored) of a create or reset body's `clientSalt`.
pub(super) fn quick_stretch_version(
    client_salt: Option<&str>,
) -> Result<(i32, Option<String>), AccountError> {
    let Some(salt) = client_salt else { return Ok((KDF_V1, None)) };
    let hex = salt.strip_prefix(CLIENT_SALT_PREFIX).unwrap_or_default();
    if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(AccountError::InvalidParameter("clientSalt".into()));
    }
    Ok((KDF_V2, Some(hex.to_string())))
}

/// Runs `op` in a write transaction, again on a deadlock or a lost connection (the one retry
/// policy, `weft_schema::retry`).
pub(super) fn write<T>(
    pool: &DbPool,
    op: impl Fn(&mut Tx<'_>) -> Result<T, AccountError>,
) -> Result<T, AccountError> {
    weft_schema::retry::with_retries(
        |attempt, e| tracing::warn!(attempt, error = %e, "accounts transaction failed; retrying"),
        || pool.get()?.write_transaction(&op),
    )
}

/// Runs `op` in a read transaction (no write lock, which SQLite takes at BEGIN for writes).
pub(super) fn read<T>(
    pool: &DbPool,
    op: impl FnOnce(&mut Tx<'_>) -> Result<T, AccountError>,
) -> Result<T, AccountError> {
    pool.get()?.read_transaction(op)
}

pub(super) fn auth_pw(text: &str) -> Result<[u8; 32], AccountError> {
    unhex::<32>(text).ok_or_else(|| AccountError::InvalidParameter("authPW".into()))
}

/// The slow stretch; its concurrency is the sign-in lane's thread count (`lanes`).
pub(super) fn slow_stretch(shared: &Shared, auth_pw: &[u8; 32], salt: &[u8; 32]) -> [u8; 32] {
    stretch(auth_pw, salt, shared.config.scrypt_log_n)
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The account whose password `auth_pw_hex` is, and the verifier it matched, with the failed
/// sign-in limit of (account, client address): every route that takes a password (sign-in,
/// password change, account deletion) checks it here.
pub(super) fn check_password(
    pool: &DbPool,
    shared: &Shared,
    client: &str,
    email: &str,
    auth_pw_hex: &str,
) -> Result<(AccountRow, String), AccountError> {
    let auth_pw = auth_pw(auth_pw_hex)?;
    let account = read(pool, |tx| q::account_by_email(tx, email).map_err(AccountError::from))?
        .ok_or(AccountError::UnknownAccount)?;
    let guesses = format!("{}|{client}", account.uid);
    shared
        .failed_logins
        .exhausted(&guesses)
        .map_err(|retry_after| AccountError::TooManyRequests { retry_after })?;
    if account.disabled_at.is_some() {
        return Err(AccountError::AccountDisabled);
    }
    let salt = unhex::<32>(&account.auth_salt).ok_or(AccountError::InvalidToken("stored salt"))?;
    let verify_hash = hex(&slow_stretch(shared, &auth_pw, &salt));
    if !ct_eq(verify_hash.as_bytes(), account.verify_hash.as_bytes()) {
        shared.failed_logins.record(&guesses);
        return Err(AccountError::IncorrectPassword);
    }
    Ok((account, verify_hash))
}

/// The account inside the write that follows a `check_password`: a reset, change or disable
/// that committed during the stretch wins, so an old password never acts after its change.
pub(super) fn still_current(
    tx: &mut Tx<'_>,
    uid: &str,
    verify_hash: &str,
) -> Result<AccountRow, AccountError> {
    let current = live_account(tx, uid)?;
    if current.verify_hash != verify_hash {
        return Err(AccountError::IncorrectPassword);
    }
    Ok(current)
}

/// A new session token (and key-fetch token when `keys`): only their Hawk credentials and the
/// already-encrypted key bundle are stored.
pub(super) fn start_session(
    tx: &mut Tx<'_>,
    account: &AccountRow,
    keys: bool,
    now: i64,
) -> Result<Value, AccountError> {
    let session_token = random_bytes::<32>();
    let derived = token_keys(&session_token, "sessionToken");
    let row = TokenRow {
        token_id: hex(&derived.token_id),
        uid: account.uid.clone(),
        hmac_key: hex(&derived.hmac_key),
    };
    q::insert_session(tx, &row, now)?;
    let mut answer = json!({
        "uid": account.uid,
        "sessionToken": hex(&session_token),
        "verified": true,
        "authAt": now / 1000,
    });
    if keys {
        answer["keyFetchToken"] = json!(new_key_fetch(tx, account, now)?);
    }
    Ok(answer)
}

/// A new keyFetchToken (hex) for the account's current key bundle.
pub(super) fn new_key_fetch(tx: &mut Tx<'_>, account: &AccountRow, now: i64) -> Result<String, AccountError> {
    let key_fetch_token = random_bytes::<32>();
    let derived = token_keys(&key_fetch_token, "keyFetchToken");
    let stored = |name: &str| unhex::<32>(name).ok_or(AccountError::InvalidToken("stored keys"));
    let bundle = key_bundle(&derived.key_request_key, &stored(&account.ka)?, &stored(&account.wrap_kb)?);
    let row = TokenRow {
        token_id: hex(&derived.token_id),
        uid: account.uid.clone(),
        hmac_key: hex(&derived.hmac_key),
    };
    q::insert_key_fetch(tx, &row, &bundle, now)?;
    Ok(hex(&key_fetch_token))
}

/// What a reset, disable or delete does to every credential of the account, in its own
/// transaction: every session, key-fetch token, code and refresh token goes, and the
/// tokenserver's generation for the account rises to `generation` (ms), so the tokenserver
/// refuses the access tokens issued before (their `fxa-generation` is older). Node tokens
/// already issued last until they expire (`tokenserver.token_duration_seconds`).
pub(super) fn revoke(
    shared: &Shared,
    tx: &mut Tx<'_>,
    uid: &str,
    generation: i64,
) -> Result<(), AccountError> {
    q::delete_sessions(tx, uid)?;
    if let Some(service) = ts::service_id(tx, ts::SYNC_SERVICE)? {
        ts::raise_generation(tx, service, &tokenserver_email(shared, uid), generation)?;
    }
    Ok(())
}

/// The tokenserver's `users.email` of a local account.
fn tokenserver_email(shared: &Shared, uid: &str) -> String {
    format!("{uid}@{}", shared.config.fxa_email_domain)
}

pub(super) fn live_account(tx: &mut Tx<'_>, uid: &str) -> Result<AccountRow, AccountError> {
    let account = q::account_by_uid(tx, uid)?.ok_or(AccountError::InvalidToken("account gone"))?;
    if account.disabled_at.is_some() {
        return Err(AccountError::AccountDisabled);
    }
    Ok(account)
}

/// Deletes an account (`weft account delete`, or its owner on the account page) with every row
/// that belongs to it, and retires its tokenserver user in the same transaction: no token is
/// issued for the account again, and the purge of replaced users deletes its data after its
/// grace period (§6.1, §10.6).
pub(super) fn delete_account(
    shared: &Shared,
    tx: &mut Tx<'_>,
    uid: &str,
    now: i64,
) -> Result<(), AccountError> {
    q::delete_account(tx, uid)?;
    if let Some(service) = ts::service_id(tx, ts::SYNC_SERVICE)? {
        ts::retire_user(tx, service, &tokenserver_email(shared, uid), now)?;
    }
    Ok(())
}
