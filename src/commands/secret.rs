//! `weft secret init|list|add|promote|retire`: the secret rotation of ops-model.md §3.3 as
//! commands on the secrets file (src/config/secrets_file.rs). Each step is safe to re-run,
//! refuses an unsafe order with a message saying what to do instead, and names secrets by
//! fingerprint only. Running webheads learn a change when they are reloaded (`weft reload`).

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use clap::{Args, Subcommand};

use crate::commands::serve::startup::{self, StartupError};
use crate::config::secrets_file::{Added, Promoted, SecretEntry, SecretState, SecretsError, SecretsFile};
use crate::config::Settings;
use crate::node::canonical_origin;

#[derive(Subcommand)]
pub enum SecretCommand {
    /// Write a secrets file holding the secrets the configuration uses now (master_secrets,
    /// [[nodes]] master_secrets or the generated data_dir/master-secret, and the metrics-hash
    /// secret); then set `secrets_file` to it and delete those secrets from the configuration.
    Init {
        /// Where to write it (owner-only); must not exist.
        #[arg(long)]
        to: PathBuf,
    },
    /// Show each list's secrets by fingerprint, with their state.
    List,
    /// Rotation step 1: add a new secret as accepted (verifies, does not sign yet).
    Add(NodeArg),
    /// Rotation step 2, after every webhead reloaded step 1: the new secret signs.
    Promote(NodeArg),
    /// Rotation step 3: remove secrets that stopped signing at least token lifetime +
    /// expired-token grace ago.
    Retire {
        #[command(flatten)]
        node: NodeArg,
        /// Retire before that wait is over (clients holding tokens it signed get 401 once).
        #[arg(long)]
        force: bool,
    },
}

