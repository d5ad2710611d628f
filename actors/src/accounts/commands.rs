//! FxA's device-command protocol (issue 25; Send Tab is the command
//! `https://identity.mozilla.com/cmd/open-uri`): a device leaves an encrypted message for
//! another device of the same account (`invoke_command`), which fetches it when it polls
//! (`device/commands`). Weft stores the payload as the sender encrypted it for the target and
//! never reads it. The target learns of it from a push to its `pushCallback` when it has one
//! (`push`, offered after the transaction commits), else at its next poll (docs/accounts.md,
//! "Send Tab"). Also `devices/notify`, FxA's push of a device's payload to the others.

use serde_json::{json, Value};
use weft_schema::models::accounts::{AccountRow, TokenRow};
use weft_schema::models::device_commands::DeviceCommandRow;
use weft_schema::pool::Tx;
use weft_schema::queries::accounts as q;
use weft_schema::queries::device_commands as commands;

use super::error::AccountError;
use super::push::{ExpiredEndpoint, Push, MAX_PAYLOAD_BYTES as MAX_PUSH_BYTES};
use super::shared::Shared;

/// The encrypted payload of one command, as JSON text. Send Tab's is a JWE of the tab's title
/// and URL, about 1 KiB for an ordinary page; 32 KiB leaves room for very long URLs.
pub const MAX_PAYLOAD_BYTES: usize = 32 * 1024;
/// FxA's pushbox keeps a command 28 days at most (`pushbox.maxTTL`, as we read it); a command
/// without `ttl` (Firefox sends none) gets that.
pub const MAX_TTL_SECONDS: i64 = 28 * 24 * 3600;
/// Commands one account may send per rate-limit window (`accounts.rate_limit_window_seconds`):
/// a person sending tabs; a client over it gets 429 errno 114 like every other limit.
pub const COMMANDS_PER_ACCOUNT: u32 = 100;
/// Commands waiting for one device at most: bounds what a device that never polls again costs
/// (with the payload bound, 16 MiB).
pub const MAX_PENDING_PER_DEVICE: i64 = 500;
/// FxA's `limit` of `GET /v1/account/device/commands`: at most and by default 100.
pub const MAX_FETCH_LIMIT: i64 = 100;

/// FxA's command names are URLs of at most 255 characters (the column's width).
const MAX_COMMAND_BYTES: usize = 255;

/// What a command or notify answers, and the pushes to offer once its transaction committed.
pub(super) struct Delivery {
    pub answer: Value,
    pub pushes: Vec<Push>,
}

/// `POST /v1/account/devices/invoke_command {target, command, payload, ttl?}`. The answer's
/// `notified` is set by the caller: whether the push was queued.
pub(super) fn invoke(
    shared: &Shared,
    tx: &mut Tx<'_>,
    session: &TokenRow,
    account: &AccountRow,
    body: &Value,
    now: i64,
) -> Result<Delivery, AccountError> {
    let member = |name: &str| body.get(name).ok_or_else(|| AccountError::InvalidParameter(name.into()));
    let target = member("target")?.as_str().ok_or_else(|| AccountError::InvalidParameter("target".into()))?;
    let command =
        member("command")?.as_str().ok_or_else(|| AccountError::InvalidParameter("command".into()))?;
    let payload = member("payload")?;
    if !payload.is_object() {
        return Err(AccountError::InvalidParameter("payload".into()));
    }
    let payload = payload.to_string();
    if payload.len() > MAX_PAYLOAD_BYTES || command.len() > MAX_COMMAND_BYTES {
        return Err(AccountError::InvalidParameter("payload".into()));
    }
    let ttl = match body.get("ttl") {
        None | Some(Value::Null) => MAX_TTL_SECONDS,
        Some(ttl) => {
            ttl.as_i64().filter(|t| *t >= 0).ok_or_else(|| AccountError::InvalidParameter("ttl".into()))?
        }
    };
    // Only a device of the caller's own account: another account's device id is unknown here.
    commands::lock_device(tx, &account.uid, target)?;
    let device = q::device(tx, &account.uid, target)?.ok_or(AccountError::UnknownDevice)?;
    let registered = serde_json::from_str::<Value>(&device.details)
        .ok()
        .and_then(|d| d.get("availableCommands").and_then(|c| c.get(command)).map(|_| ()));
    if registered.is_none() {
        return Err(AccountError::UnavailableDeviceCommand);
    }
    shared
        .commands_per_account
        .check(&account.uid)
        .map_err(|retry_after| AccountError::TooManyRequests { retry_after })?;
    commands::delete_expired(tx, &device.id, now)?;
    if commands::pending(tx, &device.id, now)? >= MAX_PENDING_PER_DEVICE {
        return Err(AccountError::TooManyRequests { retry_after: shared.config.retry_after_seconds });
    }
    // The index starts from the clock (ms), so it never goes back even once every earlier
    // command has expired and been deleted: Firefox asks for indexes above the last it handled.
    let idx = (commands::last_index(tx, &device.id)? + 1).max(now);
    let sender = q::device_of_session(tx, &session.token_id)?.map(|d| d.id).unwrap_or_default();
    let ttl = ttl.min(MAX_TTL_SECONDS);
    let push = Push::to_device(
        &account.uid,
        &device.id,
        &serde_json::from_str(&device.details).unwrap_or(Value::Null),
        &command_received(&shared.config.public_url, command, idx, &sender),
        u64::try_from(ttl).unwrap_or(0),
    );
    commands::insert(
        tx,
        &DeviceCommandRow {
            device_id: device.id,
            idx,
            uid: account.uid.clone(),
            command: command.to_string(),
            payload,
            sender,
            created_at: now,
            expires_at: now.saturating_add(ttl.saturating_mul(1000)),
        },
    )?;
    Ok(Delivery {
        answer: json!({ "enqueued": true, "notified": false }),
        pushes: push.into_iter().collect(),
    })
}

