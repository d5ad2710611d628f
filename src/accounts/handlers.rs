//! The accounts handlers: each parses its input (JSON body, query, Hawk header, bearer token),
//! sends one `AccountsRequest` to the accounts actor and writes the JSON it answers. The
//! discovery documents are built here from configuration alone (no message needed).

use actix_web::http::header::{AUTHORIZATION, CONTENT_TYPE};
use actix_web::http::StatusCode;
use actix_web::web::{Bytes, Data, Query};
use actix_web::{HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};
use weft_actors::accounts::{
    email, AccountError, AccountsRequest, Credentials, HawkRequest, Op, MAX_HAWK_HEADER_BYTES,
};
use weft_actors::token_verifier::hawk::{parse_header, payload_hash};

use super::client_address::client_address;
use super::error::AccountsHttpError;
use super::{json_response, AccountsState};

pub(super) type Reply = Result<HttpResponse, AccountsHttpError>;

/// Request bodies of these routes are small JSON objects; anything bigger is refused.
const MAX_BODY_BYTES: usize = 64 * 1024;

fn ok(body: Value) -> HttpResponse {
    json_response(StatusCode::OK).json(body)
}

fn bad(what: &str) -> AccountsHttpError {
    AccountError::InvalidParameter(what.into()).into()
}

/// The body as a JSON object (an empty body is `{}`).
pub(super) fn json_body(body: &Bytes) -> Result<Value, AccountsHttpError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(bad("body too large"));
    }
    if body.is_empty() {
        return Ok(json!({}));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => Err(bad("body is not a JSON object")),
    }
}

pub(super) fn member(body: &Value, name: &str) -> Result<String, AccountsHttpError> {
    body.get(name).and_then(Value::as_str).map(str::to_owned).ok_or_else(|| bad(name))
}

/// The `email` member in its one form (`email::normalize`): the only place emails enter.
pub(super) fn email_member(body: &Value) -> Result<String, AccountsHttpError> {
    Ok(email::normalize(&member(body, "email")?)?)
}

/// Hawk credentials from the `Authorization` header, when it is a Hawk one; `None` otherwise.
fn hawk(
    req: &HttpRequest,
    state: &AccountsState,
    body: &[u8],
) -> Result<Option<HawkRequest>, AccountsHttpError> {
    let Some(value) = req.headers().get(AUTHORIZATION) else { return Ok(None) };
    if value.len() > MAX_HAWK_HEADER_BYTES {
        return Err(AccountError::InvalidSignature("header too long").into());
    }
    let value = value.to_str().map_err(|_| AccountError::InvalidSignature("header"))?;
    if !value.starts_with("Hawk ") {
        return Ok(None);
    }
    let header = parse_header(value).map_err(|_| AccountError::InvalidSignature("header"))?;
    let content_type = req.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let hawk = HawkRequest {
        header,
        method: req.method().as_str().to_string(),
        request_target: req
            .uri()
            .path_and_query()
            .map_or_else(|| req.uri().path().to_owned(), |pq| pq.as_str().to_owned()),
        host: state.hawk_host.clone(),
        port: state.hawk_port,
        body_hash: payload_hash(content_type, body),
        has_body: !body.is_empty(),
    };
    hawk.well_formed()?;
    Ok(Some(hawk))
}

fn bearer(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.to_string())
}

pub(super) async fn send(
    req: &HttpRequest,
    state: &AccountsState,
    credentials: Credentials,
    op: Op,
) -> Reply {
    let msg = AccountsRequest::new(client_address(req, &state.trust_proxy_headers), credentials, op);
    Ok(ok(state.actor.request(msg).await?))
}

/// A Hawk-signed request with a JSON body (or none).
pub(super) async fn hawked(
    req: HttpRequest,
    state: Data<AccountsState>,
    body: Bytes,
    op: impl FnOnce(Value) -> Result<Op, AccountsHttpError>,
) -> Reply {
    let json = json_body(&body)?;
    let credentials = match hawk(&req, &state, &body)? {
        Some(h) => Credentials::Hawk(Box::new(h)),
        None => return Err(AccountError::InvalidToken("no Hawk credentials").into()),
    };
    let op = op(json)?;
    send(&req, &state, credentials, op).await
}

