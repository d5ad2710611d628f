//! The `TokenVerifier` actor: owns every node's list of master secrets with their precomputed
//! signing secrets, and publishes them as an immutable [`Credentials`] snapshot that request
//! workers verify with directly (the checks of tokens-and-hawk.md §5.1, except uid-vs-URL, which
//! the web layer does), so that authenticating a request costs no round trip through the
//! actor's mailbox and no thread switch. The actor answers `GetSigningSecret` with the secret the
//! tokenserver must sign with, and `SetSecrets` by publishing a new snapshot (rollover without
//! restart, §5.2).
//!
//! The bounded cache of derived Hawk keys belongs to the snapshot it was filled under: a new
//! snapshot starts with an empty cache, so a key derived from a removed secret can never be used
//! after `SetSecrets` returned.
//!
//! A list holds the secrets a node *accepts*, oldest first, and the one that *signs* last: a
//! secret can be accepted everywhere before any tokenserver signs with it. Nodes without a list
//! of their own use the default list (PY's fixed/derived secrets, REF's single master secret),
//! so a node registered in the tokenserver database is never left without a signing secret.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use actix::{Actor, Context, Handler, Message};

use super::hawk::{self, HawkHeader};
use super::token::{self, canonical_node};
use super::AuthError;

/// Upper bound on cached derived keys. When the cache is full it is simply emptied: a miss
/// costs one HKDF, and with 10_000 entries (about 5 MB of tokens and keys) a node with fewer
/// active tokens than that never misses twice for the same token, while a flood of distinct
/// valid tokens cannot grow memory without limit. No LRU bookkeeping is worth it at that price.
const DERIVED_KEY_CACHE_LIMIT: usize = 10_000;

/// One node's configuration: its canonical origin, other spellings accepted in tokens, and its
/// master secrets, oldest first (any verifies; the last one signs).
#[derive(Clone)]
pub struct NodeSecrets {
    pub url: String,
    pub aliases: Vec<String>,
    pub secrets: Vec<String>,
}

/// A master secret with its signing secret, derived once when the list is installed.
#[derive(Clone)]
struct Secret {
    master: String,
    signing: [u8; 32],
}

#[derive(Clone)]
struct Node {
    url: String,
    aliases: Vec<String>,
    /// Oldest first, as configured.
    secrets: Vec<Secret>,
}

/// What the web layer extracts from a storage request for authentication.
#[derive(Debug, Clone)]
pub struct HawkRequest {
    /// Raw `Authorization` value; `None` if absent or not ASCII.
    pub authorization: Option<String>,
    pub method: String,
    /// Path and query exactly as on the request line.
    pub request_target: String,
    /// Host and port as the client used them (the web layer resolves proxies, §6.4).
    pub host: String,
    pub port: u16,
    /// Canonical origin of the node the request was routed to.
    pub node: String,
    /// True only for `GET /1.5/{uid}/info/collections`, which accepts tokens expired at most
    /// `expired_token_grace_seconds` ago (§4).
    pub allow_expired: bool,
}

/// The identity a verified token carries. `node` is the token's `node` field as written.
#[derive(Debug, Clone)]
pub struct VerifiedToken {
    /// The `hash` attribute the client's MAC covers, if it sent one. Authentication needs only
    /// the headers, so the body is read after it, and then checked against this with
    /// `hawk::check_payload_hash` (§6.5).
    pub payload_hash: Option<String>,
    pub uid: u64,
    pub node: String,
    pub fxa_uid: String,
    pub fxa_kid: String,
    pub hashed_fxa_uid: String,
    pub hashed_device_id: String,
    pub expires: f64,
}

/// Replaces every node's secret list and the default list: publishes a new snapshot, with an
/// empty derived-key cache.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetSecrets {
    pub nodes: Vec<NodeSecrets>,
    /// Signs for nodes without a list of their own (accepted first, the signing one last).
    pub default: Vec<String>,
}

/// Asks for the signing secret of `node` (any spelling; it is canonicalised): its own list's,
/// else the default list's. `None` only when both are empty.
#[derive(Message)]
#[rtype(result = "Option<String>")]
pub struct GetSigningSecret {
    pub node: String,
}

