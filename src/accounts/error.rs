//! The one place where account errors become HTTP: FxA's error body `{code, errno, error,
//! message}` with FxA's status for each errno, `retryAfter` + `Retry-After` for 429 and 503,
//! and the `Timestamp` header every accounts response carries (local-accounts.md §5).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use weft_actors::accounts::AccountError;

#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct AccountsHttpError(#[from] pub AccountError);

/// FxA's errno (auth-server `error.js`); 1001 and 1002 are Weft's own.
fn errno(err: &AccountError) -> u32 {
    match err {
        AccountError::AccountExists => 101,
        AccountError::UnknownAccount => 102,
        AccountError::IncorrectPassword => 103,
        AccountError::InvalidParameter(_) | AccountError::MismatchedCodeChallenge => 107,
        AccountError::InvalidSignature(_) => 109,
        AccountError::InvalidToken(_) => 110,
        AccountError::InvalidTimestamp { .. } => 111,
        AccountError::TooManyRequests { .. } => 114,
        AccountError::InvalidNonce => 115,
        AccountError::UnknownClient => 162,
        AccountError::InvalidInvite => 1001,
        AccountError::AccountDisabled => 1002,
        AccountError::UnknownDevice => 123,
        AccountError::UnavailableDeviceCommand => 157,
        AccountError::Busy { .. }
        | AccountError::Signing(_)
        | AccountError::Database(_)
        | AccountError::Unavailable(_) => 201,
    }
}

/// What the page and the log may say; never a reason that could carry a secret.
fn message(err: &AccountError) -> String {
    match err {
        AccountError::AccountExists => "Account already exists".into(),
        AccountError::UnknownAccount => "Unknown account".into(),
        AccountError::IncorrectPassword => "Incorrect password".into(),
        AccountError::InvalidParameter(what) => format!("Invalid parameter in request body: {what}"),
        AccountError::MismatchedCodeChallenge => "Invalid parameter in request body: code_verifier".into(),
        AccountError::InvalidSignature(_) => "Invalid request signature".into(),
        AccountError::InvalidToken(_) => "Invalid authentication token in request signature".into(),
        AccountError::InvalidTimestamp { .. } => "Invalid timestamp in request signature".into(),
        AccountError::TooManyRequests { .. } => "Client has sent too many requests".into(),
        AccountError::InvalidNonce => "Invalid nonce in request signature".into(),
        AccountError::UnknownClient => "Unknown client_id".into(),
        AccountError::InvalidInvite => "Invalid or expired invite".into(),
        AccountError::AccountDisabled => "Account disabled".into(),
        AccountError::UnknownDevice => "Unknown device".into(),
        AccountError::UnavailableDeviceCommand => "Unavailable device command".into(),
        AccountError::Busy { .. }
        | AccountError::Signing(_)
        | AccountError::Database(_)
        | AccountError::Unavailable(_) => "Service unavailable".into(),
    }
}

fn retry_after(err: &AccountError) -> Option<u64> {
    match err {
        AccountError::TooManyRequests { retry_after } | AccountError::Busy { retry_after } => {
            Some(*retry_after)
        }
        // A failing database or key: the client should come back, as for every dependency.
        AccountError::Signing(_) | AccountError::Database(_) | AccountError::Unavailable(_) => Some(10),
        _ => None,
    }
}

impl ResponseError for AccountsHttpError {
    fn status_code(&self) -> StatusCode {
        match &self.0 {
            AccountError::AccountExists
            | AccountError::UnknownAccount
            | AccountError::IncorrectPassword
            | AccountError::InvalidParameter(_)
            | AccountError::UnknownClient
            | AccountError::MismatchedCodeChallenge
            | AccountError::InvalidInvite
            | AccountError::UnknownDevice
            | AccountError::UnavailableDeviceCommand => StatusCode::BAD_REQUEST,
            AccountError::InvalidSignature(_)
            | AccountError::InvalidToken(_)
            | AccountError::InvalidTimestamp { .. }
            | AccountError::InvalidNonce
            | AccountError::AccountDisabled => StatusCode::UNAUTHORIZED,
            AccountError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            AccountError::Busy { .. }
            | AccountError::Signing(_)
            | AccountError::Database(_)
            | AccountError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let mut body = serde_json::json!({
            "code": status.as_u16(),
            "errno": errno(&self.0),
            "error": status.canonical_reason().unwrap_or("Error"),
            "message": message(&self.0),
        });
        let mut response = super::json_response(status);
        if let AccountError::InvalidTimestamp { server_time } = &self.0 {
            body["serverTime"] = serde_json::json!(server_time);
        }
        if let Some(seconds) = retry_after(&self.0) {
            body["retryAfter"] = serde_json::json!(seconds);
            response.insert_header(("Retry-After", seconds.to_string()));
        }
        if status.is_server_error() {
            tracing::warn!(errno = errno(&self.0), error = %self.0, "accounts request failed");
        } else {
            tracing::debug!(errno = errno(&self.0), error = %self.0, "accounts request refused");
        }
        response.json(body)
    }
}
