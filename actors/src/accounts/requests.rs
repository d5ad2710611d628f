//! The messages of the accounts actor and their replies: one `AccountsRequest` per HTTP request
//! (who the client is, its credentials, the operation `Op`, named after FxA's routes) and one
//! `AccountsAdmin` per `weft account` command; `PushEndpointExpired` from the push worker. Every
//! other file of local accounts reads them; they import nothing of it but its error and the push
//! worker's report.

use std::time::Instant;

use actix::Message;
use serde_json::Value;

use super::error::AccountError;
use super::push::ExpiredEndpoint;
use crate::token_verifier::hawk::HawkHeader;

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

/// From the push worker: a push service said a device's subscription is gone.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct PushEndpointExpired(pub ExpiredEndpoint);

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

/// The new password of a change: its authPW and the wrapKb that keeps kB (kB XOR the new
/// unwrapBKey, computed in the page), and the quick stretch it used.
#[derive(Debug, Clone)]
pub struct NewCredentials {
    pub auth_pw: String,
    pub wrap_kb: String,
    pub client_salt: Option<String>,
}
