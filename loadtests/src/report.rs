//! The results of a run, as a human summary on stdout and as a JSON document (`--json`):
//! throughput, records per second, status counts, errors, latency percentiles per request kind,
//! the generator's own CPU use, the setup and verify phases, the ratio to a raw baseline, and
//! with `--tokenserver` the 401s, the held 503s and the users' nodes. Also decides whether the
//! run passed.

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use crate::cli::Options;
use crate::ledger::VerifyOutcome;
use crate::stats::Stats;

/// Everything a finished run measured.
pub struct Outcome {
    pub main: Stats,
    pub elapsed: Duration,
    /// CPU seconds (user + system) this process used during the measured phase.
    pub cpu: f64,
    pub setup: Option<(Stats, Duration)>,
    pub verify: Option<(Stats, VerifyOutcome)>,
}

/// User + system CPU seconds of this process so far (getrusage).
pub fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes the struct we pass, which is plain data of the right type.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut usage) != 0 {
            return 0.0;
        }
        usage
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

impl Outcome {
    fn errors(&self) -> u64 {
        self.main.error_count()
            + self.setup.as_ref().map_or(0, |(s, _)| s.error_count())
            + self.verify.as_ref().map_or(0, |(s, _)| s.error_count())
    }

    fn lost(&self) -> u64 {
        self.verify.as_ref().map_or(0, |(_, v)| v.lost())
    }

    /// No error of any phase (5xx included, but for a 503 with `Retry-After` under
    /// `--tokenserver`), no lost write, and no user served by two nodes at once.
    pub fn passed(&self) -> bool {
        self.errors() == 0 && self.lost() == 0 && self.main.users_served_twice_at_once() == 0
    }

