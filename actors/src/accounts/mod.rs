//! Local accounts (local-accounts.md): Weft as its own Mozilla-compatible account server.
//! `Accounts` is the SyncArbiter actor owning the account tables of the tokenserver database
//! (`actor`); its messages are `requests`, the state its threads share `shared`. It checks Hawk
//! credentials (`hawk`), rate limits and invites and runs each operation in one transaction
//! (`ops`, built on one account's password, sessions and revocation in `account`); `lanes`
//! starts it and keeps sign-ins, which stretch a password, off the threads of every other
//! operation. `onepw` is the server's half of the key protocol, `jwt` the local
//! issuer's access tokens, `limits` the in-memory guards (each a capped `bounded_map`),
//! `email` the one form of an account email; `commands` the device commands of Send Tab and
//! `push` the Web Push that tells a device of them;
//! `settings` what the account page does (device sign-out, password change, account deletion).

mod account;
mod actor;
mod bounded_map;
mod commands;
pub mod email;
mod error;
mod hawk;
pub mod jwt;
mod lanes;
mod limits;
pub mod onepw;
mod ops;
mod push;
mod requests;
mod settings;
mod shared;

pub use self::actor::Accounts;
pub use self::error::AccountError;
pub use self::hawk::MAX_HEADER_BYTES as MAX_HAWK_HEADER_BYTES;
pub use self::jwt::{AccessTokens, RsaKey};
pub use self::lanes::AccountsAddr;
pub use self::push::{EndpointPolicy, PushConfig, MOZILLA_PUSH_HOST};
pub use self::requests::{
    AccountSummary, AccountsAdmin, AccountsRequest, AdminOp, AdminReply, Credentials, HawkRequest,
    NewCredentials, Op,
};
pub use self::shared::AccountsConfig;
/// Why access-token keys could not be loaded or a token signed.
pub use jsonwebtoken::errors::Error as JwtError;

/// Firefox desktop's OAuth client id: the only client local accounts serve (§6).
pub const FIREFOX_CLIENT_ID: &str = "5882386c6d801776";
/// The scope of the Sync key and of tokenserver access tokens.
pub const OLDSYNC_SCOPE: &str = "https://identity.mozilla.com/apps/oldsync";
