//! How the `weft node` and `weft user` commands reach the tokenserver database: a one-thread
//! `TokenserverDb` actor in a fresh actix system (`send` one message, or several `with_db` on
//! one connection), the node URL they take (`node_url`), and the error they return for `main`
//! to print (`AdminError`).

use actix::{Addr, Handler, Message};
use futures_util::future::LocalBoxFuture;
use weft_actors::token_verifier::token::canonical_node;
use weft_actors::tokenserver::{TokenserverDb, TokenserverError};
use weft_actors::ActorUnavailable;

use crate::commands::serve::startup;
use crate::config::Settings;

/// `nodes.node` is VARCHAR(64).
const MAX_NODE_URL_LEN: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Startup(#[from] startup::StartupError),
    #[error(transparent)]
    Tokenserver(#[from] TokenserverError),
    #[error(transparent)]
    Move(#[from] weft_actors::user_move::MoveError),
    #[error(transparent)]
    Database(#[from] weft_schema::DbError),
    #[error("{0}")]
    Invalid(String),
}

/// A node URL in the canonical spelling tokens and the storage side use.
pub fn node_url(url: &str) -> Result<String, AdminError> {
    let url = canonical_node(url.trim());
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(AdminError::Invalid(format!("{url:?} is not an http(s) URL")));
    }
    if url.len() > MAX_NODE_URL_LEN {
        return Err(AdminError::Invalid(format!("{url:?} is longer than {MAX_NODE_URL_LEN} characters")));
    }
    Ok(url)
}

/// Sends `msg` to a one-thread `TokenserverDb` on the configured database, in a fresh actix
/// system, and waits for the answer.
pub fn send<M, R>(settings: &Settings, msg: M) -> Result<R, AdminError>
where
    M: Message<Result = Result<R, TokenserverError>> + Send + 'static,
    R: Send + 'static,
    TokenserverDb: Handler<M>,
{
    with_db(settings, |db| Box::pin(async move { ask(&db, msg).await }))
}

/// Runs `steps` against a one-thread `TokenserverDb` in one fresh actix system: a command that
/// looks before it changes uses one connection throughout.
pub fn with_db<R>(
    settings: &Settings,
    steps: impl FnOnce(Addr<TokenserverDb>) -> LocalBoxFuture<'static, Result<R, AdminError>>,
) -> Result<R, AdminError> {
    let pool = startup::tokenserver_pool(settings, settings.run_migrations)?;
    let mut config = startup::tokenserver_db_config(settings);
    config.threads = 1;
    actix::System::new().block_on(async move { steps(TokenserverDb::start(pool, config)).await })
}

pub async fn ask<M, R>(db: &Addr<TokenserverDb>, msg: M) -> Result<R, AdminError>
where
    M: Message<Result = Result<R, TokenserverError>> + Send + 'static,
    R: Send + 'static,
    TokenserverDb: Handler<M>,
{
    Ok(db
        .send(msg)
        .await
        .map_err(ActorUnavailable::of("tokenserver database"))
        .map_err(TokenserverError::from)??)
}
