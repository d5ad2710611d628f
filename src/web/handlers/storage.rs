//! `DELETE /1.5/{uid}` and `DELETE /1.5/{uid}/storage` (storage-api.md §6.6): all of the user's
//! data.

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use weft_actors::shard::DeleteStorage;

use super::{storage_response, APPLICATION_JSON};
use crate::web::error::ApiError;
use crate::web::extract::hawk_auth::Authenticated;
use crate::web::extract::precondition::PreconditionHeader;

/// [REF-CHOICE] §6.6: the body is the JSON literal `null` as in REF (PY: `{}`); clients ignore it.
pub async fn delete(request: Authenticated<PreconditionHeader>) -> Result<HttpResponse, ApiError> {
    let Authenticated { user, params: PreconditionHeader(precondition) } = request;
    let last_modified = user.send(DeleteStorage { uid: user.uid, precondition }).await?;
    Ok(storage_response(StatusCode::OK, last_modified).content_type(APPLICATION_JSON).body("null"))
}
