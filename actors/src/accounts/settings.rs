//! What the account page (`/settings`, issue 21) does beyond signing in, with FxA's routes and
//! shapes: sign a device out (`POST /v1/account/device/destroy`), change the password
//! (`POST /v1/password/change/start`, `GET /v1/account/keys`, `POST /v1/password/change/finish`)
//! and delete the account (`POST /v1/account/destroy`). Passwords are checked with the sign-in's
//! rules (`account::check_password`: stretch lane, wrong-password limit per account and address);
//! revocation is the reset's (`account::revoke`), deletion `weft account delete`'s.

use serde_json::{json, Value};
use weft_schema::models::accounts::{AccountRow, TokenRow};
use weft_schema::pool::Tx;
use weft_schema::queries::accounts as q;
use weft_schema::queries::password_changes as pc;
use weft_schema::DbPool;

use super::account::{
    auth_pw, check_password, delete_account, live_account, new_key_fetch, quick_stretch_version, read,
    revoke, slow_stretch, start_session, still_current, write,
};
use super::error::AccountError;
use super::hawk::{HawkCheck, TokenKind};
use super::onepw::{hex, random_bytes, token_keys, unhex};
use super::requests::NewCredentials;
use super::shared::{now_ms, Shared};

/// `POST /v1/account/device/destroy {id}` with the caller's session: the device's session goes,
/// with its codes and refresh tokens, so that device can mint no new access token (its next
/// token request is refused and Firefox shows it signed out). Any device of the account,
/// the caller's own included, as FxA allows.
pub(super) fn destroy_device(
    tx: &mut Tx<'_>,
    account: &AccountRow,
    body: &Value,
) -> Result<Value, AccountError> {
    let id =
        body.get("id").and_then(Value::as_str).ok_or_else(|| AccountError::InvalidParameter("id".into()))?;
    let device = q::device(tx, &account.uid, id)?.ok_or(AccountError::UnknownDevice)?;
    q::delete_session(tx, &device.session_token_id)?;
    Ok(json!({}))
}

/// `POST /v1/password/change/start {email, oldAuthPW}`: with the right old password, a
/// keyFetchToken for the current key bundle (the page unwraps kB with the old password) and a
/// passwordChangeToken bound to the verifier that password matched.
pub(super) fn change_start(
    pool: &DbPool,
    shared: &Shared,
    client: &str,
    email: &str,
    old_auth_pw: &str,
) -> Result<Value, AccountError> {
    let (account, verify_hash) = check_password(pool, shared, client, email, old_auth_pw)?;
    write(pool, |tx| {
        let account = still_current(tx, &account.uid, &verify_hash)?;
        let now = now_ms();
        let token = random_bytes::<32>();
        let derived = token_keys(&token, "passwordChangeToken");
        let row = TokenRow {
            token_id: hex(&derived.token_id),
            uid: account.uid.clone(),
            hmac_key: hex(&derived.hmac_key),
        };
        pc::insert(tx, &row, &verify_hash, now)?;
        Ok(json!({
            "keyFetchToken": new_key_fetch(tx, &account, now)?,
            "passwordChangeToken": hex(&token),
            "verified": true,
        }))
    })
}

/// `POST /v1/password/change/finish[?keys=true] {authPW, wrapKb, clientSalt?}` signed with the
/// passwordChangeToken (single use, as old as a key fetch may be). The verifier and wrapKb are
/// replaced, kA and keys_changed_at are not (kB stays, synced data stays readable); the
/// generation (`verifier_set_at`) rises, every session of the account is revoked and the
/// tokenserver refuses access tokens issued before; the caller gets a new session, as from FxA.
pub(super) fn change_finish(
    pool: &DbPool,
    shared: &Shared,
    hawk: &HawkCheck<'_>,
    new: &NewCredentials,
    keys: bool,
) -> Result<Value, AccountError> {
    let auth_pw = auth_pw(&new.auth_pw)?;
    let wrap_kb = unhex::<32>(&new.wrap_kb).ok_or_else(|| AccountError::InvalidParameter("wrapKb".into()))?;
    let (kdf_version, client_salt) = quick_stretch_version(new.client_salt.as_deref())?;
    // Checked before the stretch, so that a bad or used token costs no CPU, and again below.
    let (_, account, old_verify_hash) = read(pool, |tx| pending_change(shared, tx, hawk))?;
    let salt = random_bytes::<32>();
    let verify_hash = slow_stretch(shared, &auth_pw, &salt);
    let now = now_ms();
    let updated = AccountRow {
        auth_salt: hex(&salt),
        verify_hash: hex(&verify_hash),
        kdf_version,
        client_salt,
        wrap_kb: hex(&wrap_kb),
        verifier_set_at: now,
        ..account
    };
    write(pool, |tx| {
        let (token, ..) = pending_change(shared, tx, hawk)?;
        if pc::delete(tx, &token.token_id)? != 1 {
            return Err(AccountError::InvalidToken("used"));
        }
        if q::set_password(tx, &updated, &old_verify_hash)? != 1 {
            return Err(AccountError::InvalidToken("password changed meanwhile"));
        }
        revoke(shared, tx, &updated.uid, now)?;
        start_session(tx, &updated, keys, now)
    })
}

/// The token, account and old verifier of the passwordChangeToken the request is signed with, while
/// that token is unused, unexpired and the password it started from is still the account's.
fn pending_change(
    shared: &Shared,
    tx: &mut Tx<'_>,
    hawk: &HawkCheck<'_>,
) -> Result<(TokenRow, AccountRow, String), AccountError> {
    let token = hawk.verify(tx, TokenKind::PasswordChange)?;
    let change = pc::change(tx, &token.token_id)?.ok_or(AccountError::InvalidToken("used"))?;
    if change.created_at + shared.config.code_ttl_ms <= now_ms() {
        return Err(AccountError::InvalidToken("expired password change"));
    }
    let account = live_account(tx, &change.uid)?;
    if account.verify_hash != change.verify_hash {
        return Err(AccountError::InvalidToken("password changed meanwhile"));
    }
    Ok((token, account, change.verify_hash))
}

/// `POST /v1/account/destroy {email, authPW}`: the owner deletes the account by typing the
/// password again; the same effect as `weft account delete`.
pub(super) fn destroy_account(
    pool: &DbPool,
    shared: &Shared,
    client: &str,
    email: &str,
    auth_pw: &str,
) -> Result<Value, AccountError> {
    let (account, verify_hash) = check_password(pool, shared, client, email, auth_pw)?;
    write(pool, |tx| {
        let account = still_current(tx, &account.uid, &verify_hash)?;
        delete_account(shared, tx, &account.uid, now_ms())?;
        Ok(json!({}))
    })
}
