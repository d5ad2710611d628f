//! `weft node add|update|remove|provision|drain|unassign|list`: the node management of the
//! tokenserver (tokenserver-api.md §10). Each opens the configured tokenserver database, sends
//! one message to a one-thread `TokenserverDb` actor, prints the outcome on stdout and returns
//! an error for `main` to print (non-zero exit); the way in, shared with `weft user`, is
//! `super::tokenserver_db`. `drain --move` is `weft user move`'s (`super::user::move_user`).

use clap::Subcommand;
use weft_actors::tokenserver::{AddNode, ListNodes, RemoveNode, UnassignNode, UpdateNode};
use weft_schema::models::tokenserver::{NodeFields, NodeRow};

use super::tokenserver_db::{ask, node_url, send, with_db, AdminError};
use super::user::move_user;
use crate::commands::serve::startup;
use crate::config::{redact_url, Settings};

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
    /// Delete a node and mark every user on it replaced (they move at their next sync). Only a
    /// drained node (backoff or downed set) unless --force.
    Remove {
        url: String,
        /// Remove a node that still receives new users.
        #[arg(long)]
        force: bool,
    },
    /// Add a storage node in the order of ops-model.md §3.2: create its database and schema,
    /// check that it has secrets and that the server on this host serves it, then register it
    /// with the tokenserver (once; re-running changes nothing).
    Provision {
        /// The node's public origin; it must be configured (a [[nodes]] entry or public_url).
        url: String,
        /// Most users the node may ever hold.
        capacity: i32,
        /// Slots open at once (default: 10 % of capacity, rounded up).
        #[arg(long)]
        available: Option<i32>,
        /// Register it staged: no new users until `weft node update URL --backoff 0`.
        #[arg(long)]
        backoff: bool,
        /// Do not ask the server on this host (`listen`) whether it serves the node, e.g. on a
        /// host that runs no storage webhead.
        #[arg(long)]
        no_server_check: bool,
    },
    /// Drain a node (ops-model.md §3.4): backoff (no new users), then mark every user on it
    /// replaced, so each moves at the next token request and the purge of replaced users
    /// deletes their data here; with --move, move every user's data to other nodes now instead
    /// (nothing is uploaded again; see ops/runbooks/drain-node.md). Re-running is harmless and
    /// finishes an interrupted --move.
    Drain {
        url: String,
        #[command(flatten)]
        moving: move_user::DrainMoveArgs,
    },
    /// Mark every user on a node replaced; the node stays (e.g. to drain it after --backoff).
    Unassign { url: String },
    /// Show every node with capacity, load, available slots and flags.
    List,
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

fn non_negative(what: &str, value: Option<i32>) -> Result<(), AdminError> {
    match value {
        Some(v) if v < 0 => Err(AdminError::Invalid(format!("{what} must not be negative"))),
        _ => Ok(()),
    }
}

