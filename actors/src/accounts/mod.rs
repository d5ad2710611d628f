//! Local accounts (local-accounts.md): Weft as its own Mozilla-compatible account server.
//! `Accounts` is the SyncArbiter actor owning the account tables of the tokenserver database;
//! it checks Hawk credentials, rate limits and invites, stretches passwords under a bound and
//! runs each operation in one transaction. `onepw` is the server's half of the key protocol,
//! `jwt` the local issuer's access tokens, `limits` the in-memory guards.

mod actor;
mod error;
pub mod jwt;
mod limits;
pub mod onepw;
mod ops;

pub use self::actor::{
    AccountSummary, Accounts, AccountsAdmin, AccountsConfig, AccountsRequest, AdminOp, AdminReply,
    Credentials, HawkRequest, Op,
};
pub use self::error::AccountError;
pub use self::jwt::{AccessTokens, RsaKey};
/// Why access-token keys could not be loaded or a token signed.
pub use jsonwebtoken::errors::Error as JwtError;

/// Firefox desktop's OAuth client id: the only client local accounts serve (§6).
pub const FIREFOX_CLIENT_ID: &str = "5882386c6d801776";
/// The scope of the Sync key and of tokenserver access tokens.
pub const OLDSYNC_SCOPE: &str = "https://identity.mozilla.com/apps/oldsync";
