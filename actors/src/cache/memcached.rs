//! The memcached ring: the configured servers, keys spread over them by consistent hashing
//! (`ring.rs`), one connection per calling thread and server (never shared, dropped on error),
//! timeouts, and the bookkeeping of a server's
//! health: one log line and a metric when it is lost or back (never one per request), automatic
//! reconnection, and the invalidations owed to it.
//!
//! Health. A call that fails marks the server unhealthy; for `retry_interval` after that, reads
//! of its keys skip it (they go to the database at once instead of waiting for a timeout), then
//! one call tries again on fresh connections. To tell a stopped memcached from a slow one the
//! server is probed with a plain TCP connect after a failure: refused means no memcached process
//! is there, hence it holds nothing (`StoreError::Down`); anything else leaves open that it
//! still holds entries (`StoreError::Failed`). Writes are never skipped while a server is
//! `Failed`: the protocol needs to know whether each invalidation happened.
//!
//! Owed invalidations. While a server is down, writers go on (it holds nothing), and the ring
//! remembers every key they could not invalidate. When the server answers again, those keys are
//! deleted there before anything else is done with it; if more than `PENDING_LIMIT` piled up,
//! the whole server is flushed instead. A restarted memcached is empty anyway; this matters
//! when "refused" had another cause (a firewall rejecting this webhead only) while other
//! webheads could still read that server.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use memcache::{CommandError, ConnectionManager, MemcacheError, Url};
use scheduled_thread_pool::ScheduledThreadPool;

use crate::cache::ring::Ring;
use crate::cache::store::{Store, StoreError, Versioned};

/// Keys remembered per down server before the ring gives up and flushes it on return.
const PENDING_LIMIT: usize = 10_000;

/// Distinguishes rings in one process (tests build several) in the per-thread connections.
static NEXT_RING: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's connection to each server, by (ring, server index). A connection belongs
    /// to one thread and is dropped on its first error: after a timeout the server's late
    /// answer may still arrive on it, and a pooled connection shared by threads would hand
    /// that answer to the next caller as the reply to its own request. The connections are
    /// bounded by the threads that call (the shard threads) times the servers.
    static CONNECTIONS: RefCell<HashMap<(usize, usize), memcache::Client>> = RefCell::new(HashMap::new());
}

/// How the ring reaches its servers.
#[derive(Debug, Clone)]
pub struct MemcachedConfig {
    /// `host:port` of each server.
    pub servers: Vec<String>,
    /// Bound on connecting, and on each read or write on a connection.
    pub timeout: Duration,
    /// How long an unhealthy server is skipped by reads before it is tried again.
    pub retry_interval: Duration,
}

pub struct MemcachedRing {
    id: usize,
    /// Runs the connection attempts of every server's connections (r2d2 would start threads
    /// for each one otherwise).
    connector: Arc<ScheduledThreadPool>,
    ring: Ring,
    servers: Vec<Server>,
    config: MemcachedConfig,
}

struct Server {
    address: String,
    url: Url,
    health: Mutex<Health>,
}

#[derive(Default)]
struct Health {
    /// Since when, and how, the server is unhealthy; `None` when healthy.
    failure: Option<(Instant, StoreError)>,
    /// Keys written while it was down, to delete when it is back.
    owed: HashSet<String>,
    owed_overflow: bool,
}

#[derive(thiserror::Error, Debug)]
pub enum ConfigError {
    #[error("cache server {0:?} is not host:port")]
    BadAddress(String),
    #[error("no cache servers configured")]
    NoServers,
}

impl MemcachedRing {
    /// Checks the addresses and prepares the pools; connects lazily, so Weft starts (and serves
    /// from the database) while memcached is still down.
    pub fn new(config: MemcachedConfig) -> Result<MemcachedRing, ConfigError> {
        if config.servers.is_empty() {
            return Err(ConfigError::NoServers);
        }
        let servers = config
            .servers
            .iter()
            .map(|address| {
                let url = server_url(address, config.timeout)?;
                metrics::gauge!("weft_cache_server_up", "server" => address.clone()).set(1.0);
                metrics::counter!("weft_cache_server_lost_total", "server" => address.clone()).absolute(0);
                Ok(Server { address: address.clone(), url, health: Mutex::default() })
            })
            .collect::<Result<Vec<_>, ConfigError>>()?;
        Ok(MemcachedRing {
            id: NEXT_RING.fetch_add(1, Ordering::Relaxed),
            connector: Arc::new(ScheduledThreadPool::new(1)),
            ring: Ring::new(&config.servers),
            servers,
            config,
        })
    }

