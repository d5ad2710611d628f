//! `[cache]`: the cache in front of the storage databases (what is cached, memcached servers
//! or the in-process store) and its validation.

use serde::{Deserialize, Serialize};

use super::{invalid, ConfigError};

/// The cache in front of the storage databases (ops-model.md §5; the protocol that keeps it
/// consistent is in the `weft-cache` crate). With `servers` it is memcached, shared by every
/// webhead; without, a bounded store inside this process, which is right only when this
/// process is the one webhead of its databases.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheSettings {
    /// Cache each user's collection timestamps (`info/collections`, `X-Last-Modified`,
    /// preconditions).
    pub metadata: bool,
    /// Write-through collections: kept whole in the cache (items and timestamp), read from it,
    /// and updated by every write after the database committed it.
    pub collections: Vec<String>,
    /// Cache-only collections: kept only in the cache, never in the database (lost with the
    /// cache; README). Needs `metadata`.
    pub cache_only: Vec<String>,
    /// memcached servers, `host:port`; keys are spread over them by consistent hashing.
    pub servers: Vec<String>,
    /// Starts every memcached key, so that deployments can share memcached.
    pub key_prefix: String,
    /// Bound on connecting to memcached and on each call.
    pub timeout_ms: u64,
    /// How long reads skip a memcached server after it failed, before trying it again.
    pub retry_interval_ms: u64,
    /// Size of the in-process store when no servers are configured; 0 turns caching off.
    pub memory_bytes: u64,
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            metadata: true,
            collections: vec!["meta".into(), "clients".into(), "crypto".into()],
            cache_only: vec![],
            servers: vec![],
            key_prefix: "weft".into(),
            timeout_ms: 250,
            retry_interval_ms: 1000,
            memory_bytes: 64 * 1024 * 1024,
        }
    }
}

impl CacheSettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        for server in &self.servers {
            let port_ok = server
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
            if !port_ok {
                return Err(invalid("cache.servers", format!("{server:?} is not host:port")));
            }
        }
        // Collection names as the protocol allows them (storage-api.md §3.2): they end up in keys.
        for (key, names) in [("cache.collections", &self.collections), ("cache.cache_only", &self.cache_only)]
        {
            for name in names {
                let valid = !name.is_empty()
                    && name.len() <= 32
                    && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
                if !valid {
                    return Err(invalid(key, format!("{name:?} is not a collection name")));
                }
            }
        }
        if let Some(name) = self.cache_only.iter().find(|name| self.collections.contains(name)) {
            return Err(invalid("cache.cache_only", format!("{name:?} is also in cache.collections")));
        }
        if !self.cache_only.is_empty() && !self.metadata {
            return Err(invalid("cache.cache_only", "needs cache.metadata = true"));
        }
        // memcached keys are at most 250 bytes of visible ASCII; the rest of a key takes < 60.
        if self.key_prefix.len() > 100 || !self.key_prefix.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(invalid("cache.key_prefix", "at most 100 visible ASCII characters"));
        }
        if !self.servers.is_empty() && self.timeout_ms == 0 {
            return Err(invalid("cache.timeout_ms", "must be at least 1"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::tests::env;
    use crate::config::Settings;

    #[test]
    fn cache_settings() {
        let s = Settings::load(None, env(&[])).unwrap();
        assert!(s.cache.metadata && s.cache.servers.is_empty());
        let s = Settings::load(None, env(&[("WEFT_CACHE_SERVERS", "10.0.0.1:11211, mc2:11211")])).unwrap();
        assert_eq!(s.cache.servers, ["10.0.0.1:11211", "mc2:11211"]);
        let err = Settings::load(None, env(&[("WEFT_CACHE_SERVERS", "mc1")])).unwrap_err();
        assert!(err.to_string().starts_with("cache.servers"), "{err}");
        let err = Settings::load(None, env(&[("WEFT_CACHE_KEY_PREFIX", "a b")])).unwrap_err();
        assert!(err.to_string().starts_with("cache.key_prefix"), "{err}");
        assert_eq!(s.cache.collections, ["meta", "clients", "crypto"]);
        let s = Settings::load(None, env(&[("WEFT_CACHE_CACHE_ONLY", "tabs")])).unwrap();
        assert_eq!(s.cache.cache_only, ["tabs"]);
        for bad in [&[("WEFT_CACHE_CACHE_ONLY", "meta")][..], &[("WEFT_CACHE_COLLECTIONS", "a b")][..]] {
            let err = Settings::load(None, env(bad)).unwrap_err();
            assert!(err.to_string().starts_with("cache.c"), "{err}");
        }
        let no_metadata = [("WEFT_CACHE_CACHE_ONLY", "tabs"), ("WEFT_CACHE_METADATA", "false")];
        assert!(Settings::load(None, env(&no_metadata)).is_err());
    }
}
