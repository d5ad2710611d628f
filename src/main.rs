//! `weft`: a Firefox Sync server — tokenserver and SyncStorage 1.5 storage node — in one
//! binary. Subcommands: `serve` runs the server, `migrate` applies the embedded migrations and
//! exits, `node …` and `user allocate` manage the tokenserver's nodes and users (`admin`).
//! See README.md for configuration and ARCHITECTURE.md for the code map.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use weft::config::Settings;
use weft::startup::SecretSource;
use weft::{admin, config, server, startup, telemetry, web};

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
        #[arg(long, short)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: admin::NodeCommand,
    },
    /// Manage the tokenserver's users.
    User {
        #[arg(long, short)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: admin::UserCommand,
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
    | Command::User { config, .. }) = &cli.command;
    let settings = match Settings::load(config.as_deref(), std::env::vars()) {
        Ok(settings) => settings,
        Err(e) => return fail(e),
    };
    startup::init_logging(&settings);
    match cli.command {
        Command::Serve { .. } => serve(settings),
        Command::Migrate { .. } => migrate(&settings),
        Command::CheckConfig { .. } => check_config(&settings),
        Command::Node { command, .. } => {
            admin::run_node(&settings, command).map_or_else(fail, |()| ExitCode::SUCCESS)
        }
        Command::User { command, .. } => {
            admin::run_user(&settings, command).map_or_else(fail, |()| ExitCode::SUCCESS)
        }
    }
}

/// The start-up lines saying where the configuration came from: the file, and the names (never
/// the values) of the variables applied and ignored.
fn print_sources(sources: &config::Sources) {
    match &sources.file {
        Some(path) => println!("weft: configuration file {}", path.display()),
        None => println!("weft: no configuration file (defaults and WEFT_* variables)"),
    }
    if !sources.variables.is_empty() {
        println!("weft: settings from the environment: {}", sources.variables.join(", "));
    }
    if !sources.ignored.is_empty() {
        println!("weft: ignored (not settings): {}", sources.ignored.join(", "));
    }
}

fn fail(err: impl std::fmt::Display) -> ExitCode {
    eprintln!("weft: error: {err}");
    ExitCode::FAILURE
}

/// `Settings::load` has validated every key; what remains is whether this build can open the
/// configured databases. Touches no database and writes nothing.
fn check_config(settings: &Settings) -> ExitCode {
    let mut urls = Vec::new();
    if settings.storage.enabled {
        urls.push(settings.effective_database_url());
        urls.extend(settings.nodes.iter().map(|n| n.database_url.clone()));
    }
    if settings.tokenserver.enabled {
        urls.push(settings.tokenserver_database_url());
    }
    if !cfg!(feature = "mysql") && urls.iter().any(|url| url.starts_with("mysql://")) {
        return fail("a database_url is mysql:// but this weft was built without `--features mysql`");
    }
    for warning in settings.warnings() {
        eprintln!("weft: warning: {warning}");
    }
    let storage_nodes = if settings.storage.enabled { 1 + settings.nodes.len() } else { 0 };
    let on_off = |on: bool| if on { "on" } else { "off" };
    println!(
        "weft: configuration OK: {storage_nodes} storage node(s), tokenserver {}, metrics {}",
        on_off(settings.tokenserver.enabled),
        if settings.metrics.enabled { settings.metrics.listen.as_str() } else { "off" },
    );
    ExitCode::SUCCESS
}

fn migrate(settings: &Settings) -> ExitCode {
    let result = startup::plan_nodes(settings).and_then(|(plans, _)| {
        if settings.storage.enabled {
            startup::open_pools(settings, &plans, true)?;
        }
        if settings.tokenserver.enabled {
            startup::tokenserver_pool(settings, true)?;
        }
        Ok(plans)
    });
    match result {
        Ok(plans) => {
            if settings.storage.enabled {
                for plan in plans {
                    println!("weft: migrated {}", startup::redact_url(&plan.database_url));
                }
            }
            if settings.tokenserver.enabled {
                println!("weft: migrated {}", startup::redact_url(&settings.tokenserver_database_url()));
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
    // Storage off: no pools and no shards; the plans still carry every node's secrets, which
    // the tokenserver signs with.
    let pools = if settings.storage.enabled {
        match startup::open_pools(&settings, &plans, settings.run_migrations) {
            Ok(pools) => pools,
            Err(e) => return fail(e),
        }
    } else {
        Vec::new()
    };
    let tokenserver = if settings.tokenserver.enabled {
        match startup::plan_tokenserver(&settings, &plans, settings.storage.enabled) {
            Ok(plan) => Some(plan),
            Err(e) => return fail(e),
        }
    } else {
        None
    };
    print_sources(&settings.sources);
    println!("weft: public URL {}", settings.public_url);
    for warning in settings.warnings() {
        eprintln!("weft: warning: {warning}");
    }
    if settings.storage.enabled {
        for plan in &plans {
            println!("weft: node {} on {}", plan.url, startup::redact_url(&plan.database_url));
        }
    } else {
        println!("weft: storage node disabled (storage.enabled = false)");
    }
    match &source {
        SecretSource::Configured => println!("weft: master secret from configuration"),
        SecretSource::File { path, generated: true } => {
            println!("weft: master secret generated on first start, stored in {path} (owner-only)")
        }
        SecretSource::File { path, generated: false } => println!("weft: master secret read from {path}"),
    }
    if let Err(e) = telemetry::prometheus::install(&settings) {
        return fail(format!("metrics: {e}"));
    }
    let settings = Arc::new(settings);
    let result = actix_web::rt::System::new().block_on(async move {
        let services = startup::start_services(&settings, plans, pools);
        let tokenserver = match tokenserver {
            Some(plan) => {
                let (addr, registered) = startup::start_tokenserver(plan, services.verifier.clone())
                    .await
                    .map_err(|e| e.to_string())?;
                println!(
                    "weft: tokenserver on {}",
                    startup::redact_url(&settings.tokenserver_database_url())
                );
                if registered {
                    println!(
                        "weft: registered {} as the tokenserver's storage node (capacity {})",
                        settings.public_url, settings.tokenserver.node_capacity
                    );
                }
                println!(
                    "weft: in Firefox (about:config) set identity.sync.tokenserver.uri = {}/1.0/sync/1.5",
                    settings.public_url.trim_end_matches('/')
                );
                Some(addr)
            }
            None => {
                println!("weft: tokenserver disabled (tokenserver.enabled = false)");
                None
            }
        };
        let state = actix_web::web::Data::new(web::AppState {
            settings: settings.clone(),
            nodes: services.nodes,
            verifier: services.verifier,
            tokenserver,
            body_slots: web::extract::request_body::BodySlots::new(settings.http.max_concurrent_bodies),
            health: Default::default(),
        });
        server::serve(settings, state).await.map_err(|e| format!("listen: {e}"))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}