pub struct TokenVerifier {
    published: PublishedCredentials,
    expired_token_grace_seconds: u64,
    max_clock_skew_seconds: u64,
}

/// The handle request workers authenticate with: the snapshot the actor published last. Cloning
/// it is cheap; every clone sees each new snapshot as soon as `SetSecrets` has been handled.
#[derive(Clone)]
pub struct PublishedCredentials(Arc<RwLock<Arc<Credentials>>>);

impl PublishedCredentials {
    /// Runs the checks of §5.1 on the caller's thread against the current snapshot.
    pub fn authenticate(&self, req: &HawkRequest) -> Result<VerifiedToken, AuthError> {
        self.current().authenticate(req, now_secs())
    }

    /// The secret new tokens for `node` are signed with (see `GetSigningSecret`), read from the
    /// snapshot without a mailbox round trip.
    pub fn signing_secret(&self, node: &str) -> Option<String> {
        self.current().newest_secret(node).map(str::to_owned)
    }

    fn current(&self) -> Arc<Credentials> {
        // The lock guards only an Arc swap, which cannot panic half-way: a poisoned lock still
        // holds a whole snapshot.
        self.0.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn publish(&self, credentials: Credentials) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(credentials);
    }
}

/// One immutable arrangement of every node's secrets, and the derived keys computed under it.
pub struct Credentials {
    /// Keyed by canonical url.
    nodes: HashMap<String, Node>,
    /// Masters of the default list, the signing one last.
    default_secrets: Vec<String>,
    /// Token string → derived Hawk key. Keying by the token alone is sound: the key is a pure
    /// function of (master secret, token), and a token's signature verifies only under the one
    /// master secret that signed it (or an identical copy of it), so a given token always
    /// derives the same key. Entries are only added after the signature verified. The lock is
    /// held for one lookup or insert, never while deriving (HKDF runs outside it).
    derived_keys: Mutex<HashMap<String, String>>,
    expired_token_grace_seconds: u64,
    max_clock_skew_seconds: u64,
}

impl TokenVerifier {
    /// Urls and aliases are canonicalised here so that configuration spelling never matters.
    /// If a url appears twice, the later entry wins.
    pub fn new(
        nodes: Vec<NodeSecrets>,
        expired_token_grace_seconds: u64,
        max_clock_skew_seconds: u64,
    ) -> TokenVerifier {
        let credentials =
            Credentials::new(nodes, Vec::new(), expired_token_grace_seconds, max_clock_skew_seconds);
        TokenVerifier {
            published: PublishedCredentials(Arc::new(RwLock::new(Arc::new(credentials)))),
            expired_token_grace_seconds,
            max_clock_skew_seconds,
        }
    }

    /// Nodes without a list of their own sign with the last secret of `default`.
    pub fn with_default_secrets(self, default: Vec<String>) -> TokenVerifier {
        self.published.publish(self.published.current().with_default(default));
        self
    }

    /// The handle request workers verify with; it follows every later `SetSecrets`.
    pub fn credentials(&self) -> PublishedCredentials {
        self.published.clone()
    }
}

impl Credentials {
    fn new(
        nodes: Vec<NodeSecrets>,
        default_secrets: Vec<String>,
        expired_token_grace_seconds: u64,
        max_clock_skew_seconds: u64,
    ) -> Credentials {
        Credentials {
            nodes: build_nodes(nodes),
            default_secrets,
            derived_keys: Mutex::new(HashMap::new()),
            expired_token_grace_seconds,
            max_clock_skew_seconds,
        }
    }

    /// The same secrets with `default` as the default list, and an empty derived-key cache.
    fn with_default(&self, default: Vec<String>) -> Credentials {
        Credentials {
            nodes: self.nodes.clone(),
            default_secrets: default,
            derived_keys: Mutex::new(HashMap::new()),
            expired_token_grace_seconds: self.expired_token_grace_seconds,
            max_clock_skew_seconds: self.max_clock_skew_seconds,
        }
    }

