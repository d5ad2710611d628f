//! `/1.5/{uid}/storage/{collection}/{id}` (storage-api.md §6.11–§6.13): one BSO.

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use weft_actors::shard::{DeleteBso, GetBso, PutBso};

use super::{bso_json, quota_remaining_header, storage_response, APPLICATION_JSON};
use crate::web::error::ApiError;
use crate::web::extract::bso_body::BsoPutBody;
use crate::web::extract::hawk_auth::Authenticated;
use crate::web::extract::path::BsoPath;
use crate::web::extract::precondition::PreconditionHeader;

/// Always JSON: only the collection GET negotiates (§6.7).
pub async fn get(request: Authenticated<(BsoPath, PreconditionHeader)>) -> Result<HttpResponse, ApiError> {
    let Authenticated { user, params: (BsoPath { collection, id }, PreconditionHeader(precondition)) } =
        request;
    let bso = user.send(GetBso { uid: user.uid, collection, id, precondition }).await?;
    Ok(storage_response(StatusCode::OK, bso.modified).content_type(APPLICATION_JSON).body(bso_json(&bso)))
}

/// [REF-CHOICE] §14: the body is the bare new timestamp T.
pub async fn put(
    request: Authenticated<(BsoPath, PreconditionHeader, BsoPutBody)>,
) -> Result<HttpResponse, ApiError> {
    let Authenticated { user, params: (BsoPath { collection, id }, PreconditionHeader(precondition), body) } =
        request;
    let result =
        user.send(PutBso { uid: user.uid, collection, bso: body.into_input(id), precondition }).await?;
    let mut response = storage_response(StatusCode::OK, result.modified);
    quota_remaining_header(&mut response, result.quota_remaining);
    Ok(response.content_type(APPLICATION_JSON).body(result.modified.to_string()))
}

/// `{"modified": T}` as in both references; `X-Last-Modified` is T, not REF's old item
/// timestamp ([QUIRK] §6.13).
pub async fn delete(request: Authenticated<(BsoPath, PreconditionHeader)>) -> Result<HttpResponse, ApiError> {
    let Authenticated { user, params: (BsoPath { collection, id }, PreconditionHeader(precondition)) } =
        request;
    let modified = user.send(DeleteBso { uid: user.uid, collection, id, precondition }).await?;
    Ok(storage_response(StatusCode::OK, modified)
        .content_type(APPLICATION_JSON)
        .body(format!("{{\"modified\":{modified}}}")))
}
