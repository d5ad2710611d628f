//! The purge of replaced users in `weft serve`: a pass every `tokenserver.retired_purge.interval_seconds`
//! (±30 % at random, as PY did, so that several webheads drift apart), on a tokenserver database
//! actor of its own (one thread, one connection at a time) so that it never takes the token
//! requests' threads. Each pass ends in one log line and the run metrics.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix::Addr;
use rand::Rng;
use weft_actors::tokenserver::TokenserverDb;

use super::target::DataDeleter;
use super::{purge_retired_users, register_metrics, PurgeOptions};
use crate::config::RetiredPurgeSettings;

/// The first pass comes this soon after start at most, so that a server restarted more often
/// than the interval still purges.
const FIRST_PASS_AFTER: Duration = Duration::from_secs(60);

/// Runs passes until the actix system stops. Must run inside it.
pub fn start(settings: &RetiredPurgeSettings, db: Addr<TokenserverDb>, deleter: DataDeleter) {
    let interval = Duration::from_secs(settings.interval_seconds);
    let options = PurgeOptions {
        grace_period: Duration::from_secs(settings.grace_period_seconds),
        max_users: settings.max_users,
        node: None,
        dry_run: false,
    };
    register_metrics();
    actix_web::rt::spawn(async move {
        let mut wait = interval.min(FIRST_PASS_AFTER);
        loop {
            actix_web::rt::time::sleep(wait).await;
            run_once(&db, &deleter, &options).await;
            wait = interval.mul_f64(rand::thread_rng().gen_range(0.7..=1.3));
        }
    });
}

async fn run_once(db: &Addr<TokenserverDb>, deleter: &DataDeleter, options: &PurgeOptions) {
    match purge_retired_users(db, deleter, options, |_, _| {}).await {
        Ok(s) => {
            metrics::counter!("weft_retired_purge_runs_total", "outcome" => "success").increment(1);
            let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
            metrics::gauge!("weft_retired_purge_last_success_timestamp_seconds").set(now);
            tracing::info!(
                backlog = s.backlog,
                purged = s.purged,
                nodeless = s.nodeless,
                downed = s.downed,
                failed = s.failed,
                stopped_at_max = s.stopped_at_max,
                "purge of replaced users: pass done"
            );
        }
        Err(e) => {
            metrics::counter!("weft_retired_purge_runs_total", "outcome" => "failure").increment(1);
            tracing::warn!(error = %e, "purge of replaced users: pass failed; the next one goes on");
        }
    }
}
