//! The operations of local accounts (local-accounts.md §5, §6) as plain functions over the
//! database: what each route checks, stores and answers. Response bodies use FxA's member
//! names so that Firefox and the page read them as they read FxA's.

use serde_json::{json, Value};
use weft_schema::models::accounts::{AccountRow, CodeRow, DeviceRow, InviteRow, RefreshTokenRow, TokenRow};
use weft_schema::pool::Tx;
use weft_schema::queries::accounts as q;
use weft_schema::DbPool;

use super::account::{
    auth_pw, check_password, delete_account, live_account, quick_stretch_version, read, revoke, slow_stretch,
    start_session, still_current, write, CLIENT_SALT_PREFIX, KDF_V2,
};
use super::commands::{self, Delivery};
use super::error::AccountError;
use super::hawk::{HawkCheck, TokenKind};
use super::onepw::{hex, pkce_challenge, random_bytes, sha256_hex};
use super::requests::{AccountSummary, AccountsRequest, AdminOp, AdminReply, Credentials, Op};
use super::shared::{now_ms, Shared};
use super::{email, settings, FIREFOX_CLIENT_ID, OLDSYNC_SCOPE};

/// The `redirect` of an authorization answer for a WebChannel flow (there is no redirect).
const OOB_REDIRECT: &str = "urn:ietf:wg:oauth:2.0:oob";

/// Scopes local accounts grant: the Sync key scope and the profile (with its sub-scopes).
fn scope_allowed(scope: &str) -> bool {
    scope == OLDSYNC_SCOPE || scope == "profile" || scope.starts_with("profile:")
}

/// What an authorization code may carry: the page's `keys_jwe` of the oldsync key is about
/// 700 bytes and Firefox's `state` 43; a code is stored for up to 10 minutes.
const MAX_KEYS_JWE_BYTES: usize = 4096;
const MAX_STATE_BYTES: usize = 512;

/// Device columns' widths (bytes) and the cap on the push and command details kept as JSON.
const MAX_DEVICE_NAME_BYTES: usize = 255;
const MAX_DEVICE_TYPE_BYTES: usize = 32;
const MAX_DEVICE_DETAILS_BYTES: usize = 16 * 1024;

/// A neutral avatar inline, so showing it costs Firefox no request to any server.
const AVATAR: &str = "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 1 1'%3E%3Crect width='1' height='1' fill='%23888'/%3E%3C/svg%3E";

