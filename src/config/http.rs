//! What the HTTP listener allows: `[http]` (connections, deadlines, bodies in memory) and
//! `[cors]`.

use serde::{Deserialize, Serialize};

use super::{invalid, ConfigError};

/// What one client may hold of the server: connections, time, and memory for bodies. An
/// unauthenticated request never costs more than its headers; these bound what the rest may.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    /// Open connections of the whole process; past it new ones wait in the listen backlog.
    pub max_connections: usize,
    /// Request bodies being read or processed at once, each up to `limits.max_request_bytes`.
    pub max_concurrent_bodies: usize,
    /// Deadline for a request's headers, from the connection's first byte (408 past it).
    pub header_timeout_ms: u64,
    /// Deadline for reading one body, waiting for a body slot included (408 past it; 503 when
    /// the time went on waiting for a slot).
    pub body_timeout_ms: u64,
    /// Deadline for a whole request, headers excluded (503 + Retry-After past it).
    pub request_timeout_ms: u64,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            max_connections: 4096,
            // 64 × the 2.5 MiB `max_request_bytes` bounds bodies in memory to 160 MiB.
            max_concurrent_bodies: 64,
            // actix-web's own default.
            header_timeout_ms: 5000,
            // A full 2.5 MiB body at 128 KiB/s, a slow phone link, takes 20 s.
            body_timeout_ms: 20_000,
            request_timeout_ms: 60_000,
        }
    }
}

impl HttpSettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.max_connections == 0 || self.max_concurrent_bodies == 0 {
            return Err(invalid("http", "max_connections and max_concurrent_bodies must be at least 1"));
        }
        if self.header_timeout_ms == 0 || self.body_timeout_ms == 0 || self.request_timeout_ms == 0 {
            return Err(invalid("http", "header, body and request timeouts must be at least 1 ms"));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CorsSettings {
    /// `*` allows (and echoes) every origin; otherwise only this exact origin.
    pub allowed_origin: String,
    pub max_age_seconds: u64,
}

impl Default for CorsSettings {
    fn default() -> Self {
        CorsSettings { allowed_origin: "*".into(), max_age_seconds: 1_728_000 }
    }
}