pub fn run(settings: &Settings, command: NodeCommand) -> Result<(), AdminError> {
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
        NodeCommand::Remove { url, force } => {
            let url = node_url(&url)?;
            let shown = url.clone();
            let users = with_db(settings, move |db| {
                Box::pin(async move {
                    let current = ask(&db, ListNodes).await?.into_iter().find(|n| n.node == url);
                    if let Some(node) = current.filter(|n| n.backoff == 0 && n.downed == 0 && !force) {
                        return Err(AdminError::Invalid(format!(
                            "{} still receives new users: drain it first (`weft node drain {}`), or --force",
                            node.node, node.node
                        )));
                    }
                    ask(&db, RemoveNode { url }).await
                })
            })?;
            println!("removed node {shown}; {users} user record(s) marked replaced (reassigned at their next sync)");
        }
        NodeCommand::Unassign { url } => {
            let url = node_url(&url)?;
            let shown = url.clone();
            let users = send(settings, UnassignNode { url })?;
            println!("unassigned node {shown}; {users} user record(s) marked replaced (reassigned at their next sync)");
        }
        NodeCommand::Provision { url, capacity, available, backoff, no_server_check } => {
            provision(settings, &url, capacity, available, backoff, no_server_check)?;
        }
        NodeCommand::Drain { url, moving } if moving.move_data => {
            move_user::run_drain_move(settings, &node_url(&url)?, moving)?;
        }
        NodeCommand::Drain { url, .. } => {
            let url = node_url(&url)?;
            let fields = NodeFields { backoff: Some(1), ..NodeFields::default() };
            let (update, unassign) =
                (UpdateNode { url: url.clone(), fields }, UnassignNode { url: url.clone() });
            let users = with_db(settings, |db| {
                Box::pin(async move {
                    ask(&db, update).await?;
                    ask(&db, unassign).await
                })
            })?;
            println!(
                "drained node {url}: backoff 1 (no new users); {users} user record(s) marked replaced: each \
                 moves at its next token request, and the purge of replaced users deletes its data here. \
                 Next, once its traffic is gone: `weft node remove {url}`, then delete it from every \
                 webhead's configuration and `weft reload` them"
            );
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

/// `weft node provision`: database, schema, secrets and serving checked in that order before
/// the tokenserver may assign anyone to the node.
fn provision(
    settings: &Settings,
    url: &str,
    capacity: i32,
    available: Option<i32>,
    backoff: bool,
    no_server_check: bool,
) -> Result<(), AdminError> {
    let url = node_url(url)?;
    if capacity < 1 {
        return Err(AdminError::Invalid("capacity must be at least 1".into()));
    }
    non_negative("--available", available)?;
    let (plans, _) = startup::plan_nodes(settings)?;
    let Some(plan) = plans.into_iter().find(|p| p.url == url || p.aliases.contains(&url)) else {
        return Err(AdminError::Invalid(format!(
            "{url} is not in this configuration: add a [[nodes]] entry (url, database_url) on every \
             webhead, `weft reload` them, then run this again"
        )));
    };
    if settings.storage.enabled {
        weft_schema::provision::create_database(&plan.database_url)
            .map_err(|source| startup::StartupError::Database { key: plan.key.clone(), source })?;
        startup::open_pools(settings, std::slice::from_ref(&plan), true)?;
        println!("database {} ready (schema migrated)", redact_url(&plan.database_url));
    }
    let signing =
        plan.secrets.last().map(|s| crate::config::secrets_file::fingerprint(s)).unwrap_or_default();
    println!("secrets: {} secret(s), {signing} signs", plan.secrets.len());
    if !no_server_check {
        check_served(settings, &url)?;
        println!("the server on {} serves {url}", settings.listen);
    }
    let rate = settings.tokenserver.node_capacity_release_rate;
    let fields = NodeFields {
        capacity: Some(capacity),
        available: Some(available.unwrap_or((f64::from(capacity) * rate).ceil() as i32)),
        current_load: Some(0),
        downed: Some(0),
        backoff: Some(i32::from(backoff)),
    };
    let add = AddNode { url: url.clone(), fields };
    let (node, added) = with_db(settings, move |db| {
        Box::pin(async move {
            match ask(&db, ListNodes).await?.into_iter().find(|n| n.node == add.url) {
                Some(existing) => Ok((existing, false)),
                None => Ok((ask(&db, add).await?, true)),
            }
        })
    })?;
    if !added {
        println!("node {url} is already registered (nothing changed)");
        print_nodes(&[node]);
        return Ok(());
    }
    println!("registered node {url} with the tokenserver");
    print_nodes(&[node]);
    if backoff {
        println!("staged: no new users until `weft node update {url} --backoff 0`");
    }
    Ok(())
}

/// Asks the server listening on `settings.listen` (on loopback when it listens on every
/// address) for its `/__heartbeat__`, which names every node it serves with its database
/// state.
fn check_served(settings: &Settings, url: &str) -> Result<(), AdminError> {
    use std::io::{Read, Write};
    let mut addr: std::net::SocketAddr =
        settings.listen.parse().map_err(|_| AdminError::Invalid("listen is not host:port".into()))?;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            [127, 0, 0, 1].into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    let unreachable = |e: std::io::Error| {
        AdminError::Invalid(format!(
            "no server answers on {addr} ({e}); start it, or give --no-server-check on a host without one"
        ))
    };
    let timeout = std::time::Duration::from_secs(10);
    let mut stream = std::net::TcpStream::connect_timeout(&addr, timeout).map_err(unreachable)?;
    stream.set_read_timeout(Some(timeout)).map_err(unreachable)?;
    write!(stream, "GET /__heartbeat__ HTTP/1.0\r\nHost: {addr}\r\n\r\n").map_err(unreachable)?;
    let mut response = String::new();
    stream.read_to_string(&mut response).map_err(unreachable)?;
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let heartbeat: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    match heartbeat["nodes"][url]["database"].as_str() {
        Some("Ok") => Ok(()),
        Some(_) => Err(AdminError::Invalid(format!(
            "the server on {addr} serves {url} but its database does not answer (see /__heartbeat__)"
        ))),
        None => Err(AdminError::Invalid(format!(
            "the server on {addr} does not serve {url} yet: `weft reload` it (and every other webhead), \
             then run this again"
        ))),
    }
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
