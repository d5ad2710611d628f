//! The routes behind the account page (issue 21), with FxA's paths, shapes and errnos: sign a
//! device out, change the password (start, then finish signed with the passwordChangeToken;
//! the key fetch in between is `GET /v1/account/keys`), delete the account. Same parsing, Hawk
//! and limits as every other account route (`handlers`); the rules live in the actor.

use actix_web::web::{Bytes, Data, Query};
use actix_web::HttpRequest;
use weft_actors::accounts::{Credentials, NewCredentials, Op};

use super::handlers::{email_member, hawked, json_body, member, send, wants_keys, KeysQuery, Reply};
use super::AccountsState;

/// `POST /v1/account/device/destroy {id}` (Hawk session).
pub async fn device_destroy(req: HttpRequest, state: Data<AccountsState>, body: Bytes) -> Reply {
    hawked(req, state, body, |json| Ok(Op::DeviceDestroy(json))).await
}

/// `POST /v1/password/change/start {email, oldAuthPW}` → `{keyFetchToken, passwordChangeToken}`.
pub async fn password_change_start(req: HttpRequest, state: Data<AccountsState>, body: Bytes) -> Reply {
    let json = json_body(&body)?;
    let op =
        Op::PasswordChangeStart { email: email_member(&json)?, old_auth_pw: member(&json, "oldAuthPW")? };
    send(&req, &state, Credentials::None, op).await
}

/// `POST /v1/password/change/finish[?keys=true] {authPW, wrapKb, clientSalt?}` (Hawk with the
/// passwordChangeToken) → a new session, as a sign-in answers.
pub async fn password_change_finish(
    req: HttpRequest,
    state: Data<AccountsState>,
    query: Query<KeysQuery>,
    body: Bytes,
) -> Reply {
    let keys = wants_keys(&query);
    hawked(req, state, body, move |json| {
        let new = NewCredentials {
            auth_pw: member(&json, "authPW")?,
            wrap_kb: member(&json, "wrapKb")?,
            client_salt: member(&json, "clientSalt").ok(),
        };
        Ok(Op::PasswordChangeFinish { new, keys })
    })
    .await
}

/// `POST /v1/account/destroy {email, authPW}`: the password is the credential (FxA's session
/// is optional here and adds nothing once the password verified).
pub async fn account_destroy(req: HttpRequest, state: Data<AccountsState>, body: Bytes) -> Reply {
    let json = json_body(&body)?;
    let op = Op::AccountDestroy { email: email_member(&json)?, auth_pw: member(&json, "authPW")? };
    send(&req, &state, Credentials::None, op).await
}
