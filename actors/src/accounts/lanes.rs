//! The two lanes of the accounts actor (local-accounts.md §6). A sign-in (create, login, reset)
//! stretches a password for a few hundred milliseconds of CPU; it runs on its own threads, as
//! many as `max_concurrent_stretches`, so that every other account operation (a device list, a
//! token for Sync) never queues behind stretches. A sign-in carries a deadline: one that was not
//! started by then is answered 503 + Retry-After (FxA's errno 201) without being run, so a burst
//! of sign-ins costs at most the stretches that fit before the deadline. The sign-in threads
//! also run at a lower CPU priority, so that on a machine whose cores they fill, Sync requests
//! and the other account operations still get the CPU first.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{Addr, SyncArbiter};
use serde_json::Value;
use weft_schema::DbPool;

use super::actor::Accounts;
use super::commands::COMMANDS_PER_ACCOUNT;
use super::error::AccountError;
use super::jwt::AccessTokens;
use super::limits::{NonceCache, RateLimiter};
use super::push;
use super::requests::{AccountsAdmin, AccountsRequest, AdminOp, AdminReply, PushEndpointExpired};
use super::shared::{AccountsConfig, Shared};
use crate::ActorUnavailable;

impl Accounts {
    /// Starts both lanes on `pool` and the push worker; the answer routes each request to its
    /// lane. Fails only when the push worker's HTTP client cannot be built.
    pub fn start(
        pool: DbPool,
        config: AccountsConfig,
        tokens: AccessTokens,
    ) -> Result<AccountsAddr, reqwest::Error> {
        let window = config.rate_limit_window;
        let (push, push_worker) = push::queue(&config.push)?;
        // Exported from the start, at 0, like the maps' series.
        metrics::counter!("weft_accounts_stretch_deadline_missed_total").increment(0);
        let shared = Arc::new(Shared {
            nonces: NonceCache::new(u64::try_from(config.hawk_window_seconds).unwrap_or(60)),
            per_address: RateLimiter::new("per_address", config.rate_limit_per_address, window),
            per_session: RateLimiter::new("per_session", config.rate_limit_per_session, window),
            failed_logins: RateLimiter::new(
                "failed_logins",
                config.failed_logins_per_account_address,
                window,
            ),
            commands_per_account: RateLimiter::new("commands_per_account", COMMANDS_PER_ACCOUNT, window),
            push,
            config,
            tokens,
        });
        let lane = |threads: usize, sign_ins: bool| {
            let (pool, shared) = (pool.clone(), shared.clone());
            SyncArbiter::start(threads.max(1), move || {
                // The factory runs on each new thread of the lane.
                if sign_ins {
                    lower_priority();
                }
                Accounts { pool: pool.clone(), shared: shared.clone() }
            })
        };
        let requests = lane(shared.config.threads, false);
        if let Some(worker) = push_worker {
            let accounts = requests.clone();
            worker.start(move |expired| accounts.do_send(PushEndpointExpired(expired)));
        }
        Ok(AccountsAddr::new(
            requests,
            lane(shared.config.max_concurrent_stretches, true),
            shared.config.stretch_deadline,
        ))
    }
}

#[derive(Clone)]
pub struct AccountsAddr {
    requests: Addr<Accounts>,
    sign_ins: Addr<Accounts>,
    deadline: Duration,
}

impl AccountsAddr {
    fn new(requests: Addr<Accounts>, sign_ins: Addr<Accounts>, deadline: Duration) -> AccountsAddr {
        AccountsAddr { requests, sign_ins, deadline }
    }

    /// Runs one request on its lane. A sign-in's deadline starts now, so the time spent waiting
    /// for room in the lane's mailbox counts too.
    pub async fn request(&self, mut msg: AccountsRequest) -> Result<Value, AccountError> {
        let lane = if msg.op.stretches() {
            msg.deadline = Some(Instant::now() + self.deadline);
            &self.sign_ins
        } else {
            &self.requests
        };
        lane.send(msg).await.map_err(ActorUnavailable::of("accounts"))?
    }

    /// Runs one `weft account` command.
    pub async fn admin(&self, op: AdminOp) -> Result<AdminReply, AccountError> {
        self.requests.send(AccountsAdmin(op)).await.map_err(ActorUnavailable::of("accounts"))?
    }
}

/// How much nicer than the rest of the process a sign-in thread runs (setpriority(2) units).
const SIGN_IN_NICENESS: libc::c_int = 10;

/// Lowers the calling thread's CPU priority (Linux: a thread has its own nice value). Best
/// effort: where it fails the thread runs at the process's priority, as everywhere else.
pub(super) fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: plain system calls on the calling thread's own id, no memory is passed.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        let current = libc::getpriority(libc::PRIO_PROCESS, tid);
        libc::setpriority(libc::PRIO_PROCESS, tid, current.saturating_add(SIGN_IN_NICENESS).min(19));
    }
}