pub(super) fn run(pool: &DbPool, shared: &Shared, msg: AccountsRequest) -> Result<Value, AccountError> {
    let AccountsRequest { client, credentials, op, .. } = msg;
    let hawk = match &credentials {
        Credentials::Hawk(hawk) => Some(HawkCheck::new(shared, hawk, &client)?),
        _ => None,
    };
    match op {
        Op::Create { email, auth_pw, invite, client_salt, keys } => {
            limit_address(shared, &client)?;
            create(pool, shared, NewPassword::new(&email, &auth_pw, client_salt.as_deref())?, &invite, keys)
        }
        Op::CredentialsStatus { email } => {
            limit_address(shared, &client)?;
            let account = read(pool, |tx| q::account_by_email(tx, &email).map_err(AccountError::from))?
                .ok_or(AccountError::UnknownAccount)?;
            Ok(match account.client_salt {
                Some(salt) if account.kdf_version == KDF_V2 => json!({
                    "currentVersion": "v2",
                    "clientSalt": format!("{CLIENT_SALT_PREFIX}{salt}"),
                    "upgradeNeeded": false,
                }),
                _ => json!({ "currentVersion": "v1", "upgradeNeeded": false }),
            })
        }
        Op::Login { email, auth_pw, keys } => {
            limit_address(shared, &client)?;
            login(pool, shared, &client, &email, &auth_pw, keys)
        }
        Op::Reset { email, auth_pw, invite, client_salt } => {
            limit_address(shared, &client)?;
            reset(pool, shared, NewPassword::new(&email, &auth_pw, client_salt.as_deref())?, &invite)
        }
        Op::Token(body) => {
            // A session's own grant is limited per session once it verifies, never per address.
            if hawk.is_none() {
                limit_address(shared, &client)?;
            }
            write(pool, |tx| token(shared, tx, hawk.as_ref(), &body))
        }
        Op::Destroy(body) => write(pool, |tx| {
            for member in ["token", "refresh_token"] {
                if let Some(token) = body.get(member).and_then(Value::as_str) {
                    q::delete_refresh_token(tx, &sha256_hex(token))?;
                }
            }
            Ok(json!({}))
        }),
        Op::Profile => read(pool, |tx| profile(shared, tx, &credentials)),
        Op::AccountStatus { uid } => {
            limit_address(shared, &client)?;
            read(pool, |tx| Ok(json!({ "exists": q::account_by_uid(tx, &uid)?.is_some() })))
        }
        Op::PasswordChangeStart { email, old_auth_pw } => {
            limit_address(shared, &client)?;
            settings::change_start(pool, shared, &client, &email, &old_auth_pw)
        }
        Op::PasswordChangeFinish { new, keys } => {
            let hawk = hawk.ok_or(AccountError::InvalidToken("no Hawk credentials"))?;
            settings::change_finish(pool, shared, &hawk, &new, keys)
        }
        Op::AccountDestroy { email, auth_pw } => {
            limit_address(shared, &client)?;
            settings::destroy_account(pool, shared, &client, &email, &auth_pw)
        }
        Op::Keys => {
            let hawk = hawk.ok_or(AccountError::InvalidToken("no Hawk credentials"))?;
            write(pool, |tx| {
                let token = hawk.verify(tx, TokenKind::KeyFetch)?;
                let fetch = q::key_fetch(tx, &token.token_id)?.ok_or(AccountError::InvalidToken("used"))?;
                // Single use: only the caller whose DELETE removed the row gets the bundle.
                if q::delete_key_fetch(tx, &token.token_id)? != 1 {
                    return Err(AccountError::InvalidToken("used"));
                }
                if fetch.created_at + shared.config.code_ttl_ms <= now_ms() {
                    return Err(AccountError::InvalidToken("expired key fetch"));
                }
                Ok(json!({ "bundle": fetch.bundle }))
            })
        }
        op => {
            let hawk = hawk.ok_or(AccountError::InvalidToken("no Hawk credentials"))?;
            let delivery = write(pool, |tx| {
                let session = hawk.verify(tx, TokenKind::Session)?;
                let account = live_account(tx, &session.uid)?;
                q::touch_session(tx, &session.token_id, now_ms())?;
                match op.clone() {
                    Op::InvokeCommand(body) => {
                        commands::invoke(shared, tx, &session, &account, &body, now_ms())
                    }
                    Op::Notify(body) => commands::notify(tx, &account, &body),
                    op => Ok(Delivery {
                        answer: session_op(shared, tx, &session, &account, op)?,
                        pushes: Vec::new(),
                    }),
                }
            })?;
            // Pushed only once committed (a push makes the device fetch at once), and without
            // waiting: the queue takes it or drops it.
            let mut answer = delivery.answer;
            let mut notified = false;
            for push in delivery.pushes {
                notified |= shared.push.offer(push);
            }
            if answer.get("notified").is_some() {
                answer["notified"] = Value::Bool(notified);
            }
            Ok(answer)
        }
    }
}

/// The limit on requests without valid credentials from one client address (§6).
pub(super) fn limit_address(shared: &Shared, client: &str) -> Result<(), AccountError> {
    shared.per_address.check(client).map_err(|retry_after| AccountError::TooManyRequests { retry_after })
}

/// A usable invite (unused, unexpired, for this email when it names one) of the given kind:
/// `reset_of` is the account a reset link must belong to, `None` for a new-account invite.
fn check_invite(
    tx: &mut Tx<'_>,
    code: &str,
    email: &str,
    reset_of: Option<&str>,
    now: i64,
) -> Result<InviteRow, AccountError> {
    let invite = q::invite(tx, &sha256_hex(code))?.ok_or(AccountError::InvalidInvite)?;
    let usable = invite.used_at.is_none()
        && invite.expires_at > now
        && invite.email.as_deref().is_none_or(|e| e == email)
        && invite.uid.as_deref() == reset_of;
    if usable {
        Ok(invite)
    } else {
        Err(AccountError::InvalidInvite)
    }
}

