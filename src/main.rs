//! `weft`: a Firefox Sync server — tokenserver and SyncStorage 1.5 storage node — in one
//! binary. This file only parses the command line, loads the settings every subcommand needs
//! and calls the subcommand, whose code is `src/commands/<name>` (one module per subcommand,
//! named after it). See README.md for configuration and ARCHITECTURE.md for the code map.

use std::fmt::Display;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use weft::commands::serve::startup;
use weft::commands::{
    account, check_config, export, healthcheck, import, migrate, node, purge, reload, secret, serve, user,
};
use weft::config::{self, Settings};

#[derive(Parser)]
#[command(name = "weft", version, about = "Firefox Sync server: SyncStorage 1.5 storage node")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (storage node) until stopped.
    Serve {
        /// TOML configuration file; every key can also be set with a WEFT_* variable.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Apply the embedded database migrations to every configured node, then exit.
    Migrate {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Validate the configuration (file and WEFT_* variables) without touching any database,
    /// then exit: 0 when `serve` would accept it.
    CheckConfig {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Manage the tokenserver's storage nodes (in the tokenserver database).
    Node {
        #[arg(long, short, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: node::NodeCommand,
    },
    /// Manage the tokenserver's users.
    User {
        #[arg(long, short, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: user::UserCommand,
    },
    /// Manage local accounts (accounts.enabled): invites, accounts, the signing key.
    Account {
        #[arg(long, short)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: account::AccountCommand,
    },
    /// Make the running server re-read its configuration and secrets (as SIGHUP does) and
    /// print the outcome; a configuration that does not load is not sent.
    Reload {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Rotate master secrets in the secrets file (secrets_file): add, promote, retire.
    Secret {
        #[arg(long, short, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: secret::SecretCommand,
    },
    /// Write users' sync data (one user, a list, or the whole node) to a weft-export file.
    Export {
        #[arg(long, short)]
        config: Option<PathBuf>,
        #[command(flatten)]
        args: export::ExportArgs,
    },
    /// Remove now what deletes, expiry and abandoned batches left (one pass of the deleter), and
    /// the data and rows of users the tokenserver replaced (`--kind retired`), with a summary.
    Purge {
        #[arg(long, short)]
        config: Option<PathBuf>,
        #[command(flatten)]
        args: purge::PurgeArgs,
    },
    /// Read a weft-export file (or a Mozilla syncstorage-rs database) into a database.
    Import {
        #[arg(long, short)]
        config: Option<PathBuf>,
        #[command(flatten)]
        args: import::ImportArgs,
    },
    /// Ask the server this configuration starts for /__lbheartbeat__: exit 0 when it answers
    /// 200 (a container's HEALTHCHECK).
    Healthcheck {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let matches = Cli::command()
        .mut_subcommand("serve", |serve| serve.after_long_help(config::env_help()))
        .get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let (Command::Serve { config }
    | Command::Migrate { config }
    | Command::CheckConfig { config }
    | Command::Node { config, .. }
    | Command::User { config, .. }
    | Command::Account { config, .. }
    | Command::Reload { config }
    | Command::Secret { config, .. }
    | Command::Export { config, .. }
    | Command::Import { config, .. }
    | Command::Purge { config, .. }
    | Command::Healthcheck { config }) = &cli.command;
    let config_path = config.clone();
    let settings = match Settings::load(config.as_deref(), std::env::vars()) {
        Ok(settings) => settings,
        Err(e) => return exit(Err(e)),
    };
    startup::init_logging(&settings);
    match cli.command {
        Command::Serve { .. } => exit(serve::run(settings, config_path)),
        Command::Migrate { .. } => exit(migrate::run(&settings)),
        Command::CheckConfig { .. } => exit(check_config::run(&settings)),
        Command::Node { command, .. } => exit(node::run(&settings, command)),
        Command::User { command, .. } => exit(user::run(&settings, command)),
        Command::Account { command, .. } => exit(account::run(&settings, command)),
        Command::Reload { .. } => exit(reload::run(&settings)),
        Command::Secret { command, .. } => exit(secret::run(&settings, command)),
        Command::Export { args, .. } => exit(export::run(&settings, args)),
        Command::Import { args, .. } => exit(import::run(&settings, args)),
        Command::Purge { args, .. } => exit(purge::run(&settings, args)),
        Command::Healthcheck { .. } => exit(healthcheck::run(&settings)),
    }
}

/// A subcommand's outcome as the exit status, its error as one line on stderr.
fn exit(result: Result<(), impl Display>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("weft: error: {e}");
            ExitCode::FAILURE
        }
    }
}
