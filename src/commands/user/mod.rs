//! `weft user allocate` (tokenserver-api.md §10): assigns a user to a node in the tokenserver
//! database with one message to a one-thread `TokenserverDb` actor, as the node commands do
//! (`super::tokenserver_db`), and prints the user's uid and node. `weft user move` (and `weft
//! node drain --move`, which moves every user of a node) is `move_user.rs`. `weft user hash` prints the
//! `hashed_uid` the request log lines carry for a uid, to find that user's requests.

pub mod move_user;

use clap::{Args, Subcommand};
use weft_actors::tokenserver::AllocateUser;

use super::serve::startup;
use super::tokenserver_db::{node_url, send, AdminError};
use crate::config::Settings;
use crate::telemetry::request::UidHash;

#[derive(Subcommand)]
pub enum UserCommand {
    /// Assign a user to a node: a new record on NODE (keeping keys and generation), or, without
    /// NODE, the user's current node (a new user gets the best node).
    Allocate(AllocateArgs),
    /// Move a user's data to another node now, keeping every timestamp, and point the
    /// tokenserver at it (same uid, generation and keys): the client fetches a new token and
    /// uploads nothing. Its writes wait a moment (503 + Retry-After); re-run an interrupted move
    /// to finish it.
    Move(move_user::MoveArgs),
    /// Print the `hashed_uid` the request log lines carry for this uid (keyed with the metrics
    /// hash secret, as `hashed_fxa_uid` is), to find the user's requests in the logs.
    Hash { uid: u64 },
}

#[derive(Args)]
pub struct AllocateArgs {
    /// `<fxa uid>@<fxa_email_domain>`; a bare fxa uid gets the configured domain.
    email: String,
    node: Option<String>,
}

pub fn run(settings: &Settings, command: UserCommand) -> Result<(), AdminError> {
    match command {
        UserCommand::Allocate(args) => allocate(settings, args),
        UserCommand::Move(args) => move_user::run(settings, args),
        UserCommand::Hash { uid } => {
            let (_, secrets) = startup::plan_nodes(settings)?;
            let key = startup::metrics_hash_secret(settings, &secrets)?;
            println!("uid {uid}: hashed_uid {}", UidHash::new(&key).of(&uid.to_string()));
            Ok(())
        }
    }
}

fn allocate(settings: &Settings, args: AllocateArgs) -> Result<(), AdminError> {
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
