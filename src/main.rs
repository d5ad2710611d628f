//! `weft`: a Firefox Sync storage node (SyncStorage 1.5) in one binary. Subcommands:
//! `serve` runs the server, `migrate` applies the embedded migrations and exits.
//! See README.md for configuration and ARCHITECTURE.md for the code map.

mod config;
mod error;
mod master_secret;
mod node;
mod server;
mod startup;
mod web;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::config::Settings;
use crate::startup::SecretSource;

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
}

fn main() -> ExitCode {
    let matches = Cli::command()
        .mut_subcommand("serve", |serve| serve.after_long_help(config::env_help()))
        .get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let (Command::Serve { config } | Command::Migrate { config }) = &cli.command;
    let settings = match Settings::load(config.as_deref(), std::env::vars()) {
        Ok(settings) => settings,
        Err(e) => return fail(e),
    };
    startup::init_logging(&settings);
    match cli.command {
        Command::Serve { .. } => serve(settings),
        Command::Migrate { .. } => migrate(&settings),
    }
}

fn fail(err: impl std::fmt::Display) -> ExitCode {
    eprintln!("weft: error: {err}");
    ExitCode::FAILURE
}

fn migrate(settings: &Settings) -> ExitCode {
    let result = startup::plan_nodes(settings).and_then(|(plans, _)| {
        startup::open_pools(settings, &plans, true)?;
        Ok(plans)
    });
    match result {
        Ok(plans) => {
            for plan in plans {
                println!("weft: migrated {}", startup::redact_url(&plan.database_url));
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

fn serve(settings: Settings) -> ExitCode {
    let (plans, source) = match startup::plan_nodes(&settings) {
        Ok(planned) => planned,
        Err(e) => return fail(e),
    };
    let pools = match startup::open_pools(&settings, &plans, settings.run_migrations) {
        Ok(pools) => pools,
        Err(e) => return fail(e),
    };
    println!("weft: public URL {}", settings.public_url);
    for plan in &plans {
        println!("weft: node {} on {}", plan.url, startup::redact_url(&plan.database_url));
    }
    match &source {
        SecretSource::Configured => println!("weft: master secret from configuration"),
        SecretSource::File { path, generated: true } => {
            println!("weft: master secret generated on first start, stored in {path} (owner-only)")
        }
        SecretSource::File { path, generated: false } => println!("weft: master secret read from {path}"),
    }
    let settings = Arc::new(settings);
    let result = actix_web::rt::System::new().block_on(async move {
        let services = startup::start_services(&settings, plans, pools);
        let state = actix_web::web::Data::new(web::AppState {
            settings: settings.clone(),
            nodes: services.nodes,
            verifier: services.verifier,
        });
        server::serve(settings, state).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(format!("listen: {e}")),
    }
}
