//! The tokenserver (tokenserver-api.md): `Tokenserver`, the actor answering token requests
//! (OAuth verification, the order of checks, token minting), `TokenserverDb`, the SyncArbiter
//! actor owning the tokenserver database (user records, node assignment, node management), the
//! OAuth verifier (access tokens and FxA's account-event tokens), the account events, and the
//! rules of §6 and of the purge of replaced users as pure functions.

mod actor;
pub mod db;
mod error;
pub mod events;
pub mod oauth;
mod rules;

pub use self::actor::{
    fxa_kid, metrics_hash, ApplyAccountEvents, GetToken, IssuedToken, KeyId, Tokenserver, TokenserverConfig,
};
pub use self::db::{
    AddNode, AllocateUser, AssignUser, AssignedUser, CountReplacedUsers, ForgetUser, ListNodes,
    RaiseGeneration, RegisterInitialNode, RemoveNode, ReplacedUsers, RetireUser, TokenserverDb,
    TokenserverDbConfig, UnassignNode, UpdateNode, MAX_GENERATION,
};
pub use self::error::TokenserverError;
pub use self::events::AccountEventsConfig;
pub use self::oauth::{
    Jwk, LocalIssuer, OAuthConfig, OAuthIdentity, OAuthSetupError, OAuthVerifier, SYNC_SCOPE,
};
pub use self::rules::{purge_step, PurgeStep};
