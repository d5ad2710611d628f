//! `weft user allocate` (tokenserver-api.md §10): assigns a user to a node in the tokenserver
//! database with one message to a one-thread `TokenserverDb` actor, as the node commands do
//! (`super::node`), and prints the user's uid and node.

use clap::{Args, Subcommand};
use weft_actors::tokenserver::AllocateUser;

use super::node::{node_url, send, AdminError};
use crate::config::Settings;

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

pub fn run(settings: &Settings, command: UserCommand) -> Result<(), AdminError> {
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