    /// The last master secret of `node`'s list, the one new tokens are signed with (§1.1); for
    /// a node without a list (one the tokenserver database names but this process does not
    /// serve), the default list's, as Mozilla's tokenserver signs every node's tokens.
    fn newest_secret(&self, node: &str) -> Option<&str> {
        match self.nodes.get(&canonical_node(node)) {
            Some(node) => node.secrets.last().map(|s| s.master.as_str()),
            None => self.default_secrets.last().map(String::as_str),
        }
    }

    /// The checks of §5.1 in order, against the clock reading `now` (Unix seconds).
    fn authenticate(&self, req: &HawkRequest, now: u64) -> Result<VerifiedToken, AuthError> {
        let value = req.authorization.as_deref().ok_or(AuthError::MissingHeader)?;
        let header = hawk::parse_header(value)?;
        let node = self.nodes.get(&canonical_node(&req.node)).ok_or(AuthError::UnknownNode)?;

        let decoded = token::decode_token(&header.id).ok_or(AuthError::BadSignature)?;
        // Newest first: almost every token in circulation was signed with the newest secret,
        // so this usually takes a single HMAC.
        let (secret, payload) = node
            .secrets
            .iter()
            .rev()
            .find_map(|s| token::signed_payload(&s.signing, &decoded).map(|p| (s, p)))
            .ok_or(AuthError::BadSignature)?;
        let payload = token::parse_payload(payload)?;

        let token_node = canonical_node(&payload.node);
        if token_node != node.url && !node.aliases.contains(&token_node) {
            return Err(AuthError::WrongNode);
        }

        let grace = if req.allow_expired { self.expired_token_grace_seconds } else { 0 };
        if !unexpired(payload.expires, now, grace) {
            return Err(AuthError::Expired);
        }

        let key = self.derived_key(&secret.master, &payload.salt, &header.id);
        check_request(&header, req, &key, now, self.max_clock_skew_seconds)?;

        Ok(VerifiedToken {
            payload_hash: header.hash,
            uid: payload.uid,
            node: payload.node,
            fxa_uid: payload.fxa_uid,
            fxa_kid: payload.fxa_kid,
            hashed_fxa_uid: payload.hashed_fxa_uid,
            hashed_device_id: payload.hashed_device_id,
            expires: payload.expires,
        })
    }

    /// The token's Hawk key, from the cache or derived (and cached) now.
    fn derived_key(&self, master: &str, salt: &str, token_id: &str) -> String {
        let cached = self.keys().get(token_id).cloned();
        cached.unwrap_or_else(|| {
            let key = token::derived_key(master, salt, token_id);
            let mut keys = self.keys();
            if keys.len() >= DERIVED_KEY_CACHE_LIMIT {
                keys.clear();
            }
            keys.insert(token_id.to_owned(), key.clone());
            key
        })
    }