/// A new password as a create or reset body carries it.
struct NewPassword<'a> {
    email: &'a str,
    auth_pw: &'a str,
    kdf_version: i32,
    client_salt: Option<String>,
}

impl<'a> NewPassword<'a> {
    fn new(email: &'a str, auth_pw: &'a str, client_salt: Option<&str>) -> Result<Self, AccountError> {
        let (kdf_version, client_salt) = quick_stretch_version(client_salt)?;
        Ok(NewPassword { email, auth_pw, kdf_version, client_salt })
    }

    /// `account` with this password (its hash is `auth_pw`): a new salt and verifier and new
    /// keys (a new kB, since the old one is lost with the old password), generation and
    /// keys_changed_at at `now`.
    fn set_on(self, shared: &Shared, auth_pw: &[u8; 32], account: AccountRow, now: i64) -> AccountRow {
        let salt = random_bytes::<32>();
        let verify_hash = slow_stretch(shared, auth_pw, &salt);
        AccountRow {
            auth_salt: hex(&salt),
            verify_hash: hex(&verify_hash),
            kdf_version: self.kdf_version,
            client_salt: self.client_salt,
            ka: hex(&random_bytes::<32>()),
            wrap_kb: hex(&random_bytes::<32>()),
            verifier_set_at: now,
            keys_changed_at: now,
            ..account
        }
    }
}

fn create(
    pool: &DbPool,
    shared: &Shared,
    password: NewPassword<'_>,
    invite: &str,
    keys: bool,
) -> Result<Value, AccountError> {
    let email = password.email.to_string();
    let auth_pw = auth_pw(password.auth_pw)?;
    let now = now_ms();
    // Checked before the stretch so that a bad invite costs no CPU, and again (atomically) below.
    read(pool, |tx| check_invite(tx, invite, &email, None, now))?;
    let new = AccountRow { uid: hex(&random_bytes::<16>()), email, created_at: now, ..AccountRow::default() };
    let account = password.set_on(shared, &auth_pw, new, now);
    write(pool, |tx| {
        let invite = check_invite(tx, invite, &account.email, None, now)?;
        if q::account_by_email(tx, &account.email)?.is_some() {
            return Err(AccountError::AccountExists);
        }
        if q::use_invite(tx, &invite.code_hash, now)? != 1 {
            return Err(AccountError::InvalidInvite);
        }
        q::insert_account(tx, &account)?;
        start_session(tx, &account, keys, now)
    })
}

/// A sign-in. Only a wrong password counts against (account, client address), and only once
/// that pair has used up its window is it refused before the stretch: guesses from one address
/// never lock the account's owner out elsewhere (docs/accounts.md).
fn login(
    pool: &DbPool,
    shared: &Shared,
    client: &str,
    email: &str,
    auth_pw_hex: &str,
    keys: bool,
) -> Result<Value, AccountError> {
    let (account, verify_hash) = check_password(pool, shared, client, email, auth_pw_hex)?;
    write(pool, |tx| {
        let current = still_current(tx, &account.uid, &verify_hash)?;
        start_session(tx, &current, keys, now_ms())
    })
}

/// A new password from a reset link: new salt and verifier and new keys (a new kB, since the
/// old one is lost with the password), generation and keys_changed_at bumped, sessions revoked.
fn reset(
    pool: &DbPool,
    shared: &Shared,
    password: NewPassword<'_>,
    code: &str,
) -> Result<Value, AccountError> {
    let email = password.email;
    let auth_pw = auth_pw(password.auth_pw)?;
    let now = now_ms();
    let account = read(pool, |tx| {
        let account = q::account_by_email(tx, email)?.ok_or(AccountError::InvalidInvite)?;
        check_invite(tx, code, email, Some(&account.uid), now)?;
        if account.disabled_at.is_some() {
            return Err(AccountError::AccountDisabled);
        }
        Ok(account)
    })?;
    let previous_verify_hash = account.verify_hash.clone();
    let updated = password.set_on(shared, &auth_pw, account, now);
    write(pool, |tx| {
        let invite = check_invite(tx, code, email, Some(&updated.uid), now)?;
        if q::use_invite(tx, &invite.code_hash, now)? != 1 {
            return Err(AccountError::InvalidInvite);
        }
        // Only over the verifier read before the stretch, and not once disabled meanwhile.
        live_account(tx, &updated.uid)?;
        if q::set_password(tx, &updated, &previous_verify_hash)? != 1 {
            return Err(AccountError::InvalidInvite);
        }
        revoke(shared, tx, &updated.uid, now)?;
        start_session(tx, &updated, true, now)
    })
}

