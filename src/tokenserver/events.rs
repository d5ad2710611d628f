//! `POST /1.0/webhooks/fxa/events` (tokenserver-api.md §10.8): FxA's account events. Parses the
//! bearer token (a Security Event Token), sends one `ApplyAccountEvents` to the tokenserver
//! actor, which verifies it and retires the account or raises its generation, and answers 200
//! with an empty body; errors are the tokenserver's §11 bodies (401 `invalid-credentials` for
//! a token that does not verify).

use actix::Addr;
use actix_web::web::Data;
use actix_web::{HttpRequest, HttpResponse};
use weft_actors::tokenserver::{ApplyAccountEvents, Tokenserver, TokenserverError};
use weft_actors::ActorUnavailable;

use super::handler::bearer_token;
use super::TokenserverHttpError;

pub async fn post_events(
    req: HttpRequest,
    tokenserver: Data<Addr<Tokenserver>>,
) -> Result<HttpResponse, TokenserverHttpError> {
    let bearer = bearer_token(req.headers())?;
    tokenserver
        .send(ApplyAccountEvents { bearer })
        .await
        .map_err(ActorUnavailable::of("tokenserver"))
        .map_err(TokenserverError::from)??;
    Ok(HttpResponse::Ok().finish())
}
