//! `Accounts`: the SyncArbiter actor of local accounts. One message per HTTP request
//! (`AccountsRequest`: who the client is, its credentials, the operation) and one per admin
//! command (`AccountsAdmin`), and the push worker's word that a device's push subscription is
//! gone (`PushEndpointExpired`). Credentials are checked here, not in handlers, because a Hawk
//! key lives in the database: the handler only hands over what the client signed.

use std::sync::Arc;
use std::time::Instant;

use actix::{Actor, Handler, SyncContext};
use serde_json::Value;
use weft_schema::DbPool;

use super::account::write;
use super::commands;
use super::error::AccountError;
use super::ops;
use super::requests::{AccountsAdmin, AccountsRequest, AdminReply, PushEndpointExpired};
use super::shared::Shared;

/// One thread of a lane (`lanes`, which starts them): the pool and the state of both lanes.
pub struct Accounts {
    pub(super) pool: DbPool,
    pub(super) shared: Arc<Shared>,
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

impl Handler<PushEndpointExpired> for Accounts {
    type Result = ();

    fn handle(&mut self, msg: PushEndpointExpired, _: &mut SyncContext<Self>) {
        if let Err(e) = write(&self.pool, |tx| commands::push_endpoint_expired(tx, &msg.0)) {
            tracing::warn!(error = %e, "a device's expired push endpoint was not marked");
        }
    }
}
