//! `Accounts`: the SyncArbiter actor of local accounts. One message per HTTP request
//! (`AccountsRequest`: who the client is, its credentials, the operation) and one per admin
//! command (`AccountsAdmin`). Credentials are checked here, not in handlers, because a Hawk
//! key lives in the database: the handler only hands over what the client signed.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix::{Actor, Handler, Message, SyncArbiter, SyncContext};
use serde_json::Value;
use weft_schema::DbPool;

use super::error::AccountError;
use super::jwt::AccessTokens;
use super::lanes::AccountsAddr;
use super::limits::{NonceCache, RateLimiter};
use super::settings::NewCredentials;
use crate::token_verifier::hawk::HawkHeader;

#[derive(Clone)]
pub struct AccountsConfig {
    /// Threads of the lane every operation but a sign-in runs on.
    pub threads: usize,
    /// scrypt cost: N = 2^log_n (FxA: 16).
    pub scrypt_log_n: u8,
    /// Threads of the sign-in lane (create, login, reset): the stretches running at once (§6).
    pub max_concurrent_stretches: usize,
    /// How long a sign-in may wait for a stretch slot; past it, 503 + Retry-After.
    pub stretch_deadline: Duration,
    pub retry_after_seconds: u64,
    pub access_token_ttl_seconds: i64,
    /// Lifetime of an authorization code (§6: at most 10 minutes), and of a key-fetch token.
    pub code_ttl_ms: i64,
    /// Hawk `ts` must be within this many seconds of the server clock; a nonce is remembered
    /// until its `ts` leaves that window (§6: 60).
    pub hawk_window_seconds: i64,
    /// Requests without valid credentials (sign-in, create, reset, status, code and refresh
    /// grants, Hawk that fails to verify) per window per client address.
    pub rate_limit_per_address: u32,
    /// Hawk-signed requests per window per valid session (never per address).
    pub rate_limit_per_session: u32,
    /// Wrong passwords per window per (account, client address).
    pub failed_logins_per_account_address: u32,
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
    /// Whether the request carries a body (which the header must then hash).
    pub has_body: bool,
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
    /// `POST /v1/account/devices/invoke_command`.
    InvokeCommand(Value),
    /// `GET /v1/account/device/commands?index=&limit=`.
    DeviceCommands { index: i64, limit: i64 },
    /// `POST /v1/account/devices/notify`.
    Notify(Value),
    /// `POST /v1/account/device/destroy {id}` (the account page's "sign out").
    DeviceDestroy(Value),
    /// `POST /v1/password/change/start {email, oldAuthPW}`.
    PasswordChangeStart { email: String, old_auth_pw: String },
    /// `POST /v1/password/change/finish` (Hawk with the passwordChangeToken).
    PasswordChangeFinish { new: NewCredentials, keys: bool },
    /// `POST /v1/account/destroy {email, authPW}`.
    AccountDestroy { email: String, auth_pw: String },
}

impl Op {
    /// Whether the operation stretches a password (a sign-in, a password change or check), and
    /// so runs on the sign-in lane.
    pub fn stretches(&self) -> bool {
        matches!(
            self,
            Op::Create { .. }
                | Op::Login { .. }
                | Op::Reset { .. }
                | Op::PasswordChangeStart { .. }
                | Op::PasswordChangeFinish { .. }
                | Op::AccountDestroy { .. }
        )
    }
}

#[derive(Debug, Message)]
#[rtype(result = "Result<Value, AccountError>")]
pub struct AccountsRequest {
    /// The client's address for rate limits (an IP, or an IPv6 /64).
    pub client: String,
    pub credentials: Credentials,
    pub op: Op,
    /// A sign-in not started by then is answered 503 + Retry-After without being run.
    pub deadline: Option<Instant>,
}

impl AccountsRequest {
    pub fn new(client: String, credentials: Credentials, op: Op) -> AccountsRequest {
        AccountsRequest { client, credentials, op, deadline: None }
    }
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

/// State shared by the actor's threads (both lanes).
pub(super) struct Shared {
    pub config: AccountsConfig,
    pub tokens: AccessTokens,
    pub nonces: NonceCache,
    pub per_address: RateLimiter,
    pub per_session: RateLimiter,
    pub failed_logins: RateLimiter,
    /// Device commands sent per account (`commands::COMMANDS_PER_ACCOUNT`).
    pub commands_per_account: RateLimiter,
}

pub struct Accounts {
    pool: DbPool,
    shared: Arc<Shared>,
}

impl Accounts {
    /// Starts both lanes on `pool`; the answer routes each request to its lane.
    pub fn start(pool: DbPool, config: AccountsConfig, tokens: AccessTokens) -> AccountsAddr {
        let window = config.rate_limit_window;
        // Exported from the start, at 0, like the maps' series.
        metrics::counter!("weft_accounts_stretch_deadline_missed_total").increment(0);
        let shared = Arc::new(Shared {
            nonces: NonceCache::new(u64::try_from(config.hawk_window_seconds).unwrap_or(60)),
            per_address: RateLimiter::new("per_address", config.rate_limit_per_address, window),
            per_session: RateLimiter::new("per_session", config.rate_limit_per_session, window),
            failed_logins: RateLimiter::new(
                "failed_logins",
                config.failed_logins_per_account_address,
                window,
            ),
            commands_per_account: RateLimiter::new(
                "commands_per_account",
                super::commands::COMMANDS_PER_ACCOUNT,
                window,
            ),
            config,
            tokens,
        });
        let lane = |threads: usize, sign_ins: bool| {
            let (pool, shared) = (pool.clone(), shared.clone());
            SyncArbiter::start(threads.max(1), move || {
                // The factory runs on each new thread of the lane.
                if sign_ins {
                    super::lanes::lower_priority();
                }
                Accounts { pool: pool.clone(), shared: shared.clone() }
            })
        };
        AccountsAddr::new(
            lane(shared.config.threads, false),
            lane(shared.config.max_concurrent_stretches, true),
            shared.config.stretch_deadline,
        )
    }
}

impl Actor for Accounts {
    type Context = SyncContext<Self>;
}

impl Handler<AccountsRequest> for Accounts {
    type Result = Result<Value, AccountError>;

    fn handle(&mut self, msg: AccountsRequest, _: &mut SyncContext<Self>) -> Self::Result {
        if msg.deadline.is_some_and(|deadline| Instant::now() > deadline) {
            metrics::counter!("weft_accounts_stretch_deadline_missed_total").increment(1);
            return Err(AccountError::Busy { retry_after: self.shared.config.retry_after_seconds });
        }
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
