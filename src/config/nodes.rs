//! The storage nodes a process serves and the shard actors that serve them: `[[nodes]]` (a node
//! with its own database and secrets), `[[db_nodes]]` (a database server holding several node
//! names, one shard for all), `[shard]` (threads, pool, queue bound and timeouts of each
//! shard), and their validation.

use serde::{Deserialize, Serialize};

use super::master_secrets::check_master_secrets;
use super::{invalid, known_database_url, ConfigError, Settings, DATABASE_URL_FORMS};
use crate::node::canonical_origin;

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct NodeSettings {
    pub url: String,
    pub aliases: Vec<String>,
    pub database_url: String,
    pub master_secrets: Vec<String>,
}

/// A database server with the node names it serves. Its shard's threads (each holding at most
/// one connection at a time) are the connection budget of all its databases; `pool_size` caps
/// each database's pool.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DbNodeSettings {
    /// Names the db node in messages and plans.
    pub name: String,
    /// `mysql://user:pass@host:port` (no database), or `sqlite:DIRECTORY` for SQLite files.
    pub url: String,
    /// Override `shard.threads`, `shard.pool_size`, `shard.queue_limit` for this db node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threads: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pool_size: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_limit: Option<usize>,
    pub nodes: Vec<DbNodeName>,
}

/// One node name (public origin) of a db node and its database there.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DbNodeName {
    pub url: String,
    pub aliases: Vec<String>,
    /// The MySQL database, or the SQLite file name (`.db` added) in the db node's directory.
    pub database: String,
}

impl DbNodeSettings {
    /// The database URL of one of its node names.
    pub fn database_url(&self, name: &DbNodeName) -> String {
        match self.url.strip_prefix("sqlite:") {
            Some(dir) => format!("sqlite:{}/{}.db", dir.trim_end_matches('/'), name.database),
            None => format!("{}/{}", self.url.trim_end_matches('/'), name.database),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShardSettings {
    /// Threads of each shard actor's SyncArbiter (each holds at most one connection at a time).
    pub threads: usize,
    /// Maximum connections in each shard's r2d2 pool.
    pub pool_size: u32,
    /// Requests that may wait for or run on one shard before new ones get 503 + Retry-After.
    pub queue_limit: usize,
    /// How long a shard thread waits for a pooled connection before answering 503.
    pub connection_timeout_ms: u64,
    /// How long a request may wait for the shard's answer, queue included, before answering
    /// 503: bounds the wait on a database that accepts connections but no longer answers.
    pub request_timeout_ms: u64,
    /// SQLite `busy_timeout`.
    pub sqlite_busy_timeout_ms: u64,
    /// SQLite `synchronous`: `full` (an acknowledged write survives a power loss) or `normal`
    /// (faster writes; the last ones acknowledged can be lost in an OS crash).
    pub sqlite_synchronous: String,
    /// `Retry-After` seconds sent with a shed (503) response.
    pub retry_after_seconds: u32,
}

/// The default shard threads and connections: one per CPU, at least two. With the database on
/// the same machine (the embedded default, and a small box's MariaDB) more threads only queue
/// for the same CPUs: on 2 cores, MariaDB `read` at concurrency 8 had p99 6.4 ms with 2
/// threads, 11 ms with 4 and 16.7 ms with 8, at the same throughput (loadtests/BENCHMARKS.md).
/// A db node on its own server is sized in its configuration (ops/config/).
fn default_shard_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get()).max(2)
}

impl Default for ShardSettings {
    fn default() -> Self {
        let threads = default_shard_threads();
        ShardSettings {
            threads,
            // Each thread holds at most one connection at a time.
            pool_size: u32::try_from(threads).unwrap_or(u32::MAX),
            queue_limit: 256,
            connection_timeout_ms: 2000,
            request_timeout_ms: 30_000,
            sqlite_busy_timeout_ms: 5000,
            sqlite_synchronous: "full".into(),
            retry_after_seconds: 10,
        }
    }
}

impl ShardSettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.threads == 0 || self.pool_size == 0 || self.queue_limit == 0 {
            return Err(invalid("shard", "threads, pool_size and queue_limit must be at least 1"));
        }
        if self.request_timeout_ms <= self.connection_timeout_ms {
            return Err(invalid(
                "shard.request_timeout_ms",
                "must be more than shard.connection_timeout_ms (a request waits for its connection first)",
            ));
        }
        if !matches!(self.sqlite_synchronous.as_str(), "full" | "normal") {
            return Err(invalid("shard.sqlite_synchronous", "must be full or normal"));
        }
        Ok(())
    }
}

impl Settings {
    pub(super) fn validate_nodes(&self) -> Result<(), ConfigError> {
        for (i, node) in self.nodes.iter().enumerate() {
            canonical_origin(&node.url).ok_or_else(|| {
                invalid(&format!("nodes[{i}].url"), format!("{:?} is not an http(s) origin", node.url))
            })?;
            if !known_database_url(&node.database_url) {
                return Err(invalid(&format!("nodes[{i}].database_url"), DATABASE_URL_FORMS));
            }
            check_master_secrets(&format!("nodes[{i}].master_secrets"), &node.master_secrets)?;
        }
        Ok(())
    }

    pub(super) fn validate_db_nodes(&self) -> Result<(), ConfigError> {
        let mut urls: Vec<String> = std::iter::once(self.public_url.as_str())
            .chain(self.nodes.iter().map(|n| n.url.as_str()))
            .filter_map(canonical_origin)
            .collect();
        for (i, db) in self.db_nodes.iter().enumerate() {
            let key = |field: &str| format!("db_nodes[{i}].{field}");
            if db.name.is_empty() || self.db_nodes[..i].iter().any(|d| d.name == db.name) {
                return Err(invalid(&key("name"), "must be set and differ from every other db node's"));
            }
            if !(db.url.starts_with("sqlite:") || db.url.starts_with("mysql://")) {
                return Err(invalid(&key("url"), "must start with sqlite: or mysql://"));
            }
            if [db.threads, db.queue_limit].contains(&Some(0)) || db.pool_size == Some(0) {
                return Err(invalid(
                    &key("threads"),
                    "threads, pool_size and queue_limit must be at least 1",
                ));
            }
            if db.nodes.is_empty() {
                return Err(invalid(&key("nodes"), "a db node serves at least one node name"));
            }
            for (j, name) in db.nodes.iter().enumerate() {
                let url = canonical_origin(&name.url).ok_or_else(|| {
                    invalid(
                        &key(&format!("nodes[{j}].url")),
                        format!("{:?} is not an http(s) origin", name.url),
                    )
                })?;
                if urls.contains(&url) {
                    return Err(invalid(
                        &key(&format!("nodes[{j}].url")),
                        format!("{url} is configured twice"),
                    ));
                }
                urls.push(url);
                let plain = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
                if name.database.is_empty() || !name.database.chars().all(plain) {
                    return Err(invalid(
                        &key(&format!("nodes[{j}].database")),
                        "must be a plain name (letters, digits, _ and -)",
                    ));
                }
            }
        }
        Ok(())
    }
}
