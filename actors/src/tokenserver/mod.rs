//! The tokenserver (tokenserver-api.md): `Tokenserver`, the actor answering token requests
//! (OAuth verification, the order of checks, token minting), `TokenserverDb`, the SyncArbiter
//! actor owning the tokenserver database (user records, node assignment, node management), the
//! OAuth verifier, and the consistency rules of §6 as pure functions.

mod actor;
pub mod db;
mod error;
pub mod oauth;
mod rules;

pub use self::actor::{fxa_kid, metrics_hash, GetToken, IssuedToken, KeyId, Tokenserver, TokenserverConfig};
pub use self::db::{
    AddNode, AllocateUser, AssignUser, AssignedUser, ListNodes, RegisterInitialNode, RemoveNode,
    TokenserverDb, TokenserverDbConfig, UnassignNode, UpdateNode, MAX_GENERATION,
};
pub use self::error::TokenserverError;
pub use self::oauth::{Jwk, OAuthConfig, OAuthIdentity, OAuthSetupError, OAuthVerifier, SYNC_SCOPE};