    fn rate(&self, n: u64) -> f64 {
        n as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn to_json(&self, opts: &Options, mode: &str, baseline: Option<&Value>) -> Value {
        let m = &self.main;
        let records = m.records_written + m.records_read;
        let mut doc = json!({
            "tool": "weft-loadtest",
            "version": env!("CARGO_PKG_VERSION"),
            "mode": mode,
            "scenario": opts.scenario.name(),
            "target": if mode == "raw" { Value::Null } else { json!(opts.target.as_str()) },
            "users": opts.users,
            "first_uid": opts.first_uid,
            "concurrency": opts.concurrency,
            "seed": opts.seed,
            "payload_bytes": opts.payload_bytes,
            "records_per_post": opts.records_per_post,
            "records_per_user": opts.records_per_user,
            "bounds": {
                "duration_s": opts.bounds.duration.map(|d| d.as_secs_f64()),
                "requests": opts.bounds.requests,
            },
            "elapsed_s": self.elapsed.as_secs_f64(),
            "requests": m.requests,
            "requests_per_second": self.rate(m.requests),
            "records_written": m.records_written,
            "records_read": m.records_read,
            "records_per_second": self.rate(records),
            "records_written_per_second": self.rate(m.records_written),
            "records_read_per_second": self.rate(m.records_read),
            "status_counts": m.statuses_json(),
            "server_errors_5xx": m.server_errors(),
            "error_count": m.error_count(),
            "errors": m.errors_json(),
            "latency": m.latency_json(),
            "cpu": {
                "seconds": self.cpu,
                "percent_of_one_core": 100.0 * self.cpu / self.elapsed.as_secs_f64().max(1e-9),
            },
            "passed": self.passed(),
        });
        if let Some((s, elapsed)) = &self.setup {
            doc["setup"] = json!({
                "elapsed_s": elapsed.as_secs_f64(),
                "requests": s.requests,
                "records_written": s.records_written,
                "server_errors_5xx": s.server_errors(),
                "error_count": s.error_count(),
                "errors": s.errors_json(),
                "latency": s.latency_json(),
            });
        }
        if let Some((s, v)) = &self.verify {
            doc["verify"] = json!({
                "checked": v.checked,
                "missing": v.missing,
                "mismatched": v.mismatched,
                "overwritten_later": v.overwritten_later,
                "lost": v.lost(),
                "requests": s.requests,
                "error_count": s.error_count(),
                "errors": s.errors_json(),
            });
        }
        if let Some(b) = baseline {
            doc["raw_baseline"] = ratio(&doc, b);
        }
        if opts.tokenserver {
            doc["tokenserver"] = self.tokenserver_json();
        }
        doc
    }

    /// `--tokenserver`: what the nodes told the users, over the measured phase.
    fn tokenserver_json(&self) -> Value {
        let m = &self.main;
        let moved: Vec<u64> = m.nodes.iter().filter(|(_, n)| n.len() > 1).map(|(uid, _)| *uid).collect();
        json!({
            "unauthorized_401": m.unauthorized,
            "held_503_retry_after": m.held,
            "users_held": m.held_users.len(),
            "users_held_and_seen_on_a_new_node": m.held_users.iter().filter(|u| moved.contains(u)).count(),
            "users_on_two_nodes": m.users_on_two_nodes(),
            "users_served_by_two_nodes_at_once": m.users_served_twice_at_once(),
        })
    }

    pub fn print_summary(&self, doc: &Value) {
        let m = &self.main;
        let f = |key: &str| doc[key].as_f64().unwrap_or(0.0);
        println!(
            "weft-loadtest: {} ({}), {:.1} s",
            doc["scenario"].as_str().unwrap_or("?"),
            doc["mode"],
            f("elapsed_s")
        );
        println!(
            "  requests {}  ({:.1}/s)   records written {} read {}  ({:.1} records/s)",
            m.requests,
            f("requests_per_second"),
            m.records_written,
            m.records_read,
            f("records_per_second")
        );
        let statuses: Vec<String> = m.statuses.iter().map(|(s, n)| format!("{s}: {n}")).collect();
        println!("  statuses  {}", if statuses.is_empty() { "-".to_string() } else { statuses.join(", ") });
        println!(
            "  5xx {}   errors {}   generator CPU {:.2} s ({:.0}% of one core)",
            m.server_errors(),
            m.error_count(),
            self.cpu,
            doc["cpu"]["percent_of_one_core"].as_f64().unwrap_or(0.0)
        );
        for line in m.latency_lines() {
            println!("{line}");
        }
        if let Some(t) = doc.get("tokenserver") {
            println!(
                "  tokenserver: {} × 401 (a new token each), {} × 503 + Retry-After to {} users ({} of them seen \
                 on a new node later); {} users served by two nodes in turn, {} by two nodes at once",
                t["unauthorized_401"],
                t["held_503_retry_after"],
                t["users_held"],
                t["users_held_and_seen_on_a_new_node"],
                t["users_on_two_nodes"],
                t["users_served_by_two_nodes_at_once"]
            );
        }
        print_errors("errors", m);
        if let Some((s, elapsed)) = &self.setup {
            println!(
                "  setup: {} requests in {:.1} s, {} records written, {} errors",
                s.requests,
                elapsed.as_secs_f64(),
                s.records_written,
                s.error_count()
            );
            print_errors("setup errors", s);
        }
        if let Some((s, v)) = &self.verify {
            println!(
                "  verify: {} acknowledged records checked, {} missing, {} mismatched, {} overwritten later, {} errors",
                v.checked,
                v.missing,
                v.mismatched,
                v.overwritten_later,
                s.error_count()
            );
            print_errors("verify errors", s);
        }
        if let Some(r) = doc.get("raw_baseline") {
            println!(
                "  vs raw baseline: {:.1}% of its requests/s, {:.1}% of its records/s",
                100.0 * r["ratio_requests"].as_f64().unwrap_or(0.0),
                100.0 * r["ratio_records"].as_f64().unwrap_or(0.0)
            );
        }
        println!("  result: {}", if self.passed() { "PASS" } else { "FAIL" });
    }
}

fn print_errors(title: &str, stats: &Stats) {
    if stats.errors.is_empty() {
        return;
    }
    println!("  {title}:");
    for (message, n) in &stats.errors {
        println!("    {n:>7} × {message}");
    }
}

/// This run's throughput as a fraction of a raw run's.
fn ratio(doc: &Value, baseline: &Value) -> Value {
    let r = |key: &str| {
        let (mine, raw) = (doc[key].as_f64().unwrap_or(0.0), baseline[key].as_f64().unwrap_or(0.0));
        if raw > 0.0 {
            json!(mine / raw)
        } else {
            Value::Null
        }
    };
    json!({
        "requests_per_second": baseline["requests_per_second"],
        "records_per_second": baseline["records_per_second"],
        "ratio_requests": r("requests_per_second"),
        "ratio_records": r("records_per_second"),
    })
}

/// Reads a raw run's JSON result, checking it is one of the same scenario.
pub fn load_baseline(path: &Path, scenario: &str) -> Result<Value, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("--raw-baseline {}: {e}", path.display()))?;
    let doc: Value = serde_json::from_str(&text)
        .map_err(|e| format!("--raw-baseline {}: not JSON: {e}", path.display()))?;
    if doc["mode"] != "raw" || doc["scenario"] != scenario {
        return Err(format!(
            "--raw-baseline {}: not a raw result of the {scenario} scenario",
            path.display()
        ));
    }
    Ok(doc)
}