fn str_member<'a>(body: &'a Value, name: &str) -> Result<&'a str, AccountError> {
    body.get(name).and_then(Value::as_str).ok_or_else(|| AccountError::InvalidParameter(name.into()))
}

fn check_client(client_id: &str) -> Result<(), AccountError> {
    if client_id == FIREFOX_CLIENT_ID {
        Ok(())
    } else {
        Err(AccountError::UnknownClient)
    }
}

/// The granted scopes of a space-separated request; none allowed is an error.
fn granted_scope(requested: &str) -> Result<String, AccountError> {
    let granted: Vec<&str> = requested.split(' ').filter(|s| scope_allowed(s)).collect();
    if granted.is_empty() {
        return Err(AccountError::InvalidParameter("scope".into()));
    }
    Ok(granted.join(" "))
}

fn session_op(
    shared: &Shared,
    tx: &mut Tx<'_>,
    session: &TokenRow,
    account: &AccountRow,
    op: Op,
) -> Result<Value, AccountError> {
    let now = now_ms();
    match op {
        Op::ScopedKeyData { client_id, scope } => {
            check_client(&client_id)?;
            let mut answer = json!({});
            if scope.split(' ').any(|s| s == OLDSYNC_SCOPE) {
                answer[OLDSYNC_SCOPE] = json!({
                    "identifier": OLDSYNC_SCOPE,
                    // FxA's value for accounts that never rotated their scoped keys.
                    "keyRotationSecret": "0".repeat(64),
                    "keyRotationTimestamp": account.keys_changed_at,
                });
            }
            Ok(answer)
        }
        Op::Authorization(body) => {
            check_client(str_member(&body, "client_id")?)?;
            if str_member(&body, "response_type").unwrap_or("code") != "code" {
                return Err(AccountError::InvalidParameter("response_type".into()));
            }
            // PKCE is required, and only S256 (§6).
            if str_member(&body, "code_challenge_method")? != "S256" {
                return Err(AccountError::InvalidParameter("code_challenge_method".into()));
            }
            let challenge = str_member(&body, "code_challenge")?;
            if challenge.len() != 43 {
                return Err(AccountError::InvalidParameter("code_challenge".into()));
            }
            let keys_jwe = body.get("keys_jwe").and_then(Value::as_str).unwrap_or_default();
            if keys_jwe.len() > MAX_KEYS_JWE_BYTES {
                return Err(AccountError::InvalidParameter("keys_jwe".into()));
            }
            let state = body.get("state").cloned().unwrap_or(Value::Null);
            if state.to_string().len() > MAX_STATE_BYTES {
                return Err(AccountError::InvalidParameter("state".into()));
            }
            let code = hex(&random_bytes::<32>());
            q::delete_expired_codes(tx, now)?;
            q::insert_code(
                tx,
                &CodeRow {
                    code_hash: sha256_hex(&code),
                    uid: account.uid.clone(),
                    session_token_id: session.token_id.clone(),
                    scope: granted_scope(str_member(&body, "scope")?)?,
                    code_challenge: challenge.into(),
                    keys_jwe: keys_jwe.into(),
                    auth_at: now,
                    expires_at: now + shared.config.code_ttl_ms,
                },
            )?;
            Ok(json!({ "code": code, "state": state, "redirect": OOB_REDIRECT }))
        }
        Op::Token(body) => {
            // `fxa-credentials`: the session itself is the grant.
            check_client(str_member(&body, "client_id")?)?;
            let scope = granted_scope(str_member(&body, "scope")?)?;
            let ttl = body.get("ttl").and_then(Value::as_i64).unwrap_or(i64::MAX);
            let ttl = ttl.clamp(1, shared.config.access_token_ttl_seconds);
            let access_token = issue(shared, account, &scope, now, ttl)?;
            Ok(json!({
                "access_token": access_token,
                "token_type": "bearer",
                "scope": scope,
                "expires_in": ttl,
                "auth_at": now / 1000,
            }))
        }
        Op::Device(body) => register_device(tx, session, account, &body, now),
        Op::Devices => {
            let devices = q::devices(tx, &account.uid)?;
            Ok(Value::Array(
                devices
                    .iter()
                    .map(|d| device_json(d, Some(d.session_token_id == session.token_id)))
                    .collect(),
            ))
        }
        Op::AttachedClients => Ok(json!([])),
        Op::SessionStatus => Ok(json!({ "state": "verified", "uid": account.uid })),
        Op::EmailStatus => Ok(json!({
            "email": account.email,
            "verified": true,
            "sessionVerified": true,
            "emailVerified": true,
        })),
        Op::SessionDestroy => {
            q::delete_session(tx, &session.token_id)?;
            // Key-fetch tokens name no session; they are the account's sign-in leftovers
            // (single use, minutes old), so a sign-out takes the account's along.
            q::delete_key_fetches(tx, &account.uid)?;
            Ok(json!({}))
        }
        Op::DeviceCommands { index, limit } => commands::fetch(tx, session, index, limit, now),
        Op::DeviceDestroy(body) => settings::destroy_device(tx, account, &body),
        // Routed by `run` before a session is looked up.
        Op::Create { .. }
        | Op::Login { .. }
        | Op::Reset { .. }
        | Op::Keys
        | Op::Destroy(_)
        | Op::Profile
        | Op::AccountStatus { .. }
        | Op::CredentialsStatus { .. }
        | Op::PasswordChangeStart { .. }
        | Op::PasswordChangeFinish { .. }
        | Op::AccountDestroy { .. }
        // Routed by `run`, which offers their pushes once committed.
        | Op::InvokeCommand(_)
        | Op::Notify(_) => Err(AccountError::InvalidToken("not a session operation")),
    }
}

