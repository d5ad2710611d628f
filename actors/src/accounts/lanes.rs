//! The two lanes of the accounts actor (local-accounts.md §6). A sign-in (create, login, reset)
//! stretches a password for a few hundred milliseconds of CPU; it runs on its own threads, as
//! many as `max_concurrent_stretches`, so that every other account operation (a device list, a
//! token for Sync) never queues behind stretches. A sign-in carries a deadline: one that was not
//! started by then is answered 503 + Retry-After (FxA's errno 201) without being run, so a burst
//! of sign-ins costs at most the stretches that fit before the deadline. The sign-in threads
//! also run at a lower CPU priority, so that on a machine whose cores they fill, Sync requests
//! and the other account operations still get the CPU first.

use std::time::{Duration, Instant};

use actix::Addr;
use serde_json::Value;

use super::actor::{Accounts, AccountsAdmin, AccountsRequest, AdminOp, AdminReply};
use super::error::AccountError;
use crate::ActorUnavailable;

#[derive(Clone)]
pub struct AccountsAddr {
    requests: Addr<Accounts>,
    sign_ins: Addr<Accounts>,
    deadline: Duration,
}

impl AccountsAddr {
    pub(super) fn new(
        requests: Addr<Accounts>,
        sign_ins: Addr<Accounts>,
        deadline: Duration,
    ) -> AccountsAddr {
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
