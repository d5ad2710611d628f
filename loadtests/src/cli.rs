//! The command line: every option, its defaults and its bounds, and the checks that keep a run
//! loopback-only and finite before anything is sent. `Options` is what the rest of the tool
//! reads; nothing else parses arguments.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use reqwest::Url;

/// A run with neither `--duration` nor `--requests` lasts this long.
const DEFAULT_DURATION_S: f64 = 10.0;
/// Hard ceilings: the tool is for this machine's loopback, not an endless soak.
const MAX_DURATION_S: f64 = 3600.0;
const MAX_REQUESTS: u64 = 100_000_000;
const MAX_USERS: u64 = 1_000_000;
const MAX_CONCURRENCY: usize = 1024;
/// The server's default `max_post_records`; more per POST would only collect `retry bso`.
const MAX_RECORDS_PER_POST: usize = 100;
/// The server's default `max_total_records` per batch.
const MAX_RECORDS_PER_USER: usize = 10_000;
/// Just under the default `max_record_payload_bytes` (2.5 MiB).
const MAX_PAYLOAD_BYTES: usize = 2_500_000;
const MIN_PAYLOAD_BYTES: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// Periodic syncs: conditional info/collections, sometimes meta/global + crypto/keys,
    /// tabs, new history, clients.
    Sync,
    /// info/collections plus `GET storage/history?newer=…&full=1&limit=100` on seeded users.
    Read,
    /// `POST` of `--records-per-post` BSOs of `--payload-bytes` each.
    Write,
    /// Every user re-uploads bookmarks, history, passwords and forms through batch uploads.
    Launch,
    /// Tokenserver traffic (`GET /1.0/sync/1.5`), good and bad requests mixed.
    Token,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Sync => "sync",
            Scenario::Read => "read",
            Scenario::Write => "write",
            Scenario::Launch => "launch",
            Scenario::Token => "token",
        }
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "weft-loadtest",
    version,
    about = "A population of Firefox Sync clients for load-testing Weft (loopback targets only)"
)]
pub struct Cli {
    /// What the clients do.
    #[arg(long, value_enum, required_unless_present = "print_test_jwk")]
    pub scenario: Option<Scenario>,
    /// The server's base URL (http only).
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    pub target: String,
    /// Allow a target (or raw database host) that is not loopback.
    #[arg(long)]
    pub allow_remote_host: bool,
    /// Number of distinct users (uids `--first-uid` onwards).
    #[arg(long, default_value_t = 100)]
    pub users: u64,
    /// First uid of the population.
    #[arg(long, default_value_t = 1)]
    pub first_uid: u64,
    /// Requests in flight at once (one task each).
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Stop after this many seconds of measured load.
    #[arg(long)]
    pub duration: Option<f64>,
    /// Stop after this many measured requests (raw mode: operations).
    #[arg(long)]
    pub requests: Option<u64>,
    /// Seed of every random choice (users, mixes, ids, payloads).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Size of each BSO payload, in bytes.
    #[arg(long, default_value_t = 500)]
    pub payload_bytes: usize,
    /// BSOs per POST (write scenario; chunk size of batch uploads).
    #[arg(long, default_value_t = 100)]
    pub records_per_post: usize,
    /// Records each user uploads in `launch` and is seeded with in `read`.
    #[arg(long, default_value_t = 1000)]
    pub records_per_user: usize,
    /// The node's master secret, to mint tokens (storage scenarios).
    #[arg(long, env = "WEFT_MASTER_SECRET", hide_env_values = true)]
    pub master_secret: Option<String>,
    /// The node URL written into minted tokens (default: the target).
    #[arg(long)]
    pub node_url: Option<String>,
    /// Storage scenarios: get each user's token from the target's tokenserver as Firefox does
    /// (`GET /1.0/sync/1.5` with an OAuth JWT of the built-in test key, which the server must
    /// trust: `--print-test-jwk`) and send its requests to the node its `api_endpoint` names;
    /// on a 401 fetch a new token, on a 503 with `Retry-After` leave the user alone that long
    /// (both counted apart, not as errors). Users whose node changes (a server-side move) are
    /// followed; the summary says whether any was served by two nodes at once.
    #[arg(long, conflicts_with_all = ["node_url", "raw"])]
    pub tokenserver: bool,
    /// Write the JSON result to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Read back every acknowledged write at the end; exit non-zero if one is missing.
    #[arg(long)]
    pub verify: bool,
    /// Raw limit mode: do the scenario's database work directly on this database
    /// (`sqlite:PATH`, `postgres://…/DB` or `mysql://…/DB`), without HTTP.
    #[arg(long, value_name = "DATABASE_URL")]
    pub raw: Option<String>,
    /// A JSON result of a raw run of the same scenario: the summary reports the ratio to it.
    #[arg(long, value_name = "FILE")]
    pub raw_baseline: Option<PathBuf>,
    /// Per-request timeout, seconds.
    #[arg(long, default_value_t = 30)]
    pub timeout: u64,
    /// `iss` claim of the OAuth JWTs of the token scenario.
    #[arg(long, default_value = "https://accounts.firefox.com")]
    pub oauth_issuer: String,
    /// No progress bar.
    #[arg(long)]
    pub no_progress: bool,
    /// Print the public JWK of the built-in test OAuth key (for the server's configuration) and exit.
    #[arg(long)]
    pub print_test_jwk: bool,
}