fn issue(
    shared: &Shared,
    account: &AccountRow,
    scope: &str,
    now_ms: i64,
    ttl: i64,
) -> Result<String, AccountError> {
    shared
        .tokens
        .issue(&account.uid, scope, account.verifier_set_at, FIREFOX_CLIENT_ID, now_ms / 1000, ttl)
        .map_err(AccountError::Signing)
}

/// `POST /v1/oauth/token` for every grant type.
fn token(
    shared: &Shared,
    tx: &mut Tx<'_>,
    hawk: Option<&HawkCheck<'_>>,
    body: &Value,
) -> Result<Value, AccountError> {
    let now = now_ms();
    match str_member(body, "grant_type")? {
        "authorization_code" => {
            check_client(str_member(body, "client_id")?)?;
            let code_hash = sha256_hex(str_member(body, "code")?);
            let code = q::code(tx, &code_hash)?.ok_or(AccountError::InvalidToken("unknown or used code"))?;
            if code.expires_at <= now {
                return Err(AccountError::InvalidToken("expired code"));
            }
            if pkce_challenge(str_member(body, "code_verifier")?) != code.code_challenge {
                return Err(AccountError::MismatchedCodeChallenge);
            }
            // Single use: only the caller whose DELETE removed the row gets tokens.
            if q::delete_code(tx, &code_hash)? != 1 {
                return Err(AccountError::InvalidToken("unknown or used code"));
            }
            if let Some(hawk) = hawk {
                let session = hawk.verify(tx, TokenKind::Session)?;
                if session.token_id != code.session_token_id {
                    return Err(AccountError::InvalidToken("code of another session"));
                }
            }
            let account = live_account(tx, &code.uid)?;
            let ttl = shared.config.access_token_ttl_seconds;
            let access_token = issue(shared, &account, &code.scope, now, ttl)?;
            let refresh_token = hex(&random_bytes::<32>());
            let row = RefreshTokenRow {
                uid: account.uid.clone(),
                session_token_id: code.session_token_id.clone(),
                scope: code.scope.clone(),
            };
            q::insert_refresh_token(tx, &sha256_hex(&refresh_token), &row, now)?;
            let mut answer = json!({
                "access_token": access_token,
                "refresh_token": refresh_token,
                "scope": code.scope,
                "token_type": "bearer",
                "expires_in": ttl,
                "auth_at": code.auth_at / 1000,
            });
            if !code.keys_jwe.is_empty() {
                answer["keys_jwe"] = json!(code.keys_jwe);
            }
            Ok(answer)
        }
        "fxa-credentials" => {
            let hawk = hawk.ok_or(AccountError::InvalidToken("no Hawk credentials"))?;
            let session = hawk.verify(tx, TokenKind::Session)?;
            let account = live_account(tx, &session.uid)?;
            session_op(shared, tx, &session, &account, Op::Token(body.clone()))
        }
        "refresh_token" => {
            check_client(str_member(body, "client_id")?)?;
            let stored = q::refresh_token(tx, &sha256_hex(str_member(body, "refresh_token")?))?
                .ok_or(AccountError::InvalidToken("unknown refresh token"))?;
            let account = live_account(tx, &stored.uid)?;
            let requested = body.get("scope").and_then(Value::as_str).unwrap_or(&stored.scope);
            let scope: Vec<&str> =
                requested.split(' ').filter(|s| stored.scope.split(' ').any(|g| g == *s)).collect();
            if scope.is_empty() {
                return Err(AccountError::InvalidParameter("scope".into()));
            }
            let scope = scope.join(" ");
            let ttl = shared.config.access_token_ttl_seconds;
            Ok(json!({
                "access_token": issue(shared, &account, &scope, now, ttl)?,
                "token_type": "bearer",
                "scope": scope,
                "expires_in": ttl,
            }))
        }
        _ => Err(AccountError::InvalidParameter("grant_type".into())),
    }
}

