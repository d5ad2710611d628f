//! `Accounts`: the SyncArbiter actor of local accounts. One message per HTTP request
//! (`AccountsRequest`: who the client is, its credentials, the operation) and one per admin
//! command (`AccountsAdmin`). Credentials are checked here, not in handlers, because a Hawk
//! key lives in the database: the handler only hands over what the client signed.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix::{Actor, Addr, Handler, Message, SyncArbiter, SyncContext};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use weft_schema::models::accounts::TokenRow;
use weft_schema::pool::Tx;
use weft_schema::queries::accounts as q;
use weft_schema::DbPool;

use super::error::AccountError;
use super::jwt::AccessTokens;
use super::limits::{Bound, NonceCache, RateLimiter};
use super::onepw::unhex;
use crate::token_verifier::hawk::{normalized_string, HawkHeader};

#[derive(Clone)]
pub struct AccountsConfig {
    pub threads: usize,
    /// scrypt cost: N = 2^log_n (FxA: 16).
    pub scrypt_log_n: u8,
    /// Stretches running at once; more get 503 + Retry-After (§6).
    pub max_concurrent_stretches: usize,
    pub retry_after_seconds: u64,
    pub access_token_ttl_seconds: i64,
    /// Lifetime of an authorization code (§6: at most 10 minutes).
    pub code_ttl_ms: i64,
    /// Hawk `ts` must be within this many seconds of the server clock; nonces are remembered
    /// as long (§6: 60).
    pub hawk_window_seconds: i64,
    /// Login, create and token requests per window, per client address and per email.
    pub rate_limit_per_address: u32,
    pub rate_limit_per_email: u32,
    pub rate_limit_window: Duration,
    /// The tokenserver's `users.email` of an account is `<uid>@<fxa_email_domain>`.
    pub fxa_email_domain: String,
}

/// What the client signed, for Hawk verification in the actor (tokens-and-hawk.md §6; FxA's
/// Hawk keys are the raw `hmacKey` bytes, not a string).
#[derive(Debug, Clone)]
pub struct HawkRequest {
    pub header: HawkHeader,
    pub method: String,
    pub request_target: String,
    pub host: String,
    pub port: u16,
    /// The payload hash of the body as received, checked against the header's `hash`.
    pub body_hash: String,
}

#[derive(Debug, Clone)]
pub enum Credentials {
    None,
    Hawk(Box<HawkRequest>),
    Bearer(String),
}

/// The operations of local-accounts.md §5, named after their routes.
#[derive(Debug, Clone)]
pub enum Op {
    /// `POST /v1/account/create` (with Weft's `invite`); `client_salt` (FxA's `clientSalt`)
    /// when the page used the version-2 quick stretch.
    Create { email: String, auth_pw: String, invite: String, client_salt: Option<String>, keys: bool },
    /// `POST /v1/account/credentials/status`: which quick stretch (and salt) the account uses.
    CredentialsStatus { email: String },
    /// `POST /v1/account/login`.
    Login { email: String, auth_pw: String, keys: bool },
    /// `POST /v1/account/reset` (Weft's own): a reset link's code and a new authPW; new kB.
    Reset { email: String, auth_pw: String, invite: String, client_salt: Option<String> },
    /// `GET /v1/account/keys` (Hawk with the keyFetchToken; single use).
    Keys,
    /// `POST /v1/account/scoped-key-data`.
    ScopedKeyData { client_id: String, scope: String },
    /// `POST /v1/oauth/authorization`.
    Authorization(Value),
    /// `POST /v1/oauth/token`, every grant type.
    Token(Value),
    /// `POST /v1/oauth/destroy`.
    Destroy(Value),
    /// `GET /profile/v1/profile` (Bearer).
    Profile,
    /// `POST /v1/account/device`.
    Device(Value),
    /// `GET /v1/account/devices`.
    Devices,
    /// `GET /v1/account/attached_clients`.
    AttachedClients,
    /// `GET /v1/session/status`.
    SessionStatus,
    /// `GET /v1/recovery_email/status`.
    EmailStatus,
    /// `POST /v1/session/destroy`.
    SessionDestroy,
    /// `GET /v1/account/status?uid=`.
    AccountStatus { uid: String },
    /// Routes Weft answers with a fixed body once the session verifies (device commands,
    /// notify: send-tab and push are not served).
    SessionStub(Value),
}

#[derive(Debug, Message)]
#[rtype(result = "Result<Value, AccountError>")]
pub struct AccountsRequest {
    /// The client's address, for rate limits.
    pub client: String,
    pub credentials: Credentials,
    pub op: Op,
}

#[derive(Debug, Clone)]
pub enum AdminOp {
    /// A single-use invite for a new account (optionally only for `email`); answers the code.
    Invite {
        email: Option<String>,
        ttl_ms: i64,
    },
    /// A single-use reset code for the account `who` (email or uid).
    ResetLink {
        who: String,
        ttl_ms: i64,
    },
    List,
    Disable {
        who: String,
    },
    Enable {
        who: String,
    },
    /// Deletes the account, revokes its sessions and retires its tokenserver user.
    Delete {
        who: String,
    },
}

