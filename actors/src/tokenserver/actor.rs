//! `Tokenserver`: the actor that answers `GET /1.0/sync/1.5` (tokenserver-api.md §2.5 steps
//! 2–8). It verifies the OAuth token, applies the deferred header and URL verdicts in REF's
//! order, has `TokenserverDb` get-or-create and check the user's record, asks the token
//! verifier for the node's newest master secret and mints the token. It also applies FxA's
//! account events (§10.8): verifies the Security Event Token and has `TokenserverDb` retire the
//! account or raise its generation. It runs on the system arbiter; every wait (FxA, database)
//! is asynchronous, so one slow request holds nothing.

use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix::{Actor, Addr, Context, Handler, Message, ResponseFuture};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::db::{AssignUser, RaiseGeneration, RetireUser, TokenserverDb};
use super::events::{account_events, AccountEvent, AccountEventsConfig};
use super::oauth::OAuthVerifier;
use super::rules;
use super::TokenserverError;
use crate::token_verifier::{mint_token, GetSigningSecret, TokenPayload, TokenVerifier};
use crate::ActorUnavailable;

#[derive(Debug, Clone)]
pub struct TokenserverConfig {
    /// Token lifetime when the client asks for none shorter (§1): 3600 s by default.
    pub token_duration: u64,
    /// `users.email` is `<fxa_uid>@<fxa_email_domain>` (§3.4).
    pub fxa_email_domain: String,
    /// Key of the metrics hashes `hashed_fxa_uid`, `hashed_device_id` (tokens-and-hawk §7).
    pub fxa_metrics_hash_secret: String,
    /// `node_type` of the response (§4).
    pub node_type: String,
    /// Limit for the database part of a request; `None` waits for the pool's own limits.
    pub database_timeout: Option<Duration>,
    /// FxA's account events (§10.8); `None`: not accepted.
    pub account_events: Option<AccountEventsConfig>,
}

/// `X-KeyID` (with `X-Client-State`) as parsed by the handler (§2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyId {
    /// `None` when 0 ("treated as absent").
    pub keys_changed_at: Option<i64>,
    /// Lower-case hex of the client-state bytes.
    pub client_state: String,
}

/// One token request as the handler parsed it. The header and URL verdicts are carried as
/// results because their errors must only be reported after the OAuth token verified (§2.5).
#[derive(Debug, Message)]
#[rtype(result = "Result<IssuedToken, TokenserverError>")]
pub struct GetToken {
    /// The bearer token, verbatim.
    pub bearer: String,
    pub key_id: Result<KeyId, TokenserverError>,
    /// `Err` for an unsupported application or version (404).
    pub service: Result<(), TokenserverError>,
    /// The `duration` query parameter when it parsed as an unsigned integer.
    pub duration: Option<u64>,
}

/// `POST /1.0/webhooks/fxa/events` (§10.8): the bearer token FxA sent, verbatim. Answers how
/// many of its events changed something.
#[derive(Debug, Message)]
#[rtype(result = "Result<usize, TokenserverError>")]
pub struct ApplyAccountEvents {
    pub bearer: String,
}

/// The success body of §4, minus `X-Timestamp` (the handler's).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct IssuedToken {
    pub id: String,
    pub key: String,
    pub uid: i64,
    pub api_endpoint: String,
    pub duration: u64,
    pub hashed_fxa_uid: String,
    pub hashalg: &'static str,
    pub node_type: String,
}

struct Inner {
    config: TokenserverConfig,
    oauth: OAuthVerifier,
    db: Addr<TokenserverDb>,
    verifier: Addr<TokenVerifier>,
}

pub struct Tokenserver {
    inner: Rc<Inner>,
}

impl Tokenserver {
    pub fn new(
        config: TokenserverConfig,
        oauth: OAuthVerifier,
        db: Addr<TokenserverDb>,
        verifier: Addr<TokenVerifier>,
    ) -> Tokenserver {
        // Exported at 0 from the start (whether or not account events are accepted), so that
        // rates see the series before the first event.
        for event in AccountEvent::LABELS {
            metrics::counter!("weft_fxa_events_total", "event" => event).absolute(0);
        }
        Tokenserver { inner: Rc::new(Inner { config, oauth, db, verifier }) }
    }
}

impl Actor for Tokenserver {
    type Context = Context<Self>;
}

impl Handler<GetToken> for Tokenserver {
    type Result = ResponseFuture<Result<IssuedToken, TokenserverError>>;

    fn handle(&mut self, msg: GetToken, _: &mut Context<Self>) -> Self::Result {
        let inner = self.inner.clone();
        Box::pin(async move { inner.get_token(msg).await })
    }
}

impl Handler<ApplyAccountEvents> for Tokenserver {
    type Result = ResponseFuture<Result<usize, TokenserverError>>;

    fn handle(&mut self, msg: ApplyAccountEvents, _: &mut Context<Self>) -> Self::Result {
        let inner = self.inner.clone();
        Box::pin(async move { inner.apply_account_events(msg).await })
    }
}

