//! Web Push to local accounts' devices (RFC 8030, the message encrypted for the device as
//! RFC 8291 says: `aes128gcm` with its P-256 `pushPublicKey` and its `pushAuthKey`). FxA pushes
//! to a device's `pushCallback` when a command is stored for it and when another device of the
//! account asks (`devices/notify`); Weft does the same, off the request path and best effort.
//!
//! The accounts actor offers each push once its transaction committed: `PushQueue::offer`
//! refuses endpoints the `endpoint` policy does not allow and puts the rest in a bounded queue
//! (full: dropped) without waiting. A worker on an arbiter of its own sends at most
//! `max_in_flight` at once, each within `timeout`, and never retries. Nothing is lost either
//! way: what a push announces is stored before it is offered, and Firefox fetches it when it
//! polls (docs/accounts.md, "Send Tab"). A push service answering 404 or 410 says the
//! subscription is gone: the worker reports the device (`ExpiredEndpoint`) so that it is marked
//! `pushEndpointExpired`, as FxA does, and Firefox, seeing that in the device list, subscribes
//! again and polls. Every outcome is counted in `weft_accounts_push_total{outcome}`.
//!
//! No VAPID: Firefox subscribes for its account without an application server key
//! (`FxAccountsPush.registerPushEndpoint`, Firefox 153), so Mozilla's push service gives it an
//! unrestricted endpoint that takes pushes without a VAPID signature. Firefox reads the push in
//! `FxAccountsPush._onPushMessage` (`command_received`: `pollDeviceCommands(data.index)`), and
//! re-subscribes and polls when its device is listed `pushEndpointExpired`
//! (`FxAccountsDevice._refreshRemoteDevice`).

mod endpoint;

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use reqwest::Url;
use serde_json::Value;
use tokio::sync::{mpsc, Semaphore};
use web_push_native::p256::PublicKey;
use web_push_native::Auth;

pub use self::endpoint::{EndpointPolicy, Refused, MOZILLA_PUSH_HOST};

/// The largest message a push can carry: push services accept 4096 bytes of body (RFC 8030
/// §7.2), of which aes128gcm's header with a P-256 key takes 86 and one record's padding
/// delimiter and tag 17.
pub const MAX_PAYLOAD_BYTES: usize = 4096 - 86 - 17;

#[derive(Debug, Clone)]
pub struct PushConfig {
    pub enabled: bool,
    pub endpoints: EndpointPolicy,
    /// Pushes waiting for a slot; beyond, a push is dropped (counted `dropped`).
    pub queue_limit: usize,
    /// Pushes being sent at once.
    pub max_in_flight: usize,
    /// The whole exchange with the push service, connection included.
    pub timeout: Duration,
}

/// What became of a push (the `outcome` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The push service accepted it (2xx).
    Delivered,
    /// 404 or 410: the subscription is gone; the device is marked `pushEndpointExpired`.
    Expired,
    /// Another answer, no connection, or a message that could not be encrypted.
    Failed,
    /// No answer within `timeout`.
    Timeout,
    /// The queue was full.
    Dropped,
    /// The endpoint is not allowed (`endpoint`), or the device's keys are not P-256 and 16 bytes.
    Refused,
}

impl Outcome {
    const ALL: [Outcome; 6] = [
        Outcome::Delivered,
        Outcome::Expired,
        Outcome::Failed,
        Outcome::Timeout,
        Outcome::Dropped,
        Outcome::Refused,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Expired => "expired",
            Outcome::Failed => "failed",
            Outcome::Timeout => "timeout",
            Outcome::Dropped => "dropped",
            Outcome::Refused => "refused",
        }
    }

    fn counter(self) -> metrics::Counter {
        metrics::counter!("weft_accounts_push_total", "outcome" => self.as_str())
    }

    fn count(self) {
        self.counter().increment(1);
    }
}

/// One push for one device: the JSON message (FxA's push payload), the device's subscription
/// as it registered it (`pushCallback`, `pushPublicKey`, `pushAuthKey`), and how long the push
/// service may keep it for a device that is offline (`TTL`, seconds).
#[derive(Debug, Clone)]
pub struct Push {
    pub uid: String,
    pub device_id: String,
    pub endpoint: String,
    pub public_key: String,
    pub auth_key: String,
    pub message: Vec<u8>,
    pub ttl: u64,
}

impl Push {
    /// A push of `message` to a device whose registered details (`devices.details`) hold a
    /// subscription; none without one, or once the push service said it expired (FxA skips
    /// those devices too).
    pub fn to_device(uid: &str, device_id: &str, details: &Value, message: &Value, ttl: u64) -> Option<Push> {
        if details.get("pushEndpointExpired").and_then(Value::as_bool) == Some(true) {
            return None;
        }
        let member = |name: &str| details.get(name).and_then(Value::as_str).filter(|v| !v.is_empty());
        Some(Push {
            uid: uid.into(),
            device_id: device_id.into(),
            endpoint: member("pushCallback")?.into(),
            public_key: member("pushPublicKey")?.into(),
            auth_key: member("pushAuthKey")?.into(),
            message: message.to_string().into_bytes(),
            ttl,
        })
    }
}

/// A push whose endpoint is allowed and whose keys decoded: what the worker sends.
struct Ready {
    push: Push,
    url: Url,
    public_key: PublicKey,
    auth: Auth,
}

/// A subscription the push service said is gone (404 or 410): the device to mark
/// `pushEndpointExpired`, if `endpoint` is still the one it has registered.
#[derive(Debug, Clone)]
pub struct ExpiredEndpoint {
    pub uid: String,
    pub device_id: String,
    pub endpoint: String,
}