    fn keys(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        // Nothing panics while the map is locked; a poisoned map is still a valid map.
        self.derived_keys.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn build_nodes(nodes: Vec<NodeSecrets>) -> HashMap<String, Node> {
    nodes
        .into_iter()
        .map(|n| {
            let url = canonical_node(&n.url);
            let node = Node {
                url: url.clone(),
                aliases: n.aliases.iter().map(|a| canonical_node(a)).collect(),
                secrets: n
                    .secrets
                    .into_iter()
                    .map(|master| Secret { signing: token::signing_secret(&master), master })
                    .collect(),
            };
            (url, node)
        })
        .collect()
}

/// REF's expiry rule (§4): valid iff `round(expires) > now`, so a token expiring this very
/// second is expired. `grace` shifts the deadline for the one route that accepts recently
/// expired tokens (PY's bounded grace): valid iff `round(expires) + grace > now`.
fn unexpired(expires: f64, now: u64, grace: u64) -> bool {
    // f64 holds every realistic Unix time exactly; the sum cannot overflow as integers could.
    expires.round() + grace as f64 > now as f64
}

/// The Hawk part of §5.1 step 8: timestamp skew and the MAC (constant time). The client's
/// payload hash, covered by the MAC, is checked by the caller once it has read the body.
fn check_request(
    header: &HawkHeader,
    req: &HawkRequest,
    key: &str,
    now: u64,
    max_clock_skew_seconds: u64,
) -> Result<(), AuthError> {
    // parse_header already guaranteed decimal digits that fit a u64.
    let ts: u64 = header.ts.parse().map_err(|_| AuthError::BadHeader)?;
    if ts.abs_diff(now) > max_clock_skew_seconds {
        return Err(AuthError::ClockSkew);
    }
    let normalized = hawk::normalized_string(header, &req.method, &req.request_target, &req.host, req.port);
    if !hawk::verify_mac(key, &normalized, &header.mac) {
        return Err(AuthError::BadMac);
    }
    Ok(())
}

fn now_secs() -> u64 {
    // A clock before 1970 is a broken host; reading it as 0 makes every token look valid
    // for expiry but every Hawk `ts` skewed, so requests still fail closed.
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Actor for TokenVerifier {
    type Context = Context<Self>;
}

impl Handler<SetSecrets> for TokenVerifier {
    type Result = ();

    fn handle(&mut self, msg: SetSecrets, _ctx: &mut Context<Self>) {
        // A fresh snapshot also drops the cached keys, which may belong to removed secrets.
        self.published.publish(Credentials::new(
            msg.nodes,
            msg.default,
            self.expired_token_grace_seconds,
            self.max_clock_skew_seconds,
        ));
    }
}

impl Handler<GetSigningSecret> for TokenVerifier {
    type Result = Option<String>;

    fn handle(&mut self, msg: GetSigningSecret, _ctx: &mut Context<Self>) -> Option<String> {
        self.published.signing_secret(&msg.node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token_verifier::hawk::{payload_hash, request_mac};
    use crate::token_verifier::token::{mint_token, TokenPayload};
    use actix::Addr;

    const NODE: &str = "https://sync.example.com";
    const ALIAS: &str = "http://sync-internal:8000";
    const OTHER: &str = "https://other.example.com";
    const GRACE: u64 = 7200;
    const SKEW: u64 = 3600;

    fn nodes(sync_secrets: &[&str]) -> Vec<NodeSecrets> {
        vec![
            NodeSecrets {
                url: NODE.into(),
                aliases: vec![ALIAS.into()],
                secrets: sync_secrets.iter().map(|s| s.to_string()).collect(),
            },
            NodeSecrets { url: OTHER.into(), aliases: vec![], secrets: vec!["other secret".into()] },
        ]
    }

    /// The actor and the handle workers verify with, as the server wires them.
    struct Started {
        addr: Addr<TokenVerifier>,
        credentials: PublishedCredentials,
    }

    impl Started {
        async fn send<M>(&self, msg: M) -> Result<M::Result, actix::MailboxError>
        where
            M: Message + Send + 'static,
            M::Result: Send,
            TokenVerifier: Handler<M>,
        {
            self.addr.send(msg).await
        }
    }

    fn start(sync_secrets: &[&str]) -> Started {
        let verifier = TokenVerifier::new(nodes(sync_secrets), GRACE, SKEW);
        let credentials = verifier.credentials();
        Started { addr: verifier.start(), credentials }
    }

    fn now() -> u64 {
        now_secs()
    }

    fn mint(secret: &str, node: &str, expires: f64) -> (String, String) {
        mint_token(
            secret,
            &TokenPayload {
                uid: 42,
                node: node.into(),
                expires,
                fxa_uid: "319b98f9961ff1dbdd07313cd6ba925a".into(),
                fxa_kid: "0000000001234-qqo".into(),
                ..TokenPayload::default()
            },
        )
    }

    /// A GET of `/1.5/42/storage/bookmarks` to NODE, signed with `key` at `ts`.
    fn signed(token: &str, key: &str, ts: u64) -> HawkRequest {
        let mut req = HawkRequest {
            authorization: None,
            method: "GET".into(),
            request_target: "/1.5/42/storage/bookmarks?full=1".into(),
            host: "sync.example.com".into(),
            port: 443,
            node: NODE.into(),
            allow_expired: false,
        };
        sign(&mut req, token, key, ts, None);
        req
    }

    fn sign(req: &mut HawkRequest, token: &str, key: &str, ts: u64, hash: Option<String>) {
        let header = HawkHeader {
            id: token.into(),
            ts: ts.to_string(),
            nonce: "n0nce".into(),
            mac: String::new(),
            hash,
            ext: None,
        };
        let normalized =
            hawk::normalized_string(&header, &req.method, &req.request_target, &req.host, req.port);
        let mac = request_mac(key, &normalized);
        let hash_attr = header.hash.as_ref().map(|h| format!(", hash=\"{h}\"")).unwrap_or_default();
        req.authorization =
            Some(format!("Hawk id=\"{token}\", ts=\"{ts}\", nonce=\"n0nce\", mac=\"{mac}\"{hash_attr}"));
    }

    async fn auth(started: &Started, req: HawkRequest) -> Result<VerifiedToken, AuthError> {
        started.credentials.authenticate(&req)
    }

    #[actix::test]
    async fn accepts_minted_token() {
        let addr = start(&["old", "new"]);
        let (token, key) = mint("new", NODE, (now() + 3600) as f64);
        let verified = auth(&addr, signed(&token, &key, now())).await.unwrap();
        assert_eq!(verified.uid, 42);
        assert_eq!(verified.node, NODE);
        assert_eq!(verified.fxa_uid, "319b98f9961ff1dbdd07313cd6ba925a");
        assert_eq!(verified.fxa_kid, "0000000001234-qqo");
        assert_eq!(verified.hashed_fxa_uid, "");
        assert_eq!(verified.expires, (now() + 3600) as f64);
        // Second time round the derived key comes from the cache.
        assert!(auth(&addr, signed(&token, &key, now())).await.is_ok());
    }

    #[actix::test]
    async fn refuses_header_problems() {
        let addr = start(&["new"]);
        let (token, key) = mint("new", NODE, (now() + 3600) as f64);
        let mut req = signed(&token, &key, now());
        req.authorization = None;
        assert_eq!(auth(&addr, req.clone()).await.unwrap_err(), AuthError::MissingHeader);
        req.authorization = Some(format!("Bearer {token}"));
        assert_eq!(auth(&addr, req.clone()).await.unwrap_err(), AuthError::NotHawk);
        req.authorization = Some(format!("Hawk id=\"{token}\""));
        assert_eq!(auth(&addr, req).await.unwrap_err(), AuthError::BadHeader);
    }

    #[actix::test]
    async fn refuses_bad_mac() {
        let addr = start(&["new"]);
        let (token, key) = mint("new", NODE, (now() + 3600) as f64);
        let mut req = signed(&token, &key, now());
        req.request_target = "/1.5/42/storage/passwords?full=1".into();
        assert_eq!(auth(&addr, req).await.unwrap_err(), AuthError::BadMac);
        let (_, other_key) = mint("new", NODE, (now() + 3600) as f64);
        let req = signed(&token, &other_key, now());
        assert_eq!(auth(&addr, req).await.unwrap_err(), AuthError::BadMac);
    }

    #[actix::test]
    async fn refuses_bad_signature() {
        let addr = start(&["new"]);
        let (token, key) = mint("not configured", NODE, (now() + 3600) as f64);
        let req = signed(&token, &key, now());
        assert_eq!(auth(&addr, req).await.unwrap_err(), AuthError::BadSignature);
        let req = signed("bm90IGEgdG9rZW4=", &key, now());
        assert_eq!(auth(&addr, req).await.unwrap_err(), AuthError::BadSignature);
    }

    #[actix::test]
    async fn refuses_bad_payload() {
        use base64::engine::general_purpose::URL_SAFE;
        use base64::Engine as _;
        use hmac::{Hmac, Mac};
        // Correctly signed, but no salt.
        let payload = br#"{"uid":42,"node":"https://sync.example.com","expires":9999999999}"#;
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&token::signing_secret("new")).unwrap();
        mac.update(payload);
        let mut bytes = payload.to_vec();
        bytes.extend_from_slice(&mac.finalize().into_bytes());
        let token = URL_SAFE.encode(bytes);
        let addr = start(&["new"]);
        let req = signed(&token, "whatever", now());
        assert_eq!(auth(&addr, req).await.unwrap_err(), AuthError::BadPayload);
    }

    #[actix::test]
    async fn secret_rollover() {
        let addr = start(&["old"]);
        let expires = (now() + 3600) as f64;
        let (old_token, old_key) = mint("old", NODE, expires);
        let (new_token, new_key) = mint("new", NODE, expires);
        assert!(auth(&addr, signed(&old_token, &old_key, now())).await.is_ok());
        assert_eq!(
            auth(&addr, signed(&new_token, &new_key, now())).await.unwrap_err(),
            AuthError::BadSignature
        );
        let signing = GetSigningSecret { node: NODE.into() };
        assert_eq!(addr.send(signing).await.unwrap().as_deref(), Some("old"));

        // Step 1: verifiers learn the new secret; both tokens work, and "new" now signs.
        addr.send(SetSecrets { nodes: nodes(&["old", "new"]), default: vec![] }).await.unwrap();
        assert!(auth(&addr, signed(&old_token, &old_key, now())).await.is_ok());
        assert!(auth(&addr, signed(&new_token, &new_key, now())).await.is_ok());
        let signing = GetSigningSecret { node: "HTTPS://sync.example.com:443/".into() };
        assert_eq!(addr.send(signing).await.unwrap().as_deref(), Some("new"));

        // Step 4: the old secret is removed; its tokens stop working even though their derived
        // keys were cached.
        addr.send(SetSecrets { nodes: nodes(&["new"]), default: vec![] }).await.unwrap();
        assert_eq!(
            auth(&addr, signed(&old_token, &old_key, now())).await.unwrap_err(),
            AuthError::BadSignature
        );
        assert!(auth(&addr, signed(&new_token, &new_key, now())).await.is_ok());

        let signing = GetSigningSecret { node: "https://nowhere.example.com".into() };
        assert_eq!(addr.send(signing).await.unwrap(), None);
    }

    #[actix::test]
    async fn nodes_without_a_list_sign_with_the_default_list() {
        let verifier = TokenVerifier::new(nodes(&["own"]), GRACE, SKEW)
            .with_default_secrets(vec!["default old".into(), "default new".into()]);
        let credentials = verifier.credentials();
        let addr = Started { addr: verifier.start(), credentials };
        let signing = |node: &str| GetSigningSecret { node: node.into() };
        assert_eq!(addr.send(signing(NODE)).await.unwrap().as_deref(), Some("own"));
        let unlisted = "https://sync-9.example.com";
        assert_eq!(addr.send(signing(unlisted)).await.unwrap().as_deref(), Some("default new"));
        // The default list changes with the others.
        addr.send(SetSecrets { nodes: nodes(&["own"]), default: vec!["rotated".into()] }).await.unwrap();
        assert_eq!(addr.send(signing(unlisted)).await.unwrap().as_deref(), Some("rotated"));
        // A node that is not served here is still not served: no list, no verification.
        let (token, key) = mint("rotated", unlisted, (now() + 3600) as f64);
        let mut req = signed(&token, &key, now());
        req.node = unlisted.into();
        assert_eq!(auth(&addr, req).await.unwrap_err(), AuthError::UnknownNode);
    }

    #[actix::test]
    async fn expiry_and_info_collections_grace() {
        let addr = start(&["new"]);
        let (token, key) = mint("new", NODE, (now() - 10) as f64);
        let mut req = signed(&token, &key, now());
        assert_eq!(auth(&addr, req.clone()).await.unwrap_err(), AuthError::Expired);
        req.allow_expired = true;
        assert!(auth(&addr, req).await.is_ok());

        let (token, key) = mint("new", NODE, (now() - GRACE - 10) as f64);
        let mut req = signed(&token, &key, now());
        req.allow_expired = true;
        assert_eq!(auth(&addr, req).await.unwrap_err(), AuthError::Expired);
    }

    #[actix::test]
    async fn node_binding() {
        let addr = start(&["new"]);
        let expires = (now() + 3600) as f64;

        // Signed with this node's secret but naming another node.
        let (token, key) = mint("new", OTHER, expires);
        let req = signed(&token, &key, now());
        assert_eq!(auth(&addr, req).await.unwrap_err(), AuthError::WrongNode);

        // The other node's token sent to this node fails on its signature.
        let (token, key) = mint("other secret", OTHER, expires);
        let req = signed(&token, &key, now());
        assert_eq!(auth(&addr, req).await.unwrap_err(), AuthError::BadSignature);
        // …and is accepted by the node it names.
        let mut req = signed(&token, &key, now());
        req.node = OTHER.into();
        assert!(auth(&addr, req).await.is_ok());

        // Another spelling of this node, and an alias, are both accepted.
        for spelling in ["HTTPS://Sync.Example.com:443/", "http://SYNC-INTERNAL:8000/"] {
            let (token, key) = mint("new", spelling, expires);
            let verified = auth(&addr, signed(&token, &key, now())).await.unwrap();
            assert_eq!(verified.node, spelling);
        }

        // A request routed to a node this server does not serve.
        let (token, key) = mint("new", NODE, expires);
        let mut req = signed(&token, &key, now());
        req.node = "https://nowhere.example.com".into();
        assert_eq!(auth(&addr, req).await.unwrap_err(), AuthError::UnknownNode);
    }

    #[actix::test]
    async fn clock_skew() {
        let addr = start(&["new"]);
        let (token, key) = mint("new", NODE, (now() + 3600) as f64);
        assert!(auth(&addr, signed(&token, &key, now() - SKEW + 60)).await.is_ok());
        assert!(auth(&addr, signed(&token, &key, now() + SKEW - 60)).await.is_ok());
        assert_eq!(
            auth(&addr, signed(&token, &key, now() - SKEW - 60)).await.unwrap_err(),
            AuthError::ClockSkew
        );
        assert_eq!(
            auth(&addr, signed(&token, &key, now() + SKEW + 60)).await.unwrap_err(),
            AuthError::ClockSkew
        );
    }

    #[actix::test]
    async fn payload_hash_attribute_is_returned_for_the_body_check() {
        let addr = start(&["new"]);
        let (token, key) = mint("new", NODE, (now() + 3600) as f64);
        let mut req = signed(&token, &key, now());
        req.method = "PUT".into();
        req.request_target = "/1.5/42/storage/bookmarks/abc".into();
        // No hash attribute: nothing to check the body against (§6.5).
        sign(&mut req, &token, &key, now(), None);
        assert_eq!(auth(&addr, req.clone()).await.unwrap().payload_hash, None);
        let hash = payload_hash("application/json", br#"{"id":"abc","payload":"x"}"#);
        sign(&mut req, &token, &key, now(), Some(hash.clone()));
        assert_eq!(auth(&addr, req.clone()).await.unwrap().payload_hash, Some(hash));
        // The hash attribute is covered by the MAC: changing it breaks the signature.
        let signed_header = req.authorization.clone().unwrap();
        req.authorization = Some(signed_header.replace("hash=\"", "hash=\"x"));
        assert_eq!(auth(&addr, req).await.unwrap_err(), AuthError::BadMac);
    }

    /// §9.1 end to end, at the fixture's own clock.
    #[test]
    fn ref_fixture_end_to_end() {
        const TOKEN: &str = "eyJ1aWQiOiAxLCAibm9kZSI6ICJodHRwOi8vbG9jYWxob3N0OjUwMDAiLCAiZXhwaXJlcyI6IDE4ODQ5Njg0MzkuMCwgImZ4YV91aWQiOiAiMzE5Yjk4Zjk5NjFmZjFkYmRkMDczMTNjZDZiYTkyNWEiLCAiZnhhX2tpZCI6ICJkZTY5N2FkNjZkODQ1YjI4NzNjOWQ3ZTEzYjg5NzFhZiIsICJoYXNoZWRfZnhhX3VpZCI6ICIwZThkZjVkNDEzOThhMzg5OTEzYmQ4NDAyNDM1NjQ5NTE4YWY0NjQ5M2RhMWQ0YTQzN2E0NmRjMTc4NGM1MDFhIiwgImhhc2hlZF9kZXZpY2VfaWQiOiAiMmJjYjkyZjRkNDY5OGMzZDdiMDgzYTNjNjk4YTE2Y2NkNzhiYzJhOGQyMGE5NmU0YmIxMjhkZGNlYWY0ZTBiNiIsICJzYWx0IjogIjJiMzA3YiJ9lXaC5pIOenf7qL1AWlgKFvYH63nakyniTXP-7acS5cw=";
        let fifty_two_weeks = 52 * 7 * 86400;
        let verifier = Credentials::new(
            vec![NodeSecrets {
                url: "http://localhost:5000".into(),
                aliases: vec![],
                secrets: vec!["wibble".into(), "Ted Koppel is a robot".into()],
            }],
            Vec::new(),
            GRACE,
            fifty_two_weeks,
        );
        let req = HawkRequest {
            authorization: Some(format!(
                "Hawk id=\"{TOKEN}\", mac=\"UwDpC+DSrHCSTQSfMOWlueB6kM6gHb0Hsv8eU9ZcTVs=\", nonce=\"h1Ch4vo=\", ts=\"1569608439\""
            )),
            method: "GET".into(),
            request_target: "/storage/1.5/1/storage/col2".into(),
            host: "localhost".into(),
            port: 5000,
            node: "http://localhost:5000".into(),
            allow_expired: false,
        };
        let verified = verifier.authenticate(&req, 1569608439).unwrap();
        assert_eq!(verified.uid, 1);
        assert_eq!(verified.expires, 1884968439.0);
        assert_eq!(verified.hashed_device_id.len(), 64);
        assert_eq!(
            verifier.keys().get(TOKEN).map(String::as_str),
            Some("dSi3EoZyHwgDp-O9OG1jRHtmbGl2M1bwcWsi04C4F58=")
        );
        // At round(expires) the token is expired (§9.1).
        assert_eq!(verifier.authenticate(&req, 1884968439).unwrap_err(), AuthError::Expired);
        let mut other_port = req.clone();
        other_port.port = 5001;
        assert_eq!(verifier.authenticate(&other_port, 1569608439).unwrap_err(), AuthError::BadMac);
        // Only "wibble" left: the fixture's secret is gone.
        let verifier = Credentials::new(
            vec![NodeSecrets {
                url: "http://localhost:5000".into(),
                aliases: vec![],
                secrets: vec!["wibble".into()],
            }],
            Vec::new(),
            GRACE,
            fifty_two_weeks,
        );
        assert_eq!(verifier.authenticate(&req, 1569608439).unwrap_err(), AuthError::BadSignature);
    }

    #[test]
    fn expiry_rule() {
        let now = 1_700_000_000;
        assert!(!unexpired(now as f64, now, 0), "expires == now is expired");
        assert!(unexpired((now + 1) as f64, now, 0));
        assert!(!unexpired(now as f64 + 0.4, now, 0), "rounds down to now");
        assert!(unexpired(now as f64 + 0.5, now, 0), "rounds up to now + 1");
        assert!(!unexpired((now - 1) as f64, now, 0));
        // With grace: expired at most `grace` seconds ago is accepted, like PY.
        assert!(unexpired(now as f64, now, 1));
        assert!(unexpired((now - 7199) as f64, now, 7200));
        assert!(!unexpired((now - 7200) as f64, now, 7200));
        assert!(!unexpired(-1e300, now, u64::MAX));
    }

    #[test]
    fn derived_key_cache_is_bounded() {
        let verifier = Credentials::new(nodes(&["new"]), Vec::new(), GRACE, SKEW);
        let now = now_secs();
        for i in 0..=DERIVED_KEY_CACHE_LIMIT {
            let (token, key) = mint("new", NODE, (now + 3600 + i as u64) as f64);
            verifier.authenticate(&signed(&token, &key, now), now).unwrap();
            assert!(verifier.keys().len() <= DERIVED_KEY_CACHE_LIMIT);
        }
        // The 10_001st key found the cache full, emptied it and went in alone.
        assert_eq!(verifier.keys().len(), 1);
    }
}
