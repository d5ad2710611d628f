//! The token-verifier actor: holds every node's list of master secrets (oldest first; any one
//! verifies, the newest signs) and publishes them as an immutable snapshot with which request
//! workers check tokenlib tokens (tokens-and-hawk.md §3) and Hawk request signatures (§6) on
//! their own thread; the snapshot caches signing secrets and derived Hawk keys. A `SetSecrets`
//! message publishes new lists at runtime, for rollover without a restart.

pub mod hawk;
pub mod token;

pub use self::actor::{
    GetSigningSecret, HawkRequest, NodeSecrets, PublishedCredentials, SetSecrets, TokenVerifier,
    VerifiedToken,
};
pub use self::token::{mint_token, TokenPayload};

mod actor;

/// Why authentication failed. Clients only ever see 401 (body 0); the reason is for metrics
/// and logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing Authorization header")]
    MissingHeader,
    #[error("Authorization is not a Hawk header")]
    NotHawk,
    #[error("unparsable Hawk header")]
    BadHeader,
    #[error("token signature does not verify with any secret of the node")]
    BadSignature,
    #[error("token payload is not valid")]
    BadPayload,
    #[error("token expired")]
    Expired,
    #[error("Hawk MAC does not match")]
    BadMac,
    #[error("Hawk payload hash does not match the body")]
    BadPayloadHash,
    #[error("Hawk timestamp too far from the server clock")]
    ClockSkew,
    #[error("token is for another node")]
    WrongNode,
    #[error("request is not for a node this server serves")]
    UnknownNode,
    /// The token is valid, but its user has moved to another node (`crate::user_move`): the
    /// client fetches a new token, which names the new node.
    #[error("user moved to another node")]
    UserMoved,
}

impl AuthError {
    /// A short, bounded label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::MissingHeader => "missing_header",
            AuthError::NotHawk => "not_hawk",
            AuthError::BadHeader => "bad_header",
            AuthError::BadSignature => "bad_signature",
            AuthError::BadPayload => "bad_payload",
            AuthError::Expired => "expired",
            AuthError::BadMac => "bad_mac",
            AuthError::BadPayloadHash => "bad_payload_hash",
            AuthError::ClockSkew => "clock_skew",
            AuthError::WrongNode => "wrong_node",
            AuthError::UnknownNode => "unknown_node",
            AuthError::UserMoved => "user_moved",
        }
    }
}