/// The accounts actor's side of the queue. Offering never blocks.
#[derive(Clone)]
pub struct PushQueue {
    sender: Option<mpsc::Sender<Ready>>,
    endpoints: Arc<EndpointPolicy>,
}

impl PushQueue {
    /// Queues `push` for the worker; whether it was queued. Pushes are off (`enabled = false`):
    /// never.
    pub fn offer(&self, push: Push) -> bool {
        let Some(sender) = &self.sender else {
            return false;
        };
        let ready = match self.prepare(push) {
            Ok(ready) => ready,
            Err(why) => {
                tracing::debug!(reason = %why, "push endpoint refused");
                Outcome::Refused.count();
                return false;
            }
        };
        if sender.try_send(ready).is_err() {
            Outcome::Dropped.count();
            return false;
        }
        true
    }

    fn prepare(&self, push: Push) -> Result<Ready, PrepareError> {
        let url = self.endpoints.check(&push.endpoint)?;
        let decode = |text: &str| URL_SAFE_NO_PAD.decode(text.trim_end_matches('='));
        let public_key = decode(&push.public_key)
            .ok()
            .and_then(|bytes| PublicKey::from_sec1_bytes(&bytes).ok())
            .ok_or(PrepareError::Keys)?;
        let auth = decode(&push.auth_key).ok().filter(|bytes| bytes.len() == 16).ok_or(PrepareError::Keys)?;
        Ok(Ready { url, public_key, auth: Auth::clone_from_slice(&auth), push })
    }
}

#[derive(Debug, thiserror::Error)]
enum PrepareError {
    #[error("endpoint: {0}")]
    Endpoint(#[from] Refused),
    #[error("pushPublicKey is not a P-256 point or pushAuthKey not 16 bytes")]
    Keys,
}

/// The sending side, started once the actor that marks expired devices exists.
pub struct PushWorker {
    receiver: mpsc::Receiver<Ready>,
    http: reqwest::Client,
    max_in_flight: usize,
}

/// The queue and its worker (none when pushes are off).
pub fn queue(config: &PushConfig) -> Result<(PushQueue, Option<PushWorker>), reqwest::Error> {
    for outcome in Outcome::ALL {
        outcome.counter().increment(0);
    }
    let endpoints = Arc::new(config.endpoints.clone());
    if !config.enabled {
        return Ok((PushQueue { sender: None, endpoints }, None));
    }
    let http = reqwest::Client::builder()
        .timeout(config.timeout)
        .connect_timeout(config.timeout)
        // An allowed push service must not be able to send the request anywhere else.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("weft/", env!("CARGO_PKG_VERSION")))
        .build()?;
    let (sender, receiver) = mpsc::channel(config.queue_limit.max(1));
    let worker = PushWorker { receiver, http, max_in_flight: config.max_in_flight.max(1) };
    Ok((PushQueue { sender: Some(sender), endpoints }, Some(worker)))
}

impl PushWorker {
    /// Sends the queued pushes on an arbiter (thread) of its own, `on_expired` called for each
    /// subscription the push service says is gone. Must run inside the actix system.
    pub fn start(self, on_expired: impl Fn(ExpiredEndpoint) + Send + Sync + 'static) {
        let PushWorker { mut receiver, http, max_in_flight } = self;
        let on_expired = Arc::new(on_expired);
        let in_flight = Arc::new(Semaphore::new(max_in_flight));
        actix::Arbiter::new().spawn(async move {
            while let Some(ready) = receiver.recv().await {
                // Waiting here for a slot is what lets the queue fill, and then drop.
                let Ok(slot) = in_flight.clone().acquire_owned().await else {
                    return;
                };
                let (http, on_expired) = (http.clone(), on_expired.clone());
                actix::spawn(async move {
                    let outcome = send(&http, &ready).await;
                    outcome.count();
                    if outcome == Outcome::Expired {
                        let push = ready.push;
                        on_expired(ExpiredEndpoint {
                            uid: push.uid,
                            device_id: push.device_id,
                            endpoint: push.endpoint,
                        });
                    }
                    drop(slot);
                });
            }
        });
    }
}

/// One POST to the push service (RFC 8030 §5): the encrypted message, its `TTL`, and
/// `Content-Encoding: aes128gcm` (RFC 8291 §4).
async fn send(http: &reqwest::Client, ready: &Ready) -> Outcome {
    let body = match web_push_native::encrypt(ready.push.message.clone(), &ready.public_key, &ready.auth) {
        Ok(body) => body,
        Err(e) => {
            tracing::info!(error = %e, "push message not encrypted");
            return Outcome::Failed;
        }
    };
    let request = http
        .post(ready.url.clone())
        .header("TTL", ready.push.ttl.to_string())
        .header(reqwest::header::CONTENT_ENCODING, "aes128gcm")
        .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
        .body(body);
    // The endpoint is a capability for the device's push channel: never logged.
    match request.send().await {
        Ok(answer) if answer.status().is_success() => Outcome::Delivered,
        Ok(answer) if matches!(answer.status().as_u16(), 404 | 410) => Outcome::Expired,
        Ok(answer) => {
            tracing::info!(status = answer.status().as_u16(), "push service refused a push");
            Outcome::Failed
        }
        Err(e) if e.is_timeout() => Outcome::Timeout,
        Err(e) => {
            tracing::info!(error = %e.without_url(), "push service unreachable");
            Outcome::Failed
        }
    }
}
