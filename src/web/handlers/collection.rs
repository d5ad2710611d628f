//! `/1.5/{uid}/storage/{collection}` (storage-api.md §6.7–§6.10): read a page of the
//! collection, write a list of BSOs (optionally through a batch), delete it or some of its ids.

use std::borrow::Cow;
use std::convert::Infallible;

use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::HttpResponse;
use serde_json::Value;
use weft_actors::shard::{Bso, DeleteCollection, GetBsos, PostBsos, PostOutcome};

use super::{
    json_string, push_bso_json, push_json_string, quota_remaining_header, storage_response, APPLICATION_JSON,
    X_WEAVE_NEXT_OFFSET, X_WEAVE_RECORDS,
};
use crate::web::error::ApiError;
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
    let mut response = storage_response(StatusCode::OK, reply.last_modified);
    response.insert_header((X_WEAVE_RECORDS, page.items.len()));
    if let Some(offset) = page.next_offset {
        response.insert_header((X_WEAVE_NEXT_OFFSET, encode_offset(offset)));
    }
    response.content_type(match format {
        OutputFormat::Json => APPLICATION_JSON,
        OutputFormat::Newlines => APPLICATION_NEWLINES,
    });
    let mut chunks = PageChunks { items: page.items.into_iter(), full, format, started: false, done: false };
    // A page that fits one chunk (the usual `limit=100` page) goes out as one sized body: a
    // streamed body is sent chunked, in several writes, and costs every small read a round
    // trip of latency. Larger pages stream, so they are never held twice as text.
    let first = chunks.next().unwrap_or_default();
    if chunks.done {
        return Ok(response.body(first));
    }
    let rest = std::iter::once(first).chain(chunks);
    Ok(response.streaming(futures_util::stream::iter(rest.map(Ok::<_, Infallible>))))
}

/// Rough size of one response chunk: large enough that a page costs few writes.
const PAGE_CHUNK_BYTES: usize = 64 * 1024;

/// A page's body, rendered as it is sent: ids or full BSOs as a JSON list, or one JSON text per
/// line. Each record is rendered and freed as the writer reaches it, so a page of up to
/// `max_total_records` records is never held a second time as text.
struct PageChunks {
    items: std::vec::IntoIter<Bso>,
    full: bool,
    format: OutputFormat,
    started: bool,
    done: bool,
}

impl Iterator for PageChunks {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        if self.done {
            return None;
        }
        let json = self.format == OutputFormat::Json;
        let mut chunk = Vec::with_capacity(PAGE_CHUNK_BYTES + 4096);
        if !self.started && json {
            chunk.push(b'[');
        }
        while chunk.len() < PAGE_CHUNK_BYTES {
            let Some(bso) = self.items.next() else {
                if json {
                    chunk.push(b']');
                }
                self.done = true;
                break;
            };
            if self.started && json {
                chunk.push(b',');
            }
            self.started = true;
            if self.full {
                push_bso_json(&mut chunk, &bso);
            } else {
                push_json_string(&mut chunk, &bso.id);
            }
            // Serialized JSON never holds a raw newline, so REF's `\n` → `\u000a` replacement is
            // already true of every line.
            if !json {
                chunk.push(b'\n');
            }
        }
        Some(Bytes::from(chunk))
    }
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
    let failed = failed_json(body.failed);
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
        failed
    )))
}

/// `{"id":"reason",…}` in id order, as a JSON map would write it, written straight from the
/// list: a POST of many tiny refused items is not copied once more into a map.
fn failed_json(mut failed: Vec<(String, Cow<'static, str>)>) -> String {
    failed.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let mut json = String::from("{");
    for (i, (id, reason)) in failed.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        json.push_str(&json_string(id));
        json.push(':');
        json.push_str(&json_string(reason));
    }
    json.push('}');
    json
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