#[derive(Debug, Message)]
#[rtype(result = "Result<AdminReply, AccountError>")]
pub struct AccountsAdmin(pub AdminOp);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountSummary {
    pub uid: String,
    pub email: String,
    pub created_at: i64,
    pub disabled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminReply {
    Code { code: String, email: Option<String>, expires_at: i64 },
    Accounts(Vec<AccountSummary>),
    Done { uid: String },
}

/// State shared by the actor's threads.
pub(super) struct Shared {
    pub config: AccountsConfig,
    pub tokens: AccessTokens,
    pub stretches: Bound,
    pub nonces: NonceCache,
    pub per_address: RateLimiter,
    pub per_email: RateLimiter,
}

pub struct Accounts {
    pool: DbPool,
    shared: Arc<Shared>,
}

impl Accounts {
    pub fn start(pool: DbPool, config: AccountsConfig, tokens: AccessTokens) -> Addr<Accounts> {
        let threads = config.threads.max(1);
        let window = Duration::from_secs(u64::try_from(config.hawk_window_seconds).unwrap_or(60));
        let shared = Arc::new(Shared {
            stretches: Bound::new(config.max_concurrent_stretches.max(1)),
            nonces: NonceCache::new(window),
            per_address: RateLimiter::new(config.rate_limit_per_address, config.rate_limit_window),
            per_email: RateLimiter::new(config.rate_limit_per_email, config.rate_limit_window),
            config,
            tokens,
        });
        SyncArbiter::start(threads, move || Accounts { pool: pool.clone(), shared: shared.clone() })
    }
}

impl Actor for Accounts {
    type Context = SyncContext<Self>;
}

impl Handler<AccountsRequest> for Accounts {
    type Result = Result<Value, AccountError>;

    fn handle(&mut self, msg: AccountsRequest, _: &mut SyncContext<Self>) -> Self::Result {
        let result = super::ops::run(&self.pool, &self.shared, msg);
        if let Err(AccountError::Database(e)) = &result {
            tracing::warn!(error = %e, "accounts database error");
        }
        result
    }
}

impl Handler<AccountsAdmin> for Accounts {
    type Result = Result<AdminReply, AccountError>;

    fn handle(&mut self, msg: AccountsAdmin, _: &mut SyncContext<Self>) -> Self::Result {
        super::ops::admin(&self.pool, &self.shared, msg.0)
    }
}

pub(super) fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Which table a Hawk id is looked up in.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum TokenKind {
    Session,
    KeyFetch,
}

/// The checks of a Hawk request that need no database (§6): `ts` within the window and the
/// nonce not seen within it. Run once per request, before any transaction, so that a
/// transaction retried after a deadlock does not meet its own nonce. A nonce is remembered
/// before the MAC is checked: nonces are the client's random choice, so a forger spending one
/// takes nothing from the client.
pub(super) fn check_hawk_freshness(shared: &Shared, hawk: &HawkRequest) -> Result<(), AccountError> {
    let now = now_ms() / 1000;
    let ts: i64 = hawk.header.ts.parse().map_err(|_| AccountError::InvalidSignature("ts"))?;
    if (ts - now).abs() > shared.config.hawk_window_seconds {
        return Err(AccountError::InvalidTimestamp { server_time: now });
    }
    if !shared.nonces.first_use(&hawk.header.id, &hawk.header.nonce) {
        return Err(AccountError::InvalidNonce);
    }
    Ok(())
}

/// Verifies a Hawk request's MAC (and payload hash, when sent) against the token it names;
/// answers the token's row. `check_hawk_freshness` has run before.
pub(super) fn verify_hawk(
    tx: &mut Tx<'_>,
    hawk: &HawkRequest,
    kind: TokenKind,
) -> Result<TokenRow, AccountError> {
    let token = match kind {
        TokenKind::Session => q::session(tx, &hawk.header.id)?,
        TokenKind::KeyFetch => q::key_fetch_token(tx, &hawk.header.id)?,
    }
    .ok_or(AccountError::InvalidToken("unknown token"))?;
    let key = unhex::<32>(&token.hmac_key).ok_or(AccountError::InvalidToken("stored key"))?;
    if let Some(hash) = &hawk.header.hash {
        if *hash != hawk.body_hash {
            return Err(AccountError::InvalidSignature("payload hash"));
        }
    }
    let normalized =
        normalized_string(&hawk.header, &hawk.method, &hawk.request_target, &hawk.host, hawk.port);
    use base64::Engine as _;
    let client_mac = base64::engine::general_purpose::STANDARD
        .decode(&hawk.header.mac)
        .map_err(|_| AccountError::InvalidSignature("mac encoding"))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC key");
    mac.update(normalized.as_bytes());
    mac.verify_slice(&client_mac).map_err(|_| AccountError::InvalidSignature("mac"))?;
    Ok(token)
}