fn profile(shared: &Shared, tx: &mut Tx<'_>, credentials: &Credentials) -> Result<Value, AccountError> {
    let Credentials::Bearer(token) = credentials else {
        return Err(AccountError::InvalidToken("no bearer token"));
    };
    let claims = shared.tokens.verify(token).ok_or(AccountError::InvalidToken("access token"))?;
    if !claims.scope.split(' ').any(|s| s == "profile" || s.starts_with("profile:")) {
        return Err(AccountError::InvalidToken("no profile scope"));
    }
    let account = live_account(tx, &claims.sub)?;
    Ok(json!({
        "uid": account.uid,
        "email": account.email,
        "displayName": null,
        "avatar": AVATAR,
        "avatarDefault": true,
    }))
}

/// The device members Weft keeps besides name and type, as the client sent them.
const DEVICE_DETAILS: [&str; 4] = ["availableCommands", "pushCallback", "pushPublicKey", "pushAuthKey"];

fn register_device(
    tx: &mut Tx<'_>,
    session: &TokenRow,
    account: &AccountRow,
    body: &Value,
    now: i64,
) -> Result<Value, AccountError> {
    let existing = match body.get("id").and_then(Value::as_str) {
        Some(id) => {
            Some(q::device(tx, &account.uid, id)?.ok_or(AccountError::InvalidParameter("id".into()))?)
        }
        None => q::device_of_session(tx, &session.token_id)?,
    };
    let mut details: serde_json::Map<String, Value> =
        existing.as_ref().and_then(|d| serde_json::from_str(&d.details).ok()).unwrap_or_default();
    for name in DEVICE_DETAILS {
        if let Some(value) = body.get(name) {
            details.insert(name.into(), value.clone());
        }
    }
    // A new subscription replaces the one the push service said was gone (FxA resets
    // `pushEndpointExpired` the same way).
    if body.get("pushCallback").is_some() {
        details.remove("pushEndpointExpired");
    }
    let text =
        |name: &str, old: Option<&String>, default: &str, max: usize| -> Result<String, AccountError> {
            let value = match body.get(name) {
                Some(v) => v.as_str().ok_or_else(|| AccountError::InvalidParameter(name.into()))?.to_string(),
                None => old.cloned().unwrap_or_else(|| default.into()),
            };
            if value.len() > max {
                return Err(AccountError::InvalidParameter(name.into()));
            }
            Ok(value)
        };
    let details = Value::Object(details).to_string();
    if details.len() > MAX_DEVICE_DETAILS_BYTES {
        return Err(AccountError::InvalidParameter("availableCommands".into()));
    }
    let device = DeviceRow {
        id: existing.as_ref().map_or_else(|| hex(&random_bytes::<16>()), |d| d.id.clone()),
        uid: account.uid.clone(),
        session_token_id: session.token_id.clone(),
        name: text("name", existing.as_ref().map(|d| &d.name), "", MAX_DEVICE_NAME_BYTES)?,
        device_type: text(
            "type",
            existing.as_ref().map(|d| &d.device_type),
            "desktop",
            MAX_DEVICE_TYPE_BYTES,
        )?,
        details,
        created_at: existing.as_ref().map_or(now, |d| d.created_at),
        last_access_at: now,
    };
    if existing.is_some() {
        q::update_device(tx, &device)?;
    } else {
        q::insert_device(tx, &device)?;
    }
    Ok(device_json(&device, None))
}