impl Inner {
    async fn get_token(&self, msg: GetToken) -> Result<IssuedToken, TokenserverError> {
        let identity = self.oauth.verify(&msg.bearer).await?;
        let key_id = msg.key_id?;
        msg.service?;
        let email = format!("{}@{}", identity.fxa_uid, self.config.fxa_email_domain);
        let assign = AssignUser {
            email,
            generation: identity.generation,
            keys_changed_at: key_id.keys_changed_at,
            client_state: key_id.client_state.clone(),
        };
        let user = self.ask_db(assign).await?;
        let uid = rules::token_uid(user.uid)?;
        // REF: a `duration` up to the configured one is used (0 included, [QUIRK]); larger is
        // ignored, never granted.
        let duration =
            msg.duration.filter(|d| *d <= self.config.token_duration).unwrap_or(self.config.token_duration);
        let secret = self
            .verifier
            .send(GetSigningSecret { node: user.node.clone() })
            .await
            .map_err(ActorUnavailable::of("token verifier"))?
            .ok_or_else(|| TokenserverError::NoSecretForNode(user.node.clone()))?;
        let hashed_fxa_uid = metrics_hash(&self.config.fxa_metrics_hash_secret, &identity.fxa_uid);
        let hashed_device_id =
            metrics_hash(&self.config.fxa_metrics_hash_secret, &format!("{hashed_fxa_uid}none"));
        let payload = TokenPayload {
            uid,
            node: user.node.clone(),
            expires: (now_secs() + duration) as f64,
            salt: String::new(),
            fxa_uid: identity.fxa_uid,
            fxa_kid: fxa_kid(user.keys_changed_at, user.generation, &user.client_state),
            hashed_fxa_uid: hashed_fxa_uid.clone(),
            hashed_device_id,
        };
        let (id, key) = mint_token(&secret, &payload);
        // The uid as the storage node's request lines carry it (ARCHITECTURE.md: no uid in clear).
        let hashed_uid = metrics_hash(&self.config.fxa_metrics_hash_secret, &user.uid.to_string());
        tracing::info!(hashed_uid, node = %user.node, first_seen_at = user.first_seen_at, "token issued");
        Ok(IssuedToken {
            id,
            key,
            uid: user.uid,
            api_endpoint: format!("{}/1.5/{}", user.node, user.uid),
            duration,
            hashed_fxa_uid,
            hashalg: "sha256",
            node_type: self.config.node_type.clone(),
        })
    }

    async fn apply_account_events(&self, msg: ApplyAccountEvents) -> Result<usize, TokenserverError> {
        let config =
            self.config.account_events.as_ref().ok_or_else(|| {
                TokenserverError::InvalidCredentials("account events are not accepted".into())
            })?;
        let claims = self.oauth.verify_event_token(&msg.bearer, config).await?;
        let email = format!("{}@{}", claims.sub, self.config.fxa_email_domain);
        let mut applied = 0;
        for event in account_events(&claims) {
            let rows = match event {
                AccountEvent::Deleted => self.ask_db(RetireUser { email: email.clone() }).await?,
                AccountEvent::PasswordChanged { generation } => {
                    self.ask_db(RaiseGeneration { email: email.clone(), generation }).await?
                }
                AccountEvent::Ignored => 0,
            };
            applied += usize::from(event != AccountEvent::Ignored);
            metrics::counter!("weft_fxa_events_total", "event" => event.label()).increment(1);
            tracing::info!(event = event.label(), rows, "FxA account event");
        }
        Ok(applied)
    }

    /// Sends `msg` to the tokenserver database, bounded by `database_timeout`.
    async fn ask_db<M, R>(&self, msg: M) -> Result<R, TokenserverError>
    where
        M: Message<Result = Result<R, TokenserverError>> + Send + 'static,
        R: Send + 'static,
        TokenserverDb: Handler<M>,
    {
        let reply = self.db.send(msg);
        let reply = match self.config.database_timeout {
            Some(limit) => {
                actix::clock::timeout(limit, reply).await.map_err(|_| TokenserverError::Elapsed)?
            }
            None => reply.await,
        };
        reply.map_err(ActorUnavailable::of("tokenserver database"))?
    }
}

/// `<keys_changed_at or generation, 13 digits>-<base64url of the client-state bytes>`
/// (tokens-and-hawk §7), from a user record's values (after the request, for a token request).
pub fn fxa_kid(keys_changed_at: Option<i64>, generation: i64, client_state: &str) -> String {
    let bytes = decode_hex(client_state).unwrap_or_default();
    format!("{:013}-{}", keys_changed_at.unwrap_or(generation), URL_SAFE_NO_PAD.encode(bytes))
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    hex.as_bytes()
        .chunks(2)
        .map(|pair| match pair {
            [hi, lo] => Some(((*hi as char).to_digit(16)? * 16 + (*lo as char).to_digit(16)?) as u8),
            _ => None,
        })
        .collect()
}

/// First 32 hex characters of HMAC-SHA256(secret, message) (tokens-and-hawk §7).
pub fn metrics_hash(secret: &str, message: &str) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(message.as_bytes());
    mac.finalize().into_bytes().iter().take(16).map(|b| format!("{b:02x}")).collect()
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fxa_kid_examples() {
        assert_eq!(fxa_kid(Some(1234), 1234, "aaaa"), "0000000001234-qqo");
        assert_eq!(fxa_kid(Some(2345), 2345, "bbbb"), "0000000002345-u7s");
        assert_eq!(fxa_kid(None, 99, ""), "0000000000099-");
    }

    #[test]
    fn metrics_hash_is_32_hex() {
        let h = metrics_hash("secret", "uid");
        assert_eq!(h.len(), 32);
        assert!(h.bytes().all(|b| b.is_ascii_hexdigit()));
    }
}
