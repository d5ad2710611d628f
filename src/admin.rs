//! The node-management commands of the tokenserver (tokenserver-api.md §10): `weft node
//! add|update|remove|unassign|list` and `weft user allocate`. Each opens the configured
//! tokenserver database, sends one message to a one-thread `TokenserverDb` actor, prints the
//! outcome on stdout and returns an error for `main` to print (non-zero exit).

use actix::{Handler, Message};
use clap::{Args, Subcommand};
use weft_actors::token_verifier::token::canonical_node;
use weft_actors::tokenserver::{
    AddNode, AllocateUser, ListNodes, RemoveNode, TokenserverDb, TokenserverError, UnassignNode, UpdateNode,
};
use weft_actors::ActorUnavailable;
use weft_schema::models::tokenserver::{NodeFields, NodeRow};

use crate::config::Settings;
use crate::startup;

/// `nodes.node` is VARCHAR(64).
const MAX_NODE_URL_LEN: usize = 64;

#[derive(Subcommand)]
pub enum NodeCommand {
    /// Register a storage node for new users.
    Add {
        /// The node's public origin as clients reach it, e.g. https://sync-1.example.com
        url: String,
        /// Most users the node may ever hold.
        capacity: i32,
        /// Slots open at once (default: 10 % of capacity, rounded up; more are released on demand).
        #[arg(long)]
        available: Option<i32>,
        #[arg(long, default_value_t = 0)]
        current_load: i32,
        /// Out of service: no new users, no storage purges.
        #[arg(long)]
        downed: bool,
        /// Keep the node's users but give it no new ones.
        #[arg(long)]
        backoff: bool,
    },
    /// Change columns of a node; only the options given are changed.
    Update {
        url: String,
        #[arg(long)]
        capacity: Option<i32>,
        #[arg(long)]
        available: Option<i32>,
        #[arg(long)]
        current_load: Option<i32>,
        /// `--downed` sets the flag, `--downed 0` clears it.
        #[arg(long, num_args = 0..=1, default_missing_value = "1", value_parser = flag_value)]
        downed: Option<i32>,
        /// `--backoff` sets the flag, `--backoff 0` clears it.
        #[arg(long, num_args = 0..=1, default_missing_value = "1", value_parser = flag_value)]
        backoff: Option<i32>,
    },
    /// Delete a node and mark every user on it replaced (they move at their next sync).
    Remove { url: String },
    /// Mark every user on a node replaced; the node stays (e.g. to drain it after --backoff).
    Unassign { url: String },
    /// Show every node with capacity, load, available slots and flags.
    List,
}

#[derive(Subcommand)]
pub enum UserCommand {
    /// Assign a user to a node: a new record on NODE (keeping keys and generation), or, without
    /// NODE, the user's current node (a new user gets the best node).
    Allocate(AllocateArgs),
}

#[derive(Args)]
pub struct AllocateArgs {
    /// `<fxa uid>@<fxa_email_domain>`; a bare fxa uid gets the configured domain.
    email: String,
    node: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("must be 0 or 1")]
struct NotAFlag;