pub async fn client_configuration(state: Data<AccountsState>) -> HttpResponse {
    let origin = &state.origin;
    ok(json!({
        "auth_server_base_url": origin,
        "oauth_server_base_url": format!("{origin}/oauth"),
        "pairing_server_base_uri": "",
        "profile_server_base_url": format!("{origin}/profile"),
        "sync_tokenserver_base_url": origin,
    }))
}

pub async fn openid_configuration(state: Data<AccountsState>) -> HttpResponse {
    let origin = &state.origin;
    ok(json!({
        "issuer": origin,
        "authorization_endpoint": format!("{origin}/"),
        "token_endpoint": format!("{origin}/v1/oauth/token"),
        "userinfo_endpoint": format!("{origin}/profile/v1/profile"),
        "jwks_uri": format!("{origin}/v1/jwks"),
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["profile", weft_actors::accounts::OLDSYNC_SCOPE],
    }))
}

pub async fn jwks(state: Data<AccountsState>) -> HttpResponse {
    ok(state.jwks.clone())
}

#[derive(Deserialize)]
pub struct KeysQuery {
    pub keys: Option<String>,
}

pub(super) fn wants_keys(query: &KeysQuery) -> bool {
    query.keys.as_deref() == Some("true")
}

pub async fn create(
    req: HttpRequest,
    state: Data<AccountsState>,
    query: Query<KeysQuery>,
    body: Bytes,
) -> Reply {
    let json = json_body(&body)?;
    let op = Op::Create {
        email: email_member(&json)?,
        auth_pw: member(&json, "authPW")?,
        invite: member(&json, "invite").map_err(|_| AccountError::InvalidInvite)?,
        client_salt: member(&json, "clientSalt").ok(),
        keys: wants_keys(&query),
    };
    send(&req, &state, Credentials::None, op).await
}

pub async fn login(
    req: HttpRequest,
    state: Data<AccountsState>,
    query: Query<KeysQuery>,
    body: Bytes,
) -> Reply {
    let json = json_body(&body)?;
    let op = Op::Login {
        email: email_member(&json)?,
        auth_pw: member(&json, "authPW")?,
        keys: wants_keys(&query),
    };
    send(&req, &state, Credentials::None, op).await
}

/// Which quick stretch the page must use for this account (FxA's v2 credentials status).
pub async fn credentials_status(req: HttpRequest, state: Data<AccountsState>, body: Bytes) -> Reply {
    let json = json_body(&body)?;
    send(&req, &state, Credentials::None, Op::CredentialsStatus { email: email_member(&json)? }).await
}

pub async fn reset(req: HttpRequest, state: Data<AccountsState>, body: Bytes) -> Reply {
    let json = json_body(&body)?;
    let op = Op::Reset {
        email: email_member(&json)?,
        auth_pw: member(&json, "authPW")?,
        invite: member(&json, "code").map_err(|_| AccountError::InvalidInvite)?,
        client_salt: member(&json, "clientSalt").ok(),
    };
    send(&req, &state, Credentials::None, op).await
}

pub async fn keys(req: HttpRequest, state: Data<AccountsState>, body: Bytes) -> Reply {
    hawked(req, state, body, |_| Ok(Op::Keys)).await
}

pub async fn scoped_key_data(req: HttpRequest, state: Data<AccountsState>, body: Bytes) -> Reply {
    hawked(req, state, body, |json| {
        Ok(Op::ScopedKeyData { client_id: member(&json, "client_id")?, scope: member(&json, "scope")? })
    })
    .await
}

#[derive(Deserialize)]
pub struct UidQuery {
    uid: String,
}

