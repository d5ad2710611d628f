//! `AccountError`: every way an account request or command can fail. Each variant is one FxA
//! error; the binary turns them into FxA's `{code, errno, error, message}` bodies (status and
//! errno) in its one accounts error module.

use weft_schema::DbError;

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("account already exists")]
    AccountExists,
    #[error("unknown account")]
    UnknownAccount,
    #[error("incorrect password")]
    IncorrectPassword,
    /// Hawk signature does not verify (the reason is for logs only).
    #[error("invalid request signature: {0}")]
    InvalidSignature(&'static str),
    /// Unknown, revoked or already used session/key-fetch token, code or refresh token.
    #[error("invalid authentication token: {0}")]
    InvalidToken(&'static str),
    /// Hawk `ts` outside the replay window; carries the server time (seconds) for the client.
    #[error("invalid timestamp in request signature")]
    InvalidTimestamp { server_time: i64 },
    /// Hawk nonce seen before within the window.
    #[error("invalid nonce in request signature")]
    InvalidNonce,
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
    #[error("unknown client_id")]
    UnknownClient,
    /// PKCE verifier does not match the code's challenge.
    #[error("PKCE code verifier does not match")]
    MismatchedCodeChallenge,
    #[error("too many requests")]
    TooManyRequests { retry_after: u64 },
    /// The invite is unknown, used, expired or for another email (Weft's own error).
    #[error("invalid or expired invite")]
    InvalidInvite,
    #[error("account disabled")]
    AccountDisabled,
    /// A device id that is not one of the caller's account (or the caller registered none).
    #[error("unknown device")]
    UnknownDevice,
    /// The target device did not register the command in its `availableCommands`.
    #[error("device does not support this command")]
    UnavailableDeviceCommand,
    /// Every stretch slot is busy: the bound of §6 (503 + Retry-After).
    #[error("too many sign-ins at once")]
    Busy { retry_after: u64 },
    /// The access token could not be signed (an unusable key).
    #[error("cannot sign an access token: {0}")]
    Signing(#[from] jsonwebtoken::errors::Error),
    #[error(transparent)]
    Database(#[from] DbError),
    #[error(transparent)]
    Unavailable(#[from] crate::ActorUnavailable),
}

impl weft_schema::retry::DbFailure for AccountError {
    fn db_error(&self) -> Option<&DbError> {
        match self {
            AccountError::Database(e) => Some(e),
            _ => None,
        }
    }
}

impl From<diesel::result::Error> for AccountError {
    fn from(err: diesel::result::Error) -> Self {
        AccountError::Database(DbError::from(err))
    }
}