/// FxA's push for a stored command (fxa-auth-server `lib/push.js`, `notifyCommandReceived`;
/// the URL as its `invoke_command` route builds it, `v1/account/device/commands` on its public
/// URL with `index` and `limit=1`): Firefox's `FxAccountsPush` reads `command` and hands
/// `data.index` to `pollDeviceCommands`, which fetches from that index.
fn command_received(public_url: &str, command: &str, index: i64, sender: &str) -> Value {
    let url =
        format!("{}/v1/account/device/commands?index={index}&limit=1", public_url.trim_end_matches('/'));
    json!({
        "version": 1,
        "command": "fxaccounts:command_received",
        "data": { "command": command, "index": index, "sender": sender, "url": url },
    })
}

/// `GET /v1/account/device/commands?index=&limit=`: the calling device's unexpired commands
/// from `index` on (FxA includes `index` itself; Firefox asks for its last handled index + 1).
pub(super) fn fetch(
    tx: &mut Tx<'_>,
    session: &TokenRow,
    index: i64,
    limit: i64,
    now: i64,
) -> Result<Value, AccountError> {
    let device = q::device_of_session(tx, &session.token_id)?.ok_or(AccountError::UnknownDevice)?;
    let limit = limit.clamp(0, MAX_FETCH_LIMIT);
    // One more than asked tells whether this page is the last.
    let mut rows = commands::from_index(tx, &device.id, index.max(0), limit + 1, now)?;
    let last = rows.len() as i64 <= limit;
    rows.truncate(usize::try_from(limit).unwrap_or(0));
    let messages: Vec<Value> = rows
        .iter()
        .map(|row| {
            let payload: Value = serde_json::from_str(&row.payload).unwrap_or(Value::Null);
            let mut data = json!({ "command": row.command, "payload": payload });
            if !row.sender.is_empty() {
                data["sender"] = json!(row.sender);
            }
            json!({ "index": row.idx, "data": data })
        })
        .collect();
    let index = rows.last().map_or_else(|| commands::last_index(tx, &device.id), |row| Ok(row.idx))?;
    Ok(json!({ "index": index, "last": last, "messages": messages }))
}

/// `POST /v1/account/devices/notify {to, excluded?, payload, TTL?}` (Firefox sends it after a
/// sync that changed something, `sync:collection_changed`): as FxA's route, `payload` is pushed
/// to the account's devices named in `to`, or to all but `excluded`, with `TTL` (FxA's
/// default 0: deliver now or never), and the answer is `{}` whatever the pushes become.
/// Devices without a subscription, or of another account, are skipped.
pub(super) fn notify(tx: &mut Tx<'_>, account: &AccountRow, body: &Value) -> Result<Delivery, AccountError> {
    let ids = |member: &str| -> Result<Option<Vec<&str>>, AccountError> {
        match body.get(member) {
            None | Some(Value::Null) if member == "excluded" => Ok(None),
            Some(Value::Array(ids)) => ids
                .iter()
                .map(|id| id.as_str().ok_or_else(|| AccountError::InvalidParameter(member.into())))
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(Value::String(all)) if member == "to" && all == "all" => Ok(None),
            _ => Err(AccountError::InvalidParameter(member.into())),
        }
    };
    let (to, excluded) = (ids("to")?, ids("excluded")?.unwrap_or_default());
    let ttl = match body.get("TTL") {
        None | Some(Value::Null) => 0,
        Some(ttl) => ttl
            .as_u64()
            .filter(|t| i64::try_from(*t).is_ok_and(|t| t <= MAX_TTL_SECONDS))
            .ok_or_else(|| AccountError::InvalidParameter("TTL".into()))?,
    };
    let payload = match body.get("payload") {
        None => return Ok(Delivery { answer: json!({}), pushes: Vec::new() }),
        Some(payload) if payload.is_object() && payload.to_string().len() <= MAX_PUSH_BYTES => payload,
        Some(_) => return Err(AccountError::InvalidParameter("payload".into())),
    };
    let pushes = q::devices(tx, &account.uid)?
        .iter()
        .filter(|d| to.as_ref().map_or(!excluded.contains(&d.id.as_str()), |to| to.contains(&d.id.as_str())))
        .filter_map(|d| {
            let details = serde_json::from_str(&d.details).unwrap_or(Value::Null);
            Push::to_device(&account.uid, &d.id, &details, payload, ttl)
        })
        .collect();
    Ok(Delivery { answer: json!({}), pushes })
}

/// A push service said `expired.endpoint` is gone: the device is listed with
/// `pushEndpointExpired: true` (as FxA's `push.js` marks it) until it registers a new
/// `pushCallback`, so that Firefox subscribes again and polls. A device that already
/// registered another endpoint, or is gone, is left as it is.
pub(super) fn push_endpoint_expired(tx: &mut Tx<'_>, expired: &ExpiredEndpoint) -> Result<(), AccountError> {
    let Some(mut device) = q::device(tx, &expired.uid, &expired.device_id)? else {
        return Ok(());
    };
    let Ok(Value::Object(mut details)) = serde_json::from_str::<Value>(&device.details) else {
        return Ok(());
    };
    if details.get("pushCallback").and_then(Value::as_str) != Some(expired.endpoint.as_str()) {
        return Ok(());
    }
    details.insert("pushEndpointExpired".into(), Value::Bool(true));
    device.details = Value::Object(details).to_string();
    q::update_device(tx, &device)?;
    Ok(())
}
