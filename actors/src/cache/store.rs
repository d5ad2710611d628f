//! What the cache protocol needs from a key-value store: versioned reads and the three writes
//! memcached offers (`add`, `cas`, `set`) plus `delete`, with errors that say whether the store
//! may still hold what it held before.

/// A stored value with the version it had when read; `cas` with that version replaces it only
/// if nobody wrote the key since (memcached's CAS unique).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    pub value: Vec<u8>,
    pub cas: u64,
}

/// A key-value store shared by every webhead (memcached) or private to this process (memory).
/// Calls block: callers run them on the shard's threads, never on the async workers.
pub trait Store: Send + Sync + 'static {
    /// `memcached` or `memory`: the `cache` label of the metrics.
    fn name(&self) -> &'static str;
    /// True when calls never wait on the network (the in-process store), so that async code
    /// may make them.
    fn is_local(&self) -> bool;
    fn get(&self, key: &str) -> Result<Option<Versioned>, StoreError>;
    /// Stores `value` only if the key is absent; `Ok(false)` when it exists. Like every store
    /// call, `ttl` is the entry's lifetime in seconds, 0 for no limit.
    fn add(&self, key: &str, value: &[u8], ttl: u32) -> Result<bool, StoreError>;
    /// Replaces the value only if it still has version `cas`; `Ok(false)` when the key was
    /// written or removed since.
    fn cas(&self, key: &str, value: &[u8], ttl: u32, cas: u64) -> Result<bool, StoreError>;
    fn set(&self, key: &str, value: &[u8], ttl: u32) -> Result<(), StoreError>;
    fn delete(&self, key: &str) -> Result<(), StoreError>;
}

/// Why a store call failed. The difference matters to writers (see the protocol in `lib.rs`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// Nothing listens where the key lives: that memcached process is not running, so it holds
    /// no entry at all (a restarted memcached starts empty). The store remembers the keys
    /// written meanwhile and removes them before it serves that server again.
    #[error("cache server {server} is down")]
    Down { server: String },
    /// The call may or may not have been applied and the server may still hold old entries
    /// (timeout, broken connection, protocol error).
    #[error("cache server {server}: {message}")]
    Failed { server: String, message: String },
}