#[derive(Args)]
pub struct NodeArg {
    /// The node whose own list to change; without it, the default list of every node without
    /// one (a node gets its own list on its first `add`).
    #[arg(long)]
    node: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SecretCommandError {
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    #[error(transparent)]
    Startup(#[from] StartupError),
    #[error("{0}")]
    Invalid(String),
}

pub fn run(settings: &Settings, command: SecretCommand) -> Result<(), SecretCommandError> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let what =
        |node: &Option<String>| node.as_deref().map_or("the default list".to_string(), |n| n.to_string());
    match command {
        SecretCommand::Init { to } => init(settings, &to, now)?,
        SecretCommand::List => print_lists(&open(settings)?.1, now),
        SecretCommand::Add(NodeArg { node }) => {
            let node = node_url(node)?;
            let (path, mut file) = open(settings)?;
            let outcome = file.add(node.as_deref(), now);
            file.write(&path)?;
            match outcome {
                Added::Accepted(fp) => println!(
                    "added secret {fp} to {} as accepted; next: `weft reload` every webhead, then `weft secret promote{}`",
                    what(&node),
                    node_flag(&node)
                ),
                Added::Signing(fp) => println!(
                    "added secret {fp} to {} as signing (the list was empty); next: `weft reload` every webhead",
                    what(&node)
                ),
                Added::AlreadyWaiting(fp) => println!(
                    "secret {fp} of {} is already accepted and waiting; nothing added. Next: `weft reload` every \
                     webhead, then `weft secret promote{}`",
                    what(&node),
                    node_flag(&node)
                ),
            }
        }
        SecretCommand::Promote(NodeArg { node }) => {
            let node = node_url(node)?;
            let (path, mut file) = open(settings)?;
            let outcome = file.promote(node.as_deref(), now)?;
            file.write(&path)?;
            let wait = retire_wait(settings);
            match outcome {
                Promoted::Signing { new, previous } => println!(
                    "secret {new} of {} signs now{}; next: `weft reload` every webhead, then after {wait} s \
                     (token lifetime + expired-token grace) `weft secret retire{}`",
                    what(&node),
                    previous.map(|p| format!(", {p} stays accepted")).unwrap_or_default(),
                    node_flag(&node)
                ),
                Promoted::Nothing(fp) => {
                    println!("no secret of {} waits for promotion; {fp} signs (nothing changed)", what(&node))
                }
            }
        }
        SecretCommand::Retire { node: NodeArg { node }, force } => {
            let node = node_url(node)?;
            let (path, mut file) = open(settings)?;
            let retired = file.retire(node.as_deref(), now, retire_wait(settings), force)?;
            file.write(&path)?;
            if retired.is_empty() {
                println!("no secret of {} to retire (nothing changed)", what(&node));
            } else {
                println!(
                    "retired {} from {}; next: `weft reload` every webhead",
                    retired.join(", "),
                    what(&node)
                );
            }
        }
    }
    Ok(())
}

/// The configured secrets file, read and validated.
fn open(settings: &Settings) -> Result<(PathBuf, SecretsFile), SecretCommandError> {
    if settings.secrets_file.is_empty() {
        return Err(SecretCommandError::Invalid(
            "secrets_file is not set: create the file with `weft secret init --to PATH`, then set secrets_file = PATH"
                .into(),
        ));
    }
    let path = PathBuf::from(&settings.secrets_file);
    let file = SecretsFile::read(&path)?;
    Ok((path, file))
}

fn node_url(node: Option<String>) -> Result<Option<String>, SecretCommandError> {
    node.map(|n| {
        canonical_origin(&n)
            .ok_or_else(|| SecretCommandError::Invalid(format!("--node {n:?} is not an http(s) origin")))
    })
    .transpose()
}

fn node_flag(node: &Option<String>) -> String {
    node.as_ref().map(|n| format!(" --node {n}")).unwrap_or_default()
}

/// How long a secret that stopped signing must stay accepted: every token it signed expires
/// within the token lifetime, and `info/collections` accepts it for the grace after that.
pub fn retire_wait(settings: &Settings) -> u64 {
    settings.tokenserver.token_duration_seconds + settings.auth.expired_token_grace_seconds
}

fn init(settings: &Settings, to: &Path, now: u64) -> Result<(), SecretCommandError> {
    if !settings.secrets_file.is_empty() {
        return Err(SecretCommandError::Invalid(format!(
            "secrets_file is already set ({}); `weft secret list` shows it",
            settings.secrets_file
        )));
    }
    if to.exists() {
        return Err(SecretCommandError::Invalid(format!("{} exists; nothing written", to.display())));
    }
    let (plans, secrets) = startup::plan_nodes(settings)?;
    // Any of these may have signed tokens still in circulation: all but the newest are kept
    // accepted as if they stopped signing now, so `retire` waits a full token lifetime.
    let entries = |masters: &[String]| -> Vec<SecretEntry> {
        let last = masters.len().saturating_sub(1);
        masters
            .iter()
            .enumerate()
            .map(|(i, secret)| SecretEntry {
                secret: secret.clone(),
                state: if i == last { SecretState::Signing } else { SecretState::Accepted },
                added_at: now,
                signed_until: (i != last).then_some(now),
            })
            .collect()
    };
    let mut file = SecretsFile {
        metrics_hash_secret: startup::metrics_hash_secret(settings, &secrets)?,
        default: entries(&secrets.default),
        ..SecretsFile::default()
    };
    for plan in plans.iter().filter(|p| p.secrets != secrets.default) {
        file.nodes.insert(plan.url.clone(), entries(&plan.secrets));
    }
    file.write(to)?;
    println!(
        "wrote {} (owner-only): default list of {} secret(s), {} node list(s), the metrics-hash secret.\n\
         next: set secrets_file = {:?} in the configuration, delete master_secrets (and [[nodes]] \
         master_secrets, tokenserver.fxa_metrics_hash_secret), `weft check-config`, `weft reload`",
        to.display(),
        file.default.len(),
        file.nodes.len(),
        to.display().to_string()
    );
    Ok(())
}

fn print_lists(file: &SecretsFile, now: u64) {
    let show = |name: &str, list: &[SecretEntry]| {
        println!("{name}:");
        for e in list {
            let state = match (e.state, e.signed_until) {
                (SecretState::Signing, _) => "signing".to_string(),
                (SecretState::Accepted, None) => "accepted, waiting for promotion".to_string(),
                (SecretState::Accepted, Some(t)) => {
                    format!("accepted, stopped signing {} s ago", now.saturating_sub(t))
                }
            };
            println!("  {}  {state}", e.fingerprint());
        }
    };
    show("default", &file.default);
    for (url, list) in &file.nodes {
        show(url, list);
    }
}
