//! The storage protocol's settings: `[storage]` (whether this process is a storage node),
//! `[limits]` (what `info/configuration` advertises and writes are held to), `[quota]`,
//! `[auth]` (token grace and clock skew), `[batch]` and `[purge]` (the deleter's pace).

use serde::{Deserialize, Serialize};

use super::{invalid, ConfigError};

/// Firefox's 13 standard collections and the few newer ones (`extension-storage`, …): a lower
/// `limits.max_user_collections` would refuse Firefox itself.
const MIN_USER_COLLECTIONS: u64 = 20;

/// The limits advertised by `info/configuration` (storage-api.md §5.6), REF defaults.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    pub max_post_bytes: u64,
    pub max_post_records: u64,
    pub max_record_payload_bytes: u64,
    pub max_request_bytes: u64,
    pub max_total_bytes: u64,
    pub max_total_records: u64,
    pub max_quota_limit: u64,
    /// Collections one user may hold (those it has plus those with an open batch). A write that
    /// would create one more is refused like a write over quota (403, body 14).
    pub max_user_collections: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct QuotaSettings {
    /// Keep per-collection byte counts and check them before writes.
    pub enabled: bool,
    /// Refuse writes (403, body 14) once usage reaches `limits.max_quota_limit`.
    pub enforce: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// How long after expiry a token still opens `info/collections` (PY's bounded grace).
    pub expired_token_grace_seconds: u64,
    /// Largest accepted difference between a Hawk `ts` and the server clock (REF: 52 weeks).
    pub max_clock_skew_seconds: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BatchSettings {
    /// Lifetime of an uncommitted batch (REF and PY: 2 hours).
    pub ttl_seconds: u64,
    /// Batches one user may have open at once; one more is refused with 400, body `17`.
    pub max_open_per_user: u64,
}

/// The deleter (ARCHITECTURE.md): what removes deleted collections' items, expired items and
/// expired batches in the background, and how fast, per db node.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PurgeSettings {
    /// Run the deleter in `weft serve` (`weft purge` runs a pass on demand either way).
    pub enabled: bool,
    /// Rest between two passes; 0 runs them back to back.
    pub interval_seconds: u64,
    /// Rows one chunk (one short transaction) removes at most.
    pub chunk_rows: u64,
    /// Rest after every chunk.
    pub pause_ms: u64,
    /// Ceiling on rows removed per second on one db node (0: none).
    pub max_rows_per_second: u64,
    /// How long expired items and batches stay before they are removed (PY's purgettl: a day).
    pub grace_seconds: u64,
}

impl Default for PurgeSettings {
    fn default() -> Self {
        PurgeSettings {
            enabled: true,
            interval_seconds: 300,
            chunk_rows: 1000,
            pause_ms: 100,
            max_rows_per_second: 5000,
            grace_seconds: 86_400,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_post_bytes: 2_621_440,
            max_post_records: 100,
            max_record_payload_bytes: 2_621_440,
            max_request_bytes: 2_625_536,
            max_total_bytes: 262_144_000,
            max_total_records: 10_000,
            // REF computes 2 × 1024 × 1024 × 1000; its docs claim 2 GiB, the code value is served.
            max_quota_limit: 2_097_152_000,
            // Firefox uses about 15 (storage-api.md §3.3); ten times that leaves room for new
            // engines and extensions while a client inventing names stops early.
            max_user_collections: 150,
        }
    }
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings { expired_token_grace_seconds: 7200, max_clock_skew_seconds: 52 * 7 * 86_400 }
    }
}

impl Default for BatchSettings {
    fn default() -> Self {
        // A Firefox profile keeps one batch open per engine while it uploads; 100 leaves room
        // for many devices and abandoned uploads, and bounds staged data per user.
        BatchSettings { ttl_seconds: 7200, max_open_per_user: 100 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageSettings {
    /// Serve the storage node (`/1.5/…`). Off: a tokenserver-only process.
    pub enabled: bool,
}

impl Default for StorageSettings {
    fn default() -> Self {
        StorageSettings { enabled: true }
    }
}

impl Limits {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.max_request_bytes < self.max_post_bytes + 4096 {
            return Err(invalid("limits.max_request_bytes", "must be at least max_post_bytes + 4096"));
        }
        if self.max_record_payload_bytes > self.max_post_bytes {
            return Err(invalid("limits.max_record_payload_bytes", "must not exceed max_post_bytes"));
        }
        if self.max_total_records < self.max_post_records || self.max_total_bytes < self.max_post_bytes {
            return Err(invalid(
                "limits.max_total_records",
                "batch totals must be at least the per-POST limits",
            ));
        }
        if self.max_user_collections < MIN_USER_COLLECTIONS {
            return Err(invalid(
                "limits.max_user_collections",
                format!("must be at least {MIN_USER_COLLECTIONS}, room for Firefox's own collections"),
            ));
        }
        Ok(())
    }
}

impl BatchSettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.ttl_seconds == 0 {
            return Err(invalid("batch.ttl_seconds", "must be at least 1"));
        }
        if self.max_open_per_user == 0 {
            return Err(invalid("batch.max_open_per_user", "must be at least 1"));
        }
        Ok(())
    }
}

impl PurgeSettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.chunk_rows == 0 {
            return Err(invalid("purge.chunk_rows", "must be at least 1"));
        }
        Ok(())
    }
}
