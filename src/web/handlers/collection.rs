//! `/1.5/{uid}/storage/{collection}` (storage-api.md §6.7–§6.10): read a page of the
//! collection, write a list of BSOs (optionally through a batch), delete it or some of its ids.

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use serde_json::{Map, Value};
use weft_actors::shard::{Bso, DeleteCollection, GetBsos, PostBsos, PostOutcome};

use super::{
    json_string, push_bso_json, push_json_string, quota_remaining_header, storage_response, APPLICATION_JSON,
    X_WEAVE_NEXT_OFFSET, X_WEAVE_RECORDS,
};
use crate::error::ApiError;
use crate::web::extract::accept::OutputFormat;
use crate::web::extract::batch_params::BatchParams;
use crate::web::extract::bso_body::BsoPostBody;
use crate::web::extract::collection_query::{CollectionQuery, DeleteIds};
use crate::web::extract::hawk_auth::Authenticated;
use crate::web::extract::path::CollectionPath;
use crate::web::extract::precondition::PreconditionHeader;
use crate::web::wire::{encode_batch_id, encode_offset};

const APPLICATION_NEWLINES: &str = "application/newlines";

/// Ids, or full BSOs with `full`, as a JSON array or one JSON text per line. A collection that
/// does not exist is an empty page (200 `[]`), decided by the shard.
pub async fn get(
    request: Authenticated<(CollectionPath, CollectionQuery, OutputFormat, PreconditionHeader)>,
) -> Result<HttpResponse, ApiError> {
    let Authenticated {
        user,
        params: (CollectionPath(collection), CollectionQuery(query), format, PreconditionHeader(precondition)),
    } = request;
    let full = query.full;
    let reply = user.send(GetBsos { uid: user.uid, collection, query, precondition }).await?;
    let page = reply.value;
    // One buffer for the whole body: a page of full BSOs runs to megabytes.
    let size: usize =
        page.items.iter().map(|bso| bso.id.len() + if full { bso.payload.len() + 64 } else { 4 }).sum();
    let mut body = Vec::with_capacity(size + 2);
    let item = |body: &mut Vec<u8>, bso: &Bso| {
        if full {
            push_bso_json(body, bso);
        } else {
            push_json_string(body, &bso.id);
        }
    };
    let content_type = match format {
        OutputFormat::Json => {
            body.push(b'[');
            for (i, bso) in page.items.iter().enumerate() {
                if i > 0 {
                    body.push(b',');
                }
                item(&mut body, bso);
            }
            body.push(b']');
            APPLICATION_JSON
        }
        // Serialized JSON never holds a raw newline, so REF's `\n` → `\u000a` replacement is
        // already true of every line.
        OutputFormat::Newlines => {
            for bso in &page.items {
                item(&mut body, bso);
                body.push(b'\n');
            }
            APPLICATION_NEWLINES
        }
    };
    let mut response = storage_response(StatusCode::OK, reply.last_modified);
    response.insert_header((X_WEAVE_RECORDS, page.items.len()));
    if let Some(offset) = page.next_offset {
        response.insert_header((X_WEAVE_NEXT_OFFSET, encode_offset(offset)));
    }
    Ok(response.content_type(content_type).body(body))
}

/// 200 `{"modified":T,"success":[…],"failed":{…}}` when written, 202
/// `{"batch":"<id>","success":[…],"failed":{…}}` when staged. `success` lists the ids handed
/// to the shard, in body order; `failed` the ones the body validation refused.
pub async fn post(
    request: Authenticated<(CollectionPath, BatchParams, PreconditionHeader, BsoPostBody)>,
) -> Result<HttpResponse, ApiError> {
    let Authenticated {
        user,
        params: (CollectionPath(collection), batch, PreconditionHeader(precondition), body),
    } = request;
    let success: Vec<String> = body.bsos.iter().map(|bso| bso.id.clone()).collect();
    let result = user
        .send(PostBsos {
            uid: user.uid,
            collection,
            bsos: body.bsos,
            batch: batch.batch,
            commit: batch.commit,
            precondition,
        })
        .await?;
    let failed: Map<String, Value> =
        body.failed.into_iter().map(|(id, reason)| (id, Value::from(reason))).collect();
    let (status, last_modified, first_member) = match result.outcome {
        PostOutcome::Committed { modified } => (StatusCode::OK, modified, format!("\"modified\":{modified}")),
        // §6.9: staging leaves the collection untouched; X-Last-Modified is its current value.
        PostOutcome::Staged { batch, last_modified } => (
            StatusCode::ACCEPTED,
            last_modified,
            format!("\"batch\":{}", json_string(&encode_batch_id(batch))),
        ),
    };
    let mut response = storage_response(status, last_modified);
    quota_remaining_header(&mut response, result.quota_remaining);
    Ok(response.content_type(APPLICATION_JSON).body(format!(
        "{{{first_member},\"success\":{},\"failed\":{}}}",
        Value::from(success),
        Value::Object(failed)
    )))
}

/// [REF-CHOICE] §6.10/§14: the body is the bare new timestamp, as current production sends it
/// (PY: `{"modified": T}`). `X-Last-Modified` is that same new timestamp (§14), not REF's
/// pre-delete value.
pub async fn delete(
    request: Authenticated<(CollectionPath, DeleteIds, PreconditionHeader)>,
) -> Result<HttpResponse, ApiError> {
    let Authenticated {
        user,
        params: (CollectionPath(collection), DeleteIds(ids), PreconditionHeader(precondition)),
    } = request;
    let modified = user.send(DeleteCollection { uid: user.uid, collection, ids, precondition }).await?;
    Ok(storage_response(StatusCode::OK, modified).content_type(APPLICATION_JSON).body(modified.to_string()))
}
