//! Where a replaced user's data is deleted: on the node's shard when this process serves the
//! node (the storage engine's "delete all of a user's storage" operation, through the shard's
//! admission bound like any client request), else with a Hawk-signed `DELETE {node}/1.5/{uid}`
//! to the process that serves it, with a token minted from that node's signing secret, as
//! Mozilla's purge tool does (tokenserver-api.md §10.6, ops-model.md §4.3).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use weft_actors::shard::{DeleteStorage, Precondition, ShardError};
use weft_actors::token_verifier::hawk::authorization;
use weft_actors::token_verifier::token::canonical_node;
use weft_actors::token_verifier::{mint_token, PublishedCredentials, TokenPayload};
use weft_actors::tokenserver::fxa_kid;
use weft_schema::models::tokenserver::ReplacedUser;

use crate::node::NodeTable;

/// How long the purge's own tokens live: one request, with room for clock skew.
const TOKEN_LIFETIME_SECONDS: u64 = 300;

/// Why a user's data could not be deleted; the row waits for the next pass.
#[derive(Debug, thiserror::Error)]
pub enum DeleteFailure {
    #[error("the node's storage: {0}")]
    Local(#[from] ShardError),
    #[error("no master secret to sign for {0}")]
    NoSecret(String),
    #[error("{0} is not a storage URL")]
    BadUrl(String),
    #[error("{node} answered {status}")]
    Status { node: String, status: u16 },
    #[error("DELETE on {node}: {source}")]
    Request { node: String, source: reqwest::Error },
}

impl DeleteFailure {
    /// Every `reason` label, for the series exported at 0 from the start.
    pub const REASONS: [&'static str; 9] = [
        "storage",
        "no_secret",
        "bad_url",
        "http_5xx",
        "http_4xx",
        "http_other",
        "timeout",
        "connect",
        "unknown",
    ];

    /// The metrics label (ops-model.md §7.3's `row_failure` reasons, plus Weft's own).
    pub fn reason(&self) -> &'static str {
        match self {
            DeleteFailure::Local(_) => "storage",
            DeleteFailure::NoSecret(_) => "no_secret",
            DeleteFailure::BadUrl(_) => "bad_url",
            DeleteFailure::Status { status, .. } if *status >= 500 => "http_5xx",
            DeleteFailure::Status { status, .. } if *status >= 400 => "http_4xx",
            DeleteFailure::Status { .. } => "http_other",
            DeleteFailure::Request { source, .. } if source.is_timeout() => "timeout",
            DeleteFailure::Request { source, .. } if source.is_connect() => "connect",
            DeleteFailure::Request { .. } => "unknown",
        }
    }
}

/// How the data was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reached {
    /// This process's shard for the node.
    Shard,
    /// The process serving the node, over HTTP.
    Remote,
}

/// Deletes users' data wherever their node is served. Cheap to clone.
#[derive(Clone)]
pub struct DataDeleter {
    /// The nodes this process serves (none when its storage node is off).
    nodes: Arc<NodeTable>,
    /// Every node's secrets as this process knows them (the tokenserver signs with the same).
    credentials: PublishedCredentials,
    http: reqwest::Client,
}

impl DataDeleter {
    pub fn new(
        nodes: Arc<NodeTable>,
        credentials: PublishedCredentials,
        request_timeout: Duration,
    ) -> Result<DataDeleter, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(request_timeout)
            .connect_timeout(request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("weft-purge/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(DataDeleter { nodes, credentials, http })
    }

    /// Deletes every collection and item of `user` on `node`. Idempotent: a node that holds
    /// nothing for the uid (already purged, or never synced) answers success.
    pub async fn delete(&self, node: &str, user: &ReplacedUser) -> Result<Reached, DeleteFailure> {
        let origin = canonical_node(node);
        // A negative uid (a row written by hand) has no storage URL.
        let uid =
            u64::try_from(user.uid).map_err(|_| DeleteFailure::BadUrl(format!("{node}/1.5/{}", user.uid)))?;
        if let Some(entry) = self.nodes.serving(&origin) {
            entry.shard.send(DeleteStorage { uid, precondition: Precondition::None }).await?;
            return Ok(Reached::Shard);
        }
        self.delete_remotely(&origin, uid, user).await.map(|()| Reached::Remote)
    }

    async fn delete_remotely(&self, node: &str, uid: u64, user: &ReplacedUser) -> Result<(), DeleteFailure> {
        let url = reqwest::Url::parse(&format!("{node}/1.5/{uid}"))
            .map_err(|_| DeleteFailure::BadUrl(node.to_string()))?;
        let secret =
            self.credentials.signing_secret(node).ok_or_else(|| DeleteFailure::NoSecret(node.to_string()))?;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        // The payload of §10.6: the identity fields the row holds, no metrics hashes.
        let payload = TokenPayload {
            uid,
            node: node.to_string(),
            expires: (now + TOKEN_LIFETIME_SECONDS) as f64,
            salt: format!("{:06x}", rand::random::<u32>() & 0xff_ffff),
            fxa_uid: user.email.split('@').next().unwrap_or_default().to_string(),
            fxa_kid: fxa_kid(user.keys_changed_at, user.generation, &user.client_state),
            hashed_fxa_uid: String::new(),
            hashed_device_id: String::new(),
        };
        let (token, key) = mint_token(&secret, &payload);
        let nonce = STANDARD.encode(rand::random::<[u8; 6]>());
        let header = authorization(&token, &key, "DELETE", &url, now, &nonce);
        let request_failed = |source| DeleteFailure::Request { node: node.to_string(), source };
        let response =
            self.http.delete(url).header("Authorization", header).send().await.map_err(request_failed)?;
        let status = response.status().as_u16();
        // A node that has lost the data already may answer 404 (ops-model.md §4.3).
        if response.status().is_success() || status == 404 {
            Ok(())
        } else {
            Err(DeleteFailure::Status { node: node.to_string(), status })
        }
    }
}
