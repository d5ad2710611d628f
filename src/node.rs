//! Node identity: validating configured node origins (and telling one on this machine), and
//! the table that maps the origin a request was sent to onto the configured storage node
//! serving it. A reload replaces the table's entries at once; a request keeps the entry it
//! resolved until it is answered. The canonical form itself (tokens-and-hawk.md §5.3) is the token verifier's `canonical_node`, so that configuration,
//! routing and token checks can never disagree about spelling.

use std::sync::{Arc, PoisonError, RwLock};

use weft_actors::shard::Shard;
use weft_actors::token_verifier::token::canonical_node;
use weft_schema::DbPool;

/// The canonical form of a configured node URL; `None` when the text is not an http(s) origin
/// (a path, query, fragment, empty host or non-numeric port).
pub fn canonical_origin(url: &str) -> Option<String> {
    let url = url.trim().trim_end_matches('/');
    let (scheme, rest) = url.split_once("://")?;
    if !matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https") {
        return None;
    }
    if rest.is_empty() || rest.contains(['/', '?', '#']) {
        return None;
    }
    split_host_port(rest)?;
    Some(canonical_node(url))
}

/// Splits `host[:port]` (IPv6 literals in brackets) into host and an optional numeric port.
pub fn split_host_port(hostport: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if let Some(stripped) = hostport.strip_prefix('[') {
        let end = stripped.find(']')?;
        let host = &hostport[..end + 2];
        match &stripped[end + 1..] {
            "" => (host, None),
            p => (host, Some(p.strip_prefix(':')?)),
        }
    } else {
        match hostport.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if host.is_empty() {
        return None;
    }
    let port = match port {
        Some(p) => Some(p.parse::<u16>().ok()?),
        None => None,
    };
    Some((host, port))
}

/// Whether an origin's host is this machine (`localhost`, 127.0.0.0/8, `[::1]`): the one
/// place plain http is acceptable for accounts (§2).
pub fn is_loopback_origin(url: &str) -> bool {
    let Some(rest) = url.trim_end_matches('/').strip_prefix("http://") else { return false };
    let Some((host, _)) = split_host_port(rest) else { return false };
    let host = host.to_ascii_lowercase();
    host == "localhost"
        || host == "[::1]"
        || host.parse::<std::net::Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_origins() {
        assert!(is_loopback_origin("http://localhost:8000"));
        assert!(is_loopback_origin("http://127.0.0.1:8000/"));
        assert!(is_loopback_origin("http://[::1]:8000"));
        assert!(!is_loopback_origin("http://sync.example.com"));
        assert!(!is_loopback_origin("http://10.0.0.1:8000"));
        assert!(!is_loopback_origin("https://localhost"));
    }

    #[test]
    fn canonical_forms() {
        assert_eq!(canonical_origin("HTTPS://Sync.Example.com:443/").unwrap(), "https://sync.example.com");
        assert_eq!(canonical_origin("http://localhost:8000").unwrap(), "http://localhost:8000");
        assert_eq!(canonical_origin("http://[::1]:80").unwrap(), "http://[::1]");
        assert!(canonical_origin("ftp://x").is_none());
        assert!(canonical_origin("http://x/path").is_none());
        assert!(canonical_origin("http://x:notaport").is_none());
    }
}

/// `db_node` keys are `db NAME` or `node URL`, so that a db node cannot be named like a
/// node's URL; the name operators wrote (a `[[db_nodes]]` name, or the URL of a node that is
/// its own db node) is what follows: the `db_node` label of metrics and the heartbeat.
pub fn db_node_name(key: &str) -> &str {
    key.split_once(' ').map_or(key, |(_, name)| name)
}

/// One storage node served by this process: its canonical public origin, accepted aliases, the
/// shard actor that owns its database, and a one-connection pool of its own for the health
/// check, so that the check never waits for a connection behind client requests.
#[derive(Clone)]
pub struct NodeEntry {
    pub url: String,
    pub aliases: Vec<String>,
    pub shard: Shard,
    /// The db node serving it; node names of one db node share one shard.
    pub db_node: String,
    /// The database and shard settings the shard was started with: a reload keeps the shard
    /// when they are unchanged.
    pub shard_key: String,
    pub health_pool: DbPool,
}

/// Every node this process serves, looked up by the origin a request was sent to.
pub struct NodeTable {
    /// Swapped whole by a reload; readers clone the `Arc` and never wait for a reload.
    entries: RwLock<Arc<Vec<NodeEntry>>>,
}

impl NodeTable {
    pub fn new(entries: Vec<NodeEntry>) -> NodeTable {
        NodeTable { entries: RwLock::new(Arc::new(entries)) }
    }

    fn snapshot(&self) -> Arc<Vec<NodeEntry>> {
        // Only an `Arc` is swapped under the lock, which cannot panic half-way.
        self.entries.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Serves `entries` from now on. Requests already routed finish on the shards they hold.
    pub fn replace(&self, entries: Vec<NodeEntry>) {
        *self.entries.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(entries);
    }

    /// The node for a canonical request origin. With a single node every origin maps to it:
    /// the token's `node` is still checked against that node's url and aliases, and the Hawk
    /// MAC binds the host the client used, so a self-hoster reaching the server by another
    /// name (127.0.0.1 for localhost) loses nothing.
    ///
    /// With several nodes, an origin that names none of them resolves to nothing, and the
    /// request is answered 401, body `0`, before anything else is looked at. That is the
    /// spec's answer (tokens-and-hawk.md §5.3, storage-api.md §2): PY sent an unknown host to
    /// its default backend and then refused every token, since none can name that host; the
    /// recommended binding refuses a token that does not name the node the request was sent
    /// to. A 401 is also what a client recovers from: it asks the tokenserver again and
    /// follows the `api_endpoint` it gets. No node's data is ever served under another name.
    pub fn resolve(&self, origin: &str) -> Option<NodeEntry> {
        let entries = self.snapshot();
        if let [only] = entries.as_slice() {
            return Some(only.clone());
        }
        entries.iter().find(|n| n.url == origin || n.aliases.iter().any(|a| a == origin)).cloned()
    }

    /// The node whose url or an alias is exactly `origin` (canonical), with no single-node
    /// fallback: whether this process serves a node the tokenserver database names.
    pub fn serving(&self, origin: &str) -> Option<NodeEntry> {
        self.snapshot().iter().find(|n| n.url == origin || n.aliases.iter().any(|a| a == origin)).cloned()
    }

    /// The entries served now.
    pub fn iter(&self) -> impl Iterator<Item = NodeEntry> {
        let entries = self.snapshot();
        (0..entries.len()).map(move |i| entries[i].clone())
    }
}