/// Where the run stops: whichever bound comes first.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub duration: Option<Duration>,
    pub requests: Option<u64>,
}

/// Validated options.
#[derive(Debug, Clone)]
pub struct Options {
    pub scenario: Scenario,
    pub target: Url,
    pub users: u64,
    pub first_uid: u64,
    pub concurrency: usize,
    pub bounds: Bounds,
    pub seed: u64,
    pub payload_bytes: usize,
    pub records_per_post: usize,
    pub records_per_user: usize,
    pub master_secret: String,
    pub node_url: String,
    pub tokenserver: bool,
    pub allow_remote_host: bool,
    pub json: Option<PathBuf>,
    pub verify: bool,
    pub raw: Option<String>,
    pub raw_baseline: Option<PathBuf>,
    pub timeout: Duration,
    pub oauth_issuer: String,
    pub progress: bool,
}

impl Cli {
    /// Checks every bound and the loopback rule; the error is one line for the user.
    pub fn validate(self) -> Result<Options, String> {
        let scenario = self.scenario.ok_or("--scenario is required")?;
        let target = Url::parse(&self.target).map_err(|e| format!("--target {:?}: {e}", self.target))?;
        if target.scheme() != "http" {
            return Err(format!("--target {target}: only http:// is supported (no TLS is built in)"));
        }
        if self.raw.is_none() && !self.allow_remote_host && !is_loopback_url(&target) {
            return Err(format!(
                "--target {target} is not a loopback address; pass --allow-remote-host to load another host"
            ));
        }
        if let Some(raw) = &self.raw {
            check_raw_url(raw, self.allow_remote_host)?;
            if scenario == Scenario::Token {
                return Err("--raw: the token scenario has no database work to compare with".into());
            }
        }
        let bounds = bounds(self.duration, self.requests)?;
        in_range("--users", self.users, 1, MAX_USERS)?;
        in_range("--concurrency", self.concurrency, 1, MAX_CONCURRENCY)?;
        in_range("--records-per-post", self.records_per_post, 1, MAX_RECORDS_PER_POST)?;
        in_range("--records-per-user", self.records_per_user, 1, MAX_RECORDS_PER_USER)?;
        in_range("--payload-bytes", self.payload_bytes, MIN_PAYLOAD_BYTES, MAX_PAYLOAD_BYTES)?;
        in_range("--timeout", self.timeout, 1, 600)?;
        // uids are at most 10 digits in storage URLs (storage-api.md §1).
        let last_uid = self.first_uid.checked_add(self.users - 1).ok_or("--first-uid + --users overflows")?;
        if last_uid > 9_999_999_999 {
            return Err("--first-uid + --users must stay below 10^10 (uids have at most 10 digits)".into());
        }
        if self.tokenserver && scenario == Scenario::Token {
            return Err("--tokenserver: the token scenario always talks to the tokenserver".into());
        }
        let needs_secret = self.raw.is_none() && scenario != Scenario::Token && !self.tokenserver;
        let master_secret = match self.master_secret {
            Some(secret) if !secret.is_empty() => secret,
            _ if needs_secret => {
                return Err("--master-secret (or WEFT_MASTER_SECRET) is required to mint tokens".into())
            }
            _ => String::new(),
        };
        let node_url = self.node_url.unwrap_or_else(|| target.as_str().trim_end_matches('/').to_string());
        Ok(Options {
            scenario,
            target,
            users: self.users,
            first_uid: self.first_uid,
            concurrency: self.concurrency,
            bounds,
            seed: self.seed,
            payload_bytes: self.payload_bytes,
            records_per_post: self.records_per_post,
            records_per_user: self.records_per_user,
            master_secret,
            node_url,
            tokenserver: self.tokenserver,
            allow_remote_host: self.allow_remote_host,
            json: self.json,
            verify: self.verify,
            raw: self.raw,
            raw_baseline: self.raw_baseline,
            timeout: Duration::from_secs(self.timeout),
            oauth_issuer: self.oauth_issuer,
            progress: !self.no_progress,
        })
    }
}