    /// Runs `op` on this thread's connection to server `index`, connecting first if needed;
    /// an error drops the connection.
    fn on_connection<T>(
        &self,
        index: usize,
        op: impl FnOnce(&memcache::Client) -> Result<T, MemcacheError>,
    ) -> Result<T, MemcacheError> {
        let key = (self.id, index);
        let client = match CONNECTIONS.with(|c| c.borrow_mut().remove(&key)) {
            Some(client) => client,
            None => self.connect(&self.servers[index].url)?,
        };
        let result = op(&client);
        // A command the server refused leaves the connection in step; anything else may not.
        if matches!(result, Ok(_) | Err(MemcacheError::CommandError(_))) {
            CONNECTIONS.with(|c| c.borrow_mut().insert(key, client));
        }
        result
    }

    /// One connection, made now (bounded by the timeout), tested by nothing more.
    fn connect(&self, url: &Url) -> Result<memcache::Client, MemcacheError> {
        let pool = r2d2::Pool::builder()
            .max_size(1)
            .test_on_check_out(false)
            .connection_timeout(self.config.timeout)
            .thread_pool(self.connector.clone())
            // The ring logs a lost server once; r2d2 would log every failed connection attempt.
            .error_handler(Box::new(r2d2::NopErrorHandler))
            .build(ConnectionManager::new(url.clone()))
            .map_err(MemcacheError::PoolError)?;
        memcache::Client::with_pool(pool)
    }

    /// Runs `op` on the server owning `key`. `write` says whether the call changes the key:
    /// skipped reads go to the database, but a skipped write must be known as owed or refused.
    fn call<T>(
        &self,
        key: &str,
        write: bool,
        op: impl Fn(&memcache::Client) -> Result<T, MemcacheError>,
    ) -> Result<T, StoreError> {
        // The ring is never empty (checked in `new`).
        let index = self.ring.server_for(key).unwrap_or(0);
        let server = &self.servers[index];
        if let Some(err) = self.skip(server, key, write) {
            return Err(err);
        }
        let mut retried = false;
        loop {
            let err = match self.on_connection(index, &op) {
                Ok(value) => {
                    self.healthy(index);
                    return Ok(value);
                }
                // The server answered and refused this one command (say, a value over its item
                // size limit): nothing changed there, and it is healthy.
                Err(err @ MemcacheError::CommandError(_)) => {
                    return Err(StoreError::Failed {
                        server: server.address.clone(),
                        message: err.to_string(),
                    })
                }
                Err(err) => err,
            };
            let down = refuses_connections(&server.url, self.config.timeout);
            // A broken connection may be one to a memcached that has since restarted (empty, and
            // then all is well): one more try on a fresh connection tells. Every call here may
            // safely run twice. A timeout is not retried: the server is there but slow.
            if !down && !retried && !is_timeout(&err) {
                retried = true;
                continue;
            }
            let err = self.failed(server, &err, down);
            if write {
                self.owe(server, key, &err);
            }
            return Err(err);
        }
    }

    /// While the server is unhealthy: the error to answer without calling it. Reads skip it for
    /// `retry_interval`. A write is never answered from that memory alone, since the server
    /// may have come back and other webheads may fill it already: while it was down, a plain
    /// TCP connect tells at once whether it still is (then the key is owed); otherwise the
    /// write is tried for real.
    fn skip(&self, server: &Server, key: &str, write: bool) -> Option<StoreError> {
        let (since, err) = server.health().failure.clone()?;
        if !write && since.elapsed() < self.config.retry_interval {
            return Some(err);
        }
        if matches!(err, StoreError::Down { .. }) && refuses_connections(&server.url, self.config.timeout) {
            let mut health = server.health();
            if write {
                owe(&mut health, key);
            } else {
                health.failure = Some((Instant::now(), err.clone()));
            }
            return Some(err);
        }
        None
    }

    fn healthy(&self, index: usize) {
        let server = &self.servers[index];
        let (owed, overflow) = {
            let mut health = server.health();
            if health.failure.is_none() {
                return;
            }
            (std::mem::take(&mut health.owed), std::mem::take(&mut health.owed_overflow))
        };
        let settled = if overflow {
            self.on_connection(index, |c| c.flush()).is_ok()
        } else {
            owed.iter().all(|key| self.on_connection(index, |c| c.delete(key)).is_ok())
        };
        let mut health = server.health();
        if !settled {
            // Still owed; tried again at the next success.
            health.owed.extend(owed);
            health.owed_overflow |= overflow;
            return;
        }
        health.failure = None;
        tracing::info!(server = %server.address, "cache server reachable again");
        metrics::gauge!("weft_cache_server_up", "server" => server.address.clone()).set(1.0);
    }

