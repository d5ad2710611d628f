//! `Accounts`: the SyncArbiter actor of local accounts. It answers the messages of
//! `requests.rs` by running the operations of `ops.rs` on the tokenserver database, one
//! transaction each; `lanes.rs` starts it on two lanes of threads.

use std::sync::Arc;
use std::time::Instant;

use actix::{Actor, Handler, SyncContext};
use serde_json::Value;
use weft_schema::DbPool;

use super::error::AccountError;
use super::ops;
use super::requests::{AccountsAdmin, AccountsRequest, AdminReply, Shared};

pub struct Accounts {
    pool: DbPool,
    shared: Arc<Shared>,
}

impl Accounts {
    /// One thread's actor (the lanes start them, `lanes.rs`).
    pub(super) fn new(pool: DbPool, shared: Arc<Shared>) -> Accounts {
        Accounts { pool, shared }
    }
}

impl Actor for Accounts {
    type Context = SyncContext<Self>;
}

impl Handler<AccountsRequest> for Accounts {
    type Result = Result<Value, AccountError>;

    fn handle(&mut self, msg: AccountsRequest, _: &mut SyncContext<Self>) -> Self::Result {
        if msg.deadline.is_some_and(|deadline| Instant::now() > deadline) {
            metrics::counter!("weft_accounts_stretch_deadline_missed_total").increment(1);
            return Err(AccountError::Busy { retry_after: self.shared.config.retry_after_seconds });
        }
        let result = ops::run(&self.pool, &self.shared, msg);
        if let Err(AccountError::Database(e)) = &result {
            tracing::warn!(error = %e, "accounts database error");
        }
        result
    }
}

impl Handler<AccountsAdmin> for Accounts {
    type Result = Result<AdminReply, AccountError>;

    fn handle(&mut self, msg: AccountsAdmin, _: &mut SyncContext<Self>) -> Self::Result {
        ops::admin(&self.pool, &self.shared, msg.0)
    }
}