fn flag_value(s: &str) -> Result<i32, NotAFlag> {
    match s {
        "0" => Ok(0),
        "1" => Ok(1),
        _ => Err(NotAFlag),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Startup(#[from] startup::StartupError),
    #[error(transparent)]
    Tokenserver(#[from] TokenserverError),
    #[error("{0}")]
    Invalid(String),
}

/// A node URL in the canonical spelling tokens and the storage side use.
fn node_url(url: &str) -> Result<String, AdminError> {
    let url = canonical_node(url.trim());
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(AdminError::Invalid(format!("{url:?} is not an http(s) URL")));
    }
    if url.len() > MAX_NODE_URL_LEN {
        return Err(AdminError::Invalid(format!("{url:?} is longer than {MAX_NODE_URL_LEN} characters")));
    }
    Ok(url)
}

fn non_negative(what: &str, value: Option<i32>) -> Result<(), AdminError> {
    match value {
        Some(v) if v < 0 => Err(AdminError::Invalid(format!("{what} must not be negative"))),
        _ => Ok(()),
    }
}

/// Sends `msg` to a one-thread `TokenserverDb` on the configured database, in a fresh actix
/// system, and waits for the answer.
fn send<M, R>(settings: &Settings, msg: M) -> Result<R, AdminError>
where
    M: Message<Result = Result<R, TokenserverError>> + Send + 'static,
    R: Send + 'static,
    TokenserverDb: Handler<M>,
{
    let pool = startup::tokenserver_pool(settings, settings.run_migrations)?;
    let mut config = startup::tokenserver_db_config(settings);
    config.threads = 1;
    actix::System::new().block_on(async move {
        let db = TokenserverDb::start(pool, config);
        Ok(db
            .send(msg)
            .await
            .map_err(ActorUnavailable::of("tokenserver database"))
            .map_err(TokenserverError::from)??)
    })
}

pub fn run_node(settings: &Settings, command: NodeCommand) -> Result<(), AdminError> {
    match command {
        NodeCommand::Add { url, capacity, available, current_load, downed, backoff } => {
            let url = node_url(&url)?;
            if capacity < 1 {
                return Err(AdminError::Invalid("capacity must be at least 1".into()));
            }
            non_negative("--available", available)?;
            non_negative("--current-load", Some(current_load))?;
            let fields = NodeFields {
                capacity: Some(capacity),
                // None: the tokenserver's default (§10.1).
                available,
                current_load: Some(current_load),
                downed: Some(i32::from(downed)),
                backoff: Some(i32::from(backoff)),
            };
            let node = send(settings, AddNode { url, fields })?;
            println!("added node {}", node.node);
            print_nodes(&[node]);
        }
        NodeCommand::Update { url, capacity, available, current_load, downed, backoff } => {
            let url = node_url(&url)?;
            non_negative("--capacity", capacity)?;
            non_negative("--available", available)?;
            non_negative("--current-load", current_load)?;
            let fields = NodeFields { capacity, available, current_load, downed, backoff };
            if fields == NodeFields::default() {
                return Err(AdminError::Invalid(
                    "nothing to update: give --capacity, --available, --current-load, --downed or --backoff"
                        .into(),
                ));
            }
            let node = send(settings, UpdateNode { url, fields })?;
            println!("updated node {}", node.node);
            print_nodes(&[node]);
        }
        NodeCommand::Remove { url } => {
            let url = node_url(&url)?;
            let shown = url.clone();
            let users = send(settings, RemoveNode { url })?;
            println!("removed node {shown}; {users} user record(s) marked replaced (reassigned at their next sync)");
        }
        NodeCommand::Unassign { url } => {
            let url = node_url(&url)?;
            let shown = url.clone();
            let users = send(settings, UnassignNode { url })?;
            println!("unassigned node {shown}; {users} user record(s) marked replaced (reassigned at their next sync)");
        }
        NodeCommand::List => {
            let nodes = send(settings, ListNodes)?;
            if nodes.is_empty() {
                println!("no nodes");
            } else {
                print_nodes(&nodes);
            }
        }
    }
    Ok(())
}

pub fn run_user(settings: &Settings, command: UserCommand) -> Result<(), AdminError> {
    let UserCommand::Allocate(args) = command;
    let email = if args.email.contains('@') {
        args.email
    } else {
        format!("{}@{}", args.email, settings.tokenserver.fxa_email_domain)
    };
    let node = args.node.as_deref().map(node_url).transpose()?;
    let msg = AllocateUser { email: email.clone(), node };
    let user = send(settings, msg)?;
    println!("user {email}: uid {} on node {}", user.uid, user.node);
    Ok(())
}

fn print_nodes(nodes: &[NodeRow]) {
    let width = nodes.iter().map(|n| n.node.len()).max().unwrap_or(4).max(4);
    println!(
        "{:>5}  {:<width$}  {:>10}  {:>10}  {:>10}  {:>6}  {:>7}",
        "id", "node", "capacity", "load", "available", "downed", "backoff"
    );
    for n in nodes {
        println!(
            "{:>5}  {:<width$}  {:>10}  {:>10}  {:>10}  {:>6}  {:>7}",
            n.id, n.node, n.capacity, n.current_load, n.available, n.downed, n.backoff
        );
    }
}
