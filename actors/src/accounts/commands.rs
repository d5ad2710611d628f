//! FxA's device-command protocol (issue 25; Send Tab is the command
//! `https://identity.mozilla.com/cmd/open-uri`): a device leaves an encrypted message for
//! another device of the same account (`invoke_command`), which fetches it when it polls
//! (`device/commands`). Weft stores the payload as the sender encrypted it for the target and
//! never reads it. No push service is contacted: a target learns of its messages when Firefox
//! polls (docs/accounts.md, "Send Tab"). Also `devices/notify`, accepted as FxA does.

use serde_json::{json, Value};
use weft_schema::models::accounts::{AccountRow, TokenRow};
use weft_schema::models::device_commands::DeviceCommandRow;
use weft_schema::pool::Tx;
use weft_schema::queries::accounts as q;
use weft_schema::queries::device_commands as commands;

use super::error::AccountError;
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

/// `POST /v1/account/devices/invoke_command {target, command, payload, ttl?}`.
pub(super) fn invoke(
    shared: &Shared,
    tx: &mut Tx<'_>,
    session: &TokenRow,
    account: &AccountRow,
    body: &Value,
    now: i64,
) -> Result<Value, AccountError> {
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
            expires_at: now.saturating_add(ttl.min(MAX_TTL_SECONDS).saturating_mul(1000)),
        },
    )?;
    // Stored, not pushed: the target finds it at its next poll.
    Ok(json!({ "enqueued": true, "notified": false }))
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

/// `POST /v1/account/devices/notify {to, excluded?, payload, TTL?}`: FxA pushes `payload` to
/// the devices named; Weft has no push service, so it checks the shape and answers `{}` as
/// FxA does (Firefox sends it after each sync that changed something).
pub(super) fn notify(body: &Value) -> Result<Value, AccountError> {
    let to_ok = match body.get("to") {
        Some(Value::String(to)) => to == "all",
        Some(Value::Array(ids)) => ids.iter().all(Value::is_string),
        _ => false,
    };
    if !to_ok {
        return Err(AccountError::InvalidParameter("to".into()));
    }
    if body.get("payload").is_some_and(|p| !p.is_object()) {
        return Err(AccountError::InvalidParameter("payload".into()));
    }
    Ok(json!({}))
}