    /// Classifies a failed call (`down`: nothing accepts connections there), and logs and
    /// counts the transition to unhealthy.
    fn failed(&self, server: &Server, err: &MemcacheError, down: bool) -> StoreError {
        let store_err = if down {
            StoreError::Down { server: server.address.clone() }
        } else {
            StoreError::Failed { server: server.address.clone(), message: err.to_string() }
        };
        let was_healthy = {
            let mut health = server.health();
            let was_healthy = health.failure.is_none();
            health.failure = Some((Instant::now(), store_err.clone()));
            was_healthy
        };
        if was_healthy {
            tracing::warn!(server = %server.address, error = %err, down, "cache server lost; its keys are served from the database");
            metrics::gauge!("weft_cache_server_up", "server" => server.address.clone()).set(0.0);
            metrics::counter!("weft_cache_server_lost_total", "server" => server.address.clone())
                .increment(1);
        }
        store_err
    }

    fn owe(&self, server: &Server, key: &str, err: &StoreError) {
        if matches!(err, StoreError::Down { .. }) {
            owe(&mut server.health(), key);
        }
    }
}

fn owe(health: &mut Health, key: &str) {
    if health.owed.len() >= PENDING_LIMIT {
        health.owed.clear();
        health.owed_overflow = true;
    }
    if !health.owed_overflow {
        health.owed.insert(key.to_owned());
    }
}

impl Server {
    fn health(&self) -> MutexGuard<'_, Health> {
        // Nothing panics while health is locked; a poisoned one is still consistent.
        self.health.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// memcache's URL for one server: binary protocol, `timeout` on every read and write.
fn server_url(address: &str, timeout: Duration) -> Result<Url, ConfigError> {
    let bad = || ConfigError::BadAddress(address.to_owned());
    let (host, port) = address.rsplit_once(':').ok_or_else(bad)?;
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(bad());
    }
    Url::parse(&format!("memcache://{address}?timeout={}", timeout.as_secs_f64())).map_err(|_| bad())
}

fn is_timeout(err: &MemcacheError) -> bool {
    matches!(err, MemcacheError::IOError(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut))
}

/// True when nothing accepts connections at the server's address: the sign of a memcached that
/// is not running (as opposed to slow or unreachable, which time out).
fn refuses_connections(url: &Url, timeout: Duration) -> bool {
    let addrs: Vec<SocketAddr> = match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => (host, port).to_socket_addrs().map(Iterator::collect).unwrap_or_default(),
        _ => vec![],
    };
    !addrs.is_empty()
        && addrs.iter().all(|addr| {
            matches!(
                TcpStream::connect_timeout(addr, timeout),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused
            )
        })
}

impl Store for MemcachedRing {
    fn name(&self) -> &'static str {
        "memcached"
    }

    fn is_local(&self) -> bool {
        false
    }

    fn get(&self, key: &str) -> Result<Option<Versioned>, StoreError> {
        let found = self.call(key, false, |c| c.get::<(Vec<u8>, u32, Option<u64>)>(key))?;
        // The binary protocol always returns a CAS unique with a value.
        Ok(found.map(|(value, _flags, cas)| Versioned { value, cas: cas.unwrap_or(0) }))
    }

    fn add(&self, key: &str, value: &[u8], ttl: u32) -> Result<bool, StoreError> {
        self.call(key, true, |c| match c.add(key, value, ttl) {
            Ok(()) => Ok(true),
            Err(MemcacheError::CommandError(CommandError::KeyExists)) => Ok(false),
            Err(e) => Err(e),
        })
    }

    fn cas(&self, key: &str, value: &[u8], ttl: u32, cas: u64) -> Result<bool, StoreError> {
        self.call(key, true, |c| c.cas(key, value, ttl, cas))
    }

    fn set(&self, key: &str, value: &[u8], ttl: u32) -> Result<(), StoreError> {
        self.call(key, true, |c| c.set(key, value, ttl))
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.call(key, true, |c| c.delete(key).map(|_| ()))
    }
}