fn device_json(device: &DeviceRow, current: Option<bool>) -> Value {
    let mut answer = json!({
        "id": device.id,
        "name": device.name,
        "type": device.device_type,
        "pushEndpointExpired": false,
        "lastAccessTime": device.last_access_at,
    });
    if let Ok(Value::Object(details)) = serde_json::from_str::<Value>(&device.details) {
        for (k, v) in details {
            answer[k] = v;
        }
    }
    if answer.get("availableCommands").is_none() {
        answer["availableCommands"] = json!({});
    }
    // FxA lists a device without a push subscription with `pushCallback: null`; Firefox then
    // re-registers and polls its device commands at its next device-list refresh.
    if answer.get("pushCallback").is_none() {
        answer["pushCallback"] = Value::Null;
    }
    if let Some(current) = current {
        answer["isCurrentDevice"] = json!(current);
    }
    answer
}

pub(super) fn admin(pool: &DbPool, shared: &Shared, op: AdminOp) -> Result<AdminReply, AccountError> {
    let now = now_ms();
    write(pool, |tx| match op.clone() {
        AdminOp::Invite { email, ttl_ms } => {
            let email = email.as_deref().map(email::normalize).transpose()?;
            new_code(tx, email, None, now, ttl_ms)
        }
        AdminOp::ResetLink { who, ttl_ms } => {
            let account = find(tx, &who)?;
            new_code(tx, Some(account.email), Some(account.uid), now, ttl_ms)
        }
        AdminOp::List => Ok(AdminReply::Accounts(
            q::list_accounts(tx)?
                .into_iter()
                .map(|a| AccountSummary {
                    uid: a.uid,
                    email: a.email,
                    created_at: a.created_at,
                    disabled: a.disabled_at.is_some(),
                })
                .collect(),
        )),
        AdminOp::Disable { who } => {
            let account = find(tx, &who)?;
            // The disable time becomes the account's generation: access tokens issued before
            // are refused by the tokenserver, new ones (after `enable`) carry it.
            q::disable(tx, &account.uid, now)?;
            revoke(shared, tx, &account.uid, now)?;
            Ok(AdminReply::Done { uid: account.uid })
        }
        AdminOp::Enable { who } => {
            let account = find(tx, &who)?;
            q::enable(tx, &account.uid)?;
            Ok(AdminReply::Done { uid: account.uid })
        }
        AdminOp::Delete { who } => {
            let account = find(tx, &who)?;
            delete_account(shared, tx, &account.uid, now)?;
            Ok(AdminReply::Done { uid: account.uid })
        }
    })
}

fn find(tx: &mut Tx<'_>, who: &str) -> Result<AccountRow, AccountError> {
    let found = if who.contains('@') {
        q::account_by_email(tx, &email::normalize(who)?)?
    } else {
        q::account_by_uid(tx, &who.trim().to_lowercase())?
    };
    found.ok_or(AccountError::UnknownAccount)
}

fn new_code(
    tx: &mut Tx<'_>,
    email: Option<String>,
    uid: Option<String>,
    now: i64,
    ttl_ms: i64,
) -> Result<AdminReply, AccountError> {
    let code = hex(&random_bytes::<16>());
    let row = InviteRow {
        code_hash: sha256_hex(&code),
        email: email.clone(),
        uid,
        created_at: now,
        expires_at: now.saturating_add(ttl_ms),
        used_at: None,
    };
    q::insert_invite(tx, &row)?;
    Ok(AdminReply::Code { code, email, expires_at: row.expires_at })
}
