//! `TokenserverHttpError`: the one place where a tokenserver failure becomes an HTTP response,
//! with the status and Cornice-style JSON body of tokenserver-api.md §11:
//! `{"status": …, "errors": [{"location": …, "name": …, "description": …}]}`. The storage
//! protocol's errors (bare weave codes) are `crate::web::error::ApiError`; this is a different
//! protocol with its own shape.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use weft_actors::tokenserver::TokenserverError;

#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct TokenserverHttpError(#[from] pub TokenserverError);

/// (status, `status` string, location, name, description) of an error.
fn describe(err: &TokenserverError) -> (StatusCode, &'static str, &'static str, String, String) {
    use TokenserverError as E;
    let unauthorized =
        |status| (StatusCode::UNAUTHORIZED, status, "body", String::new(), "Unauthorized".to_string());
    let server_error = |code| (code, "internal-error", "internal", String::new(), "Server error".to_string());
    match err {
        E::Unauthorized => unauthorized("error"),
        E::UnsupportedScheme => {
            (StatusCode::UNAUTHORIZED, "error", "body", String::new(), "Unsupported".into())
        }
        E::InvalidCredentials(_) => unauthorized("invalid-credentials"),
        E::MissingKeyId => (
            StatusCode::UNAUTHORIZED,
            "invalid-key-id",
            "header",
            String::new(),
            "Missing X-KeyID header".into(),
        ),
        E::InvalidKeyIdHeader => (
            StatusCode::UNAUTHORIZED,
            "invalid-key-id",
            "header",
            String::new(),
            "Invalid X-KeyID header".into(),
        ),
        E::InvalidClientStateHeader => (
            StatusCode::BAD_REQUEST,
            "error",
            "header",
            "X-Client-State".into(),
            "Invalid client state value".into(),
        ),
        E::ClientStateMismatch => unauthorized("invalid-client-state"),
        E::InvalidClientState(reason) => (
            StatusCode::UNAUTHORIZED,
            "invalid-client-state",
            "header",
            "X-Client-State".into(),
            format!("Unacceptable client-state value {reason}"),
        ),
        E::InvalidGeneration => unauthorized("invalid-generation"),
        E::InvalidKeysChangedAt => unauthorized("invalid-keysChangedAt"),
        // [DIFF] §6.2: REF's 403 and description; PY answered 401 "Unauthorized".
        E::NewUsersDisabled => (
            StatusCode::FORBIDDEN,
            "new-users-disabled",
            "body",
            String::new(),
            "New users are not allowed".into(),
        ),
        E::UnsupportedApplication => {
            (StatusCode::NOT_FOUND, "error", "url", "application".into(), "Unsupported application".into())
        }
        E::UnsupportedVersion(version) => {
            (StatusCode::NOT_FOUND, "error", "url", version.clone(), "Unsupported application version".into())
        }
        E::VerifierUnavailable(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "error",
            "body",
            String::new(),
            "Resource is not available".into(),
        ),
        E::Elapsed => (StatusCode::GATEWAY_TIMEOUT, "elapsed", "body", String::new(), "Elapsed".into()),
        // A damaged table or configuration: retrying cannot help, an operator must.
        E::RetiredWithoutNode | E::NoSecretForNode(_) | E::InvalidStoredUid(_) => {
            server_error(StatusCode::INTERNAL_SERVER_ERROR)
        }
        // No node, the database or an actor that does not answer (all 503: a failing
        // dependency), and the admin-only errors (never reached over HTTP).
        E::NoNodeAvailable
        | E::Database(_)
        | E::NoSyncService(_)
        | E::Unavailable(_)
        | E::NodeExists(_)
        | E::NoSuchNode(_) => server_error(StatusCode::SERVICE_UNAVAILABLE),
    }
}

impl ResponseError for TokenserverHttpError {
    fn status_code(&self) -> StatusCode {
        describe(&self.0).0
    }

    fn error_response(&self) -> HttpResponse {
        let (status, kind, location, name, description) = describe(&self.0);
        if status.is_server_error() {
            tracing::error!(error = %self.0, status = status.as_u16(), "token request failed");
        } else {
            tracing::info!(error = %self.0, status = status.as_u16(), "token request refused");
        }
        HttpResponse::build(status)
            .json(ErrorBody { status: kind, errors: [ErrorDetail { location, name, description }] })
    }
}

/// The body, with its members in the references' order.
#[derive(serde::Serialize)]
struct ErrorBody {
    status: &'static str,
    errors: [ErrorDetail; 1],
}

#[derive(serde::Serialize)]
struct ErrorDetail {
    location: &'static str,
    name: String,
    description: String,
}
