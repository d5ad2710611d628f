//! `TokenserverError`: every way a tokenserver request or admin command can end other than
//! successfully. Each variant is one row of tokenserver-api.md §11; the binary turns them into
//! the JSON error bodies in its one tokenserver error module.

use weft_schema::DbError;

use crate::ActorUnavailable;

#[derive(Debug, thiserror::Error)]
pub enum TokenserverError {
    /// No, garbled or non-ASCII `Authorization` (§2.1).
    #[error("missing or malformed Authorization header")]
    Unauthorized,
    /// An `Authorization` scheme other than Bearer.
    #[error("unsupported Authorization scheme")]
    UnsupportedScheme,
    /// The OAuth token did not verify, expired, or lacks the sync scope; also a malformed
    /// X-KeyID (§2.2). The reason is for logs only.
    #[error("invalid credentials: {0}")]
    InvalidCredentials(String),
    #[error("missing X-KeyID header")]
    MissingKeyId,
    #[error("X-KeyID header is not ASCII")]
    InvalidKeyIdHeader,
    /// `X-Client-State` does not match `^[a-zA-Z0-9._-]{1,32}$` (400).
    #[error("invalid X-Client-State header")]
    InvalidClientStateHeader,
    /// `X-Client-State` differs from the client state of `X-KeyID`.
    #[error("X-Client-State does not match X-KeyID")]
    ClientStateMismatch,
    /// A client-state rule of §6.3 (rules 2–5); the text is the reason of the description.
    #[error("unacceptable client-state value {0}")]
    InvalidClientState(&'static str),
    #[error("generation went backwards")]
    InvalidGeneration,
    #[error("keys_changed_at rules violated")]
    InvalidKeysChangedAt,
    #[error("new users are not allowed")]
    NewUsersDisabled,
    #[error("unsupported application")]
    UnsupportedApplication,
    /// Carries the version as requested: it is the error's `name`.
    #[error("unsupported application version {0}")]
    UnsupportedVersion(String),
    /// No node can take a new user, even after releasing capacity (§7.1).
    #[error("no node available for new users")]
    NoNodeAvailable,
    /// The current record is retired and has no node (§6.2 step 6).
    #[error("retired user without a node")]
    RetiredWithoutNode,
    /// The user's row holds a uid no token can carry (0, negative, or more than 10 digits).
    #[error("stored uid {0} is out of range")]
    InvalidStoredUid(i64),
    /// The assigned node has no master secret in this process's configuration.
    #[error("no master secret for node {0}")]
    NoSecretForNode(String),
    /// The FxA verifier could not be reached or did not answer usefully (503).
    #[error("OAuth verifier unavailable: {0}")]
    VerifierUnavailable(String),
    /// The database did not answer within `database_request_timeout_ms` (504).
    #[error("database request timed out")]
    Elapsed,
    /// Admin: `node add` for a node that exists.
    #[error("node {0} already exists")]
    NodeExists(String),
    /// Admin: a node that is not in the `nodes` table.
    #[error("no node {0}")]
    NoSuchNode(String),
    /// The `services` table has no `sync-1.5` row: the migrations have not run.
    #[error("the services table has no {0:?} row; run the migrations")]
    NoSyncService(&'static str),
    #[error(transparent)]
    Database(DbError),
    /// The tokenserver, its database actor or the token verifier did not answer.
    #[error(transparent)]
    Unavailable(#[from] ActorUnavailable),
}

impl From<DbError> for TokenserverError {
    fn from(err: DbError) -> Self {
        TokenserverError::Database(err)
    }
}

impl From<diesel::result::Error> for TokenserverError {
    fn from(err: diesel::result::Error) -> Self {
        TokenserverError::from(DbError::from(err))
    }
}

impl weft_schema::retry::DbFailure for TokenserverError {
    fn db_error(&self) -> Option<&DbError> {
        match self {
            TokenserverError::Database(err) => Some(err),
            _ => None,
        }
    }
}
