//! What every thread of the accounts actor shares, on both lanes: its settings
//! (`AccountsConfig`), the access-token issuer, the in-memory limits and the push queue
//! (`Shared`), and the clock the operations read (`now_ms`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::jwt::AccessTokens;
use super::limits::{NonceCache, RateLimiter};
use super::push::{PushConfig, PushQueue};

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
    /// This server's public URL: a push names the URL its command is fetched from.
    pub public_url: String,
    /// Web Push to devices' `pushCallback` (`push`).
    pub push: PushConfig,
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
    /// Where pushes are offered once their transaction committed.
    pub push: PushQueue,
}

pub(super) fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}