fn bounds(duration: Option<f64>, requests: Option<u64>) -> Result<Bounds, String> {
    let duration = match (duration, requests) {
        (None, None) => Some(DEFAULT_DURATION_S),
        (d, _) => d,
    };
    if let Some(d) = duration {
        if !(d > 0.0 && d <= MAX_DURATION_S) {
            return Err(format!("--duration must be in (0, {MAX_DURATION_S}] seconds"));
        }
    }
    if let Some(r) = requests {
        in_range("--requests", r, 1, MAX_REQUESTS)?;
    }
    Ok(Bounds { duration: duration.map(Duration::from_secs_f64), requests })
}

fn in_range<T: PartialOrd + std::fmt::Display>(name: &str, value: T, min: T, max: T) -> Result<(), String> {
    if value < min || value > max {
        return Err(format!("{name} must be between {min} and {max} (got {value})"));
    }
    Ok(())
}

/// `localhost`, 127.0.0.0/8 or ::1.
pub fn is_loopback_url(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// SQLite files are local by nature; a MySQL or PostgreSQL URL must name a loopback host like
/// `--target`.
fn check_raw_url(raw: &str, allow_remote: bool) -> Result<(), String> {
    if raw.starts_with("sqlite:") {
        return Ok(());
    }
    if !(raw.starts_with("mysql://") || weft_schema::pool::is_postgres_url(raw)) {
        return Err(format!(
            "--raw {raw:?}: expected sqlite:PATH, postgres://…/DATABASE or mysql://…/DATABASE"
        ));
    }
    let url = Url::parse(raw).map_err(|e| format!("--raw: {e}"))?;
    if url.path().trim_matches('/').is_empty() {
        return Err(format!("--raw: the {}:// URL must name a database", url.scheme()));
    }
    let loopback = match url.host_str() {
        Some(host) => {
            host.eq_ignore_ascii_case("localhost")
                || host
                    .trim_matches(|c| c == '[' || c == ']')
                    .parse::<IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        None => false,
    };
    if !loopback && !allow_remote {
        return Err("--raw: the database host is not loopback; pass --allow-remote-host".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).expect("test URL")
    }

    #[test]
    fn loopback_rule() {
        assert!(is_loopback_url(&url("http://127.0.0.1:8000")));
        assert!(is_loopback_url(&url("http://127.3.2.1")));
        assert!(is_loopback_url(&url("http://localhost:1")));
        assert!(is_loopback_url(&url("http://[::1]:8000")));
        assert!(!is_loopback_url(&url("http://10.0.0.1")));
        assert!(!is_loopback_url(&url("http://example.com")));
        assert!(check_raw_url("mysql://root@127.0.0.1:3306/db", false).is_ok());
        assert!(check_raw_url("mysql://root@10.1.1.1:3306/db", false).is_err());
        assert!(check_raw_url("mysql://root@127.0.0.1:3306", false).is_err());
        assert!(check_raw_url("sqlite:/tmp/x.db", false).is_ok());
        assert!(check_raw_url("postgres://postgres@127.0.0.1:5432/db", false).is_ok());
        assert!(check_raw_url("postgresql://postgres@[::1]/db", false).is_ok());
        assert!(check_raw_url("postgres://postgres@10.1.1.1:5432/db", false).is_err());
        assert!(check_raw_url("postgres://postgres@127.0.0.1:5432", false).is_err());
    }

    #[test]
    fn always_bounded() {
        let b = bounds(None, None).expect("defaults");
        assert_eq!(b.duration, Some(Duration::from_secs(10)));
        let b = bounds(None, Some(5)).expect("requests only");
        assert!(b.duration.is_none());
        assert!(bounds(Some(0.0), None).is_err());
        assert!(bounds(Some(f64::NAN), None).is_err());
        assert!(bounds(Some(1e9), None).is_err());
        assert!(bounds(None, Some(0)).is_err());
    }
}
