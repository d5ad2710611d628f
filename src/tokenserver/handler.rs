//! `GET /1.0/{application}/{version}`: parses the headers of tokenserver-api.md §2 and the URL,
//! sends one `GetToken` to the tokenserver actor and writes the §4 response. Only the
//! `Authorization` verdict is final here (§2.5 step 1); the `X-KeyID` and URL verdicts travel
//! in the message because they may only be reported once the OAuth token verified.

use std::time::{SystemTime, UNIX_EPOCH};

use actix::Addr;
use actix_web::http::header::{HeaderMap, AUTHORIZATION};
use actix_web::web::{Data, Query};
use actix_web::{HttpRequest, HttpResponse};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use weft_actors::tokenserver::{GetToken, KeyId, Tokenserver, TokenserverError};
use weft_actors::ActorUnavailable;

use super::TokenserverHttpError;

/// The client-state column is VARCHAR(32): at most 16 bytes (§2.2 [QUIRK]: REF sets no limit).
const MAX_CLIENT_STATE_BYTES: usize = 16;

pub async fn get_token(
    req: HttpRequest,
    tokenserver: Data<Addr<Tokenserver>>,
) -> Result<HttpResponse, TokenserverHttpError> {
    let headers = req.headers();
    let bearer = bearer_token(headers)?;
    let info = req.match_info();
    let msg = GetToken {
        bearer,
        key_id: key_id(headers),
        service: service(
            info.get("application").unwrap_or_default(),
            info.get("version").unwrap_or_default(),
        ),
        duration: duration(req.query_string()),
    };
    let issued = tokenserver
        .send(msg)
        .await
        .map_err(ActorUnavailable::of("tokenserver"))
        .map_err(TokenserverError::from)??;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    Ok(HttpResponse::Ok()
        .insert_header(("X-Timestamp", now.to_string()))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .json(issued))
}

/// §2.1: `<scheme> <token>`, split at the first space; the token is passed on verbatim.
pub fn bearer_token(headers: &HeaderMap) -> Result<String, TokenserverError> {
    let value = headers.get(AUTHORIZATION).ok_or(TokenserverError::Unauthorized)?;
    let value = value.to_str().map_err(|_| TokenserverError::Unauthorized)?;
    let (scheme, token) = value.split_once(' ').ok_or(TokenserverError::Unauthorized)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(TokenserverError::UnsupportedScheme);
    }
    Ok(token.to_string())
}

/// §2.2 and §2.3, checks in the order of the §2.2 table.
pub fn key_id(headers: &HeaderMap) -> Result<KeyId, TokenserverError> {
    let malformed = || TokenserverError::InvalidCredentials("malformed X-KeyID".into());
    let value = headers.get("X-KeyID").ok_or(TokenserverError::MissingKeyId)?;
    let value = value.to_str().map_err(|_| TokenserverError::InvalidKeyIdHeader)?;
    let (keys_changed_at, client_state) = value.split_once('-').ok_or_else(malformed)?;
    let bytes = URL_SAFE_NO_PAD.decode(client_state).map_err(|_| malformed())?;
    if bytes.len() > MAX_CLIENT_STATE_BYTES {
        return Err(malformed());
    }
    let client_state: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    if let Some(cross_check) = headers.get("X-Client-State") {
        let cross_check = cross_check.to_str().map_err(|_| TokenserverError::InvalidClientStateHeader)?;
        let valid = (1..=32).contains(&cross_check.len())
            && cross_check.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !valid {
            return Err(TokenserverError::InvalidClientStateHeader);
        }
        if cross_check != client_state {
            return Err(TokenserverError::ClientStateMismatch);
        }
    }
    let keys_changed_at: i64 = keys_changed_at.parse().map_err(|_| malformed())?;
    Ok(KeyId { keys_changed_at: (keys_changed_at != 0).then_some(keys_changed_at), client_state })
}

/// §1: only `sync` / `1.5`.
fn service(application: &str, version: &str) -> Result<(), TokenserverError> {
    if application != "sync" {
        return Err(TokenserverError::UnsupportedApplication);
    }
    if version != "1.5" {
        return Err(TokenserverError::UnsupportedVersion(version.to_string()));
    }
    Ok(())
}

/// The `duration` parameter when it is an unsigned integer; anything else is ignored (§1).
fn duration(query: &str) -> Option<u64> {
    let params = Query::<Vec<(String, String)>>::from_query(query).ok()?;
    let (_, value) = params.iter().find(|(name, _)| name == "duration")?;
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        map
    }

    #[test]
    fn key_ids() {
        let k = key_id(&headers(&[("X-KeyID", "0000000001234-qqo")])).unwrap();
        assert_eq!(k, KeyId { keys_changed_at: Some(1234), client_state: "aaaa".into() });
        let k = key_id(&headers(&[("X-KeyID", "0-qqo")])).unwrap();
        assert_eq!(k.keys_changed_at, None);
        assert!(matches!(
            key_id(&headers(&[("X-KeyID", "1234")])),
            Err(TokenserverError::InvalidCredentials(_))
        ));
        assert!(matches!(
            key_id(&headers(&[("X-KeyID", "1234-qqo=")])),
            Err(TokenserverError::InvalidCredentials(_))
        ));
        assert!(matches!(
            key_id(&headers(&[("X-KeyID", "x-qqo"), ("X-Client-State", "bbbb")])),
            Err(TokenserverError::ClientStateMismatch)
        ));
        assert!(matches!(
            key_id(&headers(&[("X-KeyID", "x-qqo"), ("X-Client-State", "aaaa")])),
            Err(TokenserverError::InvalidCredentials(_))
        ));
    }

    #[test]
    fn durations() {
        assert_eq!(duration("duration=60"), Some(60));
        assert_eq!(duration("duration=0"), Some(0));
        assert_eq!(duration("duration=-1"), None);
        assert_eq!(duration("duration=abc"), None);
        assert_eq!(duration(""), None);
    }
}
