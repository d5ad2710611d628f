//! Row types of the local-accounts tables (local-accounts.md §5, §6; migration
//! `*_accounts`). Times are integer milliseconds; binary values are lower-case hex; secrets
//! handed to clients (tokens, codes, invites) are stored only as hashes or derived values.

use diesel::sql_types::{BigInt, Integer, Nullable, Text};
use diesel::QueryableByName;

/// An `accounts` row; also what `insert_account` writes (`disabled_at` NULL).
#[derive(Debug, Clone, Default, PartialEq, Eq, QueryableByName)]
pub struct AccountRow {
    #[diesel(sql_type = Text)]
    pub uid: String,
    #[diesel(sql_type = Text)]
    pub email: String,
    #[diesel(sql_type = Text)]
    pub auth_salt: String,
    #[diesel(sql_type = Text)]
    pub verify_hash: String,
    #[diesel(sql_type = Integer)]
    pub kdf_version: i32,
    /// The 32 hex characters of a version-2 quick stretch's salt; `None` for version 1.
    #[diesel(sql_type = Nullable<Text>)]
    pub client_salt: Option<String>,
    #[diesel(sql_type = Text)]
    pub ka: String,
    #[diesel(sql_type = Text)]
    pub wrap_kb: String,
    #[diesel(sql_type = BigInt)]
    pub verifier_set_at: i64,
    #[diesel(sql_type = BigInt)]
    pub keys_changed_at: i64,
    #[diesel(sql_type = BigInt)]
    pub created_at: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub disabled_at: Option<i64>,
}

/// Hawk credentials of a session token or a key-fetch token.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct TokenRow {
    #[diesel(sql_type = Text)]
    pub token_id: String,
    #[diesel(sql_type = Text)]
    pub uid: String,
    #[diesel(sql_type = Text)]
    pub hmac_key: String,
}

/// A password change in flight: the verifier the old password matched at its start.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct PasswordChangeRow {
    #[diesel(sql_type = Text)]
    pub uid: String,
    #[diesel(sql_type = Text)]
    pub verify_hash: String,
    /// ms; refused once as old as a key-fetch token may be.
    #[diesel(sql_type = BigInt)]
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct KeyFetchRow {
    #[diesel(sql_type = Text)]
    pub uid: String,
    #[diesel(sql_type = Text)]
    pub bundle: String,
    /// ms; a key-fetch token is refused once as old as an authorization code may be.
    #[diesel(sql_type = BigInt)]
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct DeviceRow {
    #[diesel(sql_type = Text)]
    pub id: String,
    #[diesel(sql_type = Text)]
    pub uid: String,
    #[diesel(sql_type = Text)]
    pub session_token_id: String,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = Text)]
    pub device_type: String,
    /// JSON object of the other members the client registered (availableCommands, push…).
    #[diesel(sql_type = Text)]
    pub details: String,
    #[diesel(sql_type = BigInt)]
    pub created_at: i64,
    #[diesel(sql_type = BigInt)]
    pub last_access_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct CodeRow {
    #[diesel(sql_type = Text)]
    pub code_hash: String,
    #[diesel(sql_type = Text)]
    pub uid: String,
    #[diesel(sql_type = Text)]
    pub session_token_id: String,
    #[diesel(sql_type = Text)]
    pub scope: String,
    #[diesel(sql_type = Text)]
    pub code_challenge: String,
    #[diesel(sql_type = Text)]
    pub keys_jwe: String,
    #[diesel(sql_type = BigInt)]
    pub auth_at: i64,
    #[diesel(sql_type = BigInt)]
    pub expires_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct RefreshTokenRow {
    #[diesel(sql_type = Text)]
    pub uid: String,
    #[diesel(sql_type = Text)]
    pub session_token_id: String,
    #[diesel(sql_type = Text)]
    pub scope: String,
}

#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct InviteRow {
    #[diesel(sql_type = Text)]
    pub code_hash: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub email: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub uid: Option<String>,
    #[diesel(sql_type = BigInt)]
    pub created_at: i64,
    #[diesel(sql_type = BigInt)]
    pub expires_at: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub used_at: Option<i64>,
}
