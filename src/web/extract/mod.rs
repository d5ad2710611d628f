//! Extractors: one per kind of request input (path segments, query parameters, headers, body),
//! each turning raw request text into protocol values or an `ApiError`. Parsing rules live in
//! pure functions next to each extractor, with their unit tests.

pub mod accept;
pub mod batch_params;
pub mod bso_body;
pub mod collection_query;
pub mod content_type;
pub mod hawk_auth;
pub mod path;
pub mod precondition;
pub mod query;
pub mod request_body;

use actix_web::{web, HttpRequest};

use super::AppState;
use crate::web::error::ApiError;

/// The application state; every extractor that needs settings, nodes or the verifier uses it.
fn app_state(req: &HttpRequest) -> Result<&web::Data<AppState>, ApiError> {
    req.app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::Internal("AppState is not registered".into()))
}

/// The BSO id rule (storage-api.md §3.1): 1–64 characters, each printable ASCII (U+0020–U+007E).
/// Checked on characters, not with an anchored regex, so `"A\n"` cannot slip through (§13.7).
pub fn is_valid_bso_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| (b' '..=b'~').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bso_id_rule() {
        for ok in ["a", "a b", "-F_Szdjg3GzX", "{x}", "~", &"x".repeat(64), "a/b", " "] {
            assert!(is_valid_bso_id(ok), "{ok:?} should be valid");
        }
        for bad in ["", "A\n", "a\tb", "é", &"x".repeat(65), "\u{7f}"] {
            assert!(!is_valid_bso_id(bad), "{bad:?} should be invalid");
        }
    }
}