pub async fn account_status(req: HttpRequest, state: Data<AccountsState>, query: Query<UidQuery>) -> Reply {
    let uid = query.into_inner().uid;
    if uid.len() != 32 || !uid.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad("uid"));
    }
    send(&req, &state, Credentials::None, Op::AccountStatus { uid: uid.to_ascii_lowercase() }).await
}

pub async fn device(req: HttpRequest, state: Data<AccountsState>, body: Bytes) -> Reply {
    hawked(req, state, body, |json| Ok(Op::Device(json))).await
}

pub async fn devices(req: HttpRequest, state: Data<AccountsState>, body: Bytes) -> Reply {
    hawked(req, state, body, |_| Ok(Op::Devices)).await
}

pub async fn attached_clients(req: HttpRequest, state: Data<AccountsState>, body: Bytes) -> Reply {
    hawked(req, state, body, |_| Ok(Op::AttachedClients)).await
}

/// Push notifications to other devices: Weft has no push service; the body is checked.
pub async fn notify(req: HttpRequest, state: Data<AccountsState>, body: Bytes) -> Reply {
    hawked(req, state, body, |json| Ok(Op::Notify(json))).await
}

/// FxA's query of `GET /v1/account/device/commands`: both optional.
#[derive(Deserialize)]
pub struct CommandsQuery {
    index: Option<i64>,
    limit: Option<i64>,
}

/// The calling device's pending commands (Send Tab's receiving side).
pub async fn device_commands(
    req: HttpRequest,
    state: Data<AccountsState>,
    query: Query<CommandsQuery>,
    body: Bytes,
) -> Reply {
    let CommandsQuery { index, limit } = query.into_inner();
    if index.is_some_and(|i| i < 0) || limit.is_some_and(|l| !(0..=100).contains(&l)) {
        return Err(bad("index or limit"));
    }
    let op = Op::DeviceCommands { index: index.unwrap_or(0), limit: limit.unwrap_or(100) };
    hawked(req, state, body, |_| Ok(op)).await
}

/// A command for another device of the account (Send Tab's sending side).
pub async fn invoke_command(req: HttpRequest, state: Data<AccountsState>, body: Bytes) -> Reply {
    hawked(req, state, body, |json| Ok(Op::InvokeCommand(json))).await
}

pub async fn session_status(req: HttpRequest, state: Data<AccountsState>, body: Bytes) -> Reply {
    hawked(req, state, body, |_| Ok(Op::SessionStatus)).await
}

pub async fn session_destroy(req: HttpRequest, state: Data<AccountsState>, body: Bytes) -> Reply {
    hawked(req, state, body, |_| Ok(Op::SessionDestroy)).await
}

pub async fn email_status(req: HttpRequest, state: Data<AccountsState>, body: Bytes) -> Reply {
    hawked(req, state, body, |_| Ok(Op::EmailStatus)).await
}

pub async fn authorization(req: HttpRequest, state: Data<AccountsState>, body: Bytes) -> Reply {
    hawked(req, state, body, |json| Ok(Op::Authorization(json))).await
}

/// Hawk is optional here: the authorization-code grant is also valid without a session.
pub async fn token(req: HttpRequest, state: Data<AccountsState>, body: Bytes) -> Reply {
    let json = json_body(&body)?;
    let credentials =
        hawk(&req, &state, &body)?.map_or(Credentials::None, |h| Credentials::Hawk(Box::new(h)));
    send(&req, &state, credentials, Op::Token(json)).await
}

pub async fn destroy(req: HttpRequest, state: Data<AccountsState>, body: Bytes) -> Reply {
    let json = json_body(&body)?;
    send(&req, &state, Credentials::None, Op::Destroy(json)).await
}

pub async fn profile(req: HttpRequest, state: Data<AccountsState>) -> Reply {
    let token = bearer(&req).ok_or(AccountError::InvalidToken("no bearer token"))?;
    send(&req, &state, Credentials::Bearer(token), Op::Profile).await
}
