//! `weft`: a Firefox Sync server — tokenserver and SyncStorage 1.5 storage node — in one
//! binary. Subcommands: `serve` runs the server, `migrate` applies the embedded migrations and
//! exits, `node …` and `user allocate` manage the tokenserver's nodes and users (`admin`),
//! `account …` local accounts (`accounts::admin`), `export` and `import` move users' data
//! between databases (`transfer`), `purge` runs one pass of the deleter and of the purge of
//! replaced users on demand (`purge`, `purge_retired`).
//! See README.md for configuration and ARCHITECTURE.md for the code map.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use weft::config::Settings;
use weft::startup::SecretSource;
use weft::{
    accounts, admin, config, data_dir, healthcheck, purge, reload, secret_commands, secrets, server, startup,
    telemetry, transfer, web,
};

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
        command: admin::NodeCommand,
    },
    /// Manage the tokenserver's users.
    User {
        #[arg(long, short, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: admin::UserCommand,
    },
    /// Manage local accounts (accounts.enabled): invites, accounts, the signing key.
    Account {
        #[arg(long, short)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: accounts::admin::AccountCommand,
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
        command: secret_commands::SecretCommand,
    },
    /// Write users' sync data (one user, a list, or the whole node) to a weft-export file.
    Export {
        #[arg(long, short)]
        config: Option<PathBuf>,
        #[command(flatten)]
        args: transfer::ExportArgs,
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
        args: transfer::ImportArgs,
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
        Err(e) => return fail(e),
    };
    startup::init_logging(&settings);
    match cli.command {
        Command::Serve { .. } => serve(settings, config_path),
        Command::Reload { .. } => reload::command(&settings).map_or_else(fail, |()| ExitCode::SUCCESS),
        Command::Migrate { .. } => migrate(&settings),
        Command::CheckConfig { .. } => check_config(&settings),
        Command::Node { command, .. } => {
            admin::run_node(&settings, command).map_or_else(fail, |()| ExitCode::SUCCESS)
        }
        Command::User { command, .. } => {
            admin::run_user(&settings, command).map_or_else(fail, |()| ExitCode::SUCCESS)
        }
        Command::Account { command, .. } => {
            accounts::admin::run(&settings, command).map_or_else(fail, |()| ExitCode::SUCCESS)
        }
        Command::Secret { command, .. } => {
            secret_commands::run(&settings, command).map_or_else(fail, |()| ExitCode::SUCCESS)
        }
        Command::Export { args, .. } => {
            transfer::run_export(&settings, args).map_or_else(fail, |()| ExitCode::SUCCESS)
        }
        Command::Import { args, .. } => {
            transfer::run_import(&settings, args).map_or_else(fail, |()| ExitCode::SUCCESS)
        }
        Command::Purge { args, .. } => purge::run(&settings, args).map_or_else(fail, |()| ExitCode::SUCCESS),
        Command::Healthcheck { .. } => healthcheck::run(&settings).map_or_else(fail, |()| ExitCode::SUCCESS),
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
        urls.extend(settings.db_nodes.iter().map(|d| d.url.clone()));
    }
    if settings.tokenserver.enabled {
        urls.push(settings.tokenserver_database_url());
    }
    if !cfg!(feature = "mysql") && urls.iter().any(|url| url.starts_with("mysql://")) {
        return fail("a database_url is mysql:// but this weft was built without `--features mysql`");
    }
    if !settings.secrets_file.is_empty() {
        if let Err(e) = secrets::SecretsFile::read(std::path::Path::new(&settings.secrets_file)) {
            return fail(e);
        }
    }
    for warning in settings.warnings() {
        eprintln!("weft: warning: {warning}");
    }
    let db_node_names: usize = settings.db_nodes.iter().map(|d| d.nodes.len()).sum();
    let storage_nodes = if settings.storage.enabled { 1 + settings.nodes.len() + db_node_names } else { 0 };
    let on_off = |on: bool| if on { "on" } else { "off" };
    println!(
        "weft: configuration OK: {storage_nodes} storage node(s), tokenserver {}, local accounts {}, metrics {}",
        on_off(settings.tokenserver.enabled),
        on_off(settings.accounts.enabled),
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

fn serve(settings: Settings, config_path: Option<PathBuf>) -> ExitCode {
    if let Err(e) = data_dir::prepare(&settings.data_dir) {
        return fail(e);
    }
    let (plans, secrets) = match startup::plan_nodes(&settings) {
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
    let accounts = if settings.accounts.enabled {
        match startup::plan_accounts(&settings) {
            Ok(plan) => Some(plan),
            Err(e) => return fail(e),
        }
    } else {
        None
    };
    let tokenserver = if settings.tokenserver.enabled {
        match startup::plan_tokenserver(
            &settings,
            &plans,
            &secrets,
            settings.storage.enabled,
            accounts.as_ref(),
        ) {
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
    match &secrets.source {
        SecretSource::Configured => println!("weft: master secret from configuration"),
        SecretSource::SecretsFile { path } => println!("weft: secrets from {path}"),
        SecretSource::File { path, generated: true } => {
            println!("weft: master secret generated on first start, stored in {path} (owner-only)")
        }
        SecretSource::File { path, generated: false } => println!("weft: master secret read from {path}"),
    }
    println!("weft: writes {}", data_dir::written_files(&settings, &plans, &secrets).join(", "));
    if let Err(e) = telemetry::prometheus::install(&settings) {
        return fail(format!("metrics: {e}"));
    }
    let cache = match startup::cache_store(&settings) {
        Ok(cache) => cache,
        Err(e) => return fail(e),
    };
    if settings.storage.enabled {
        for line in startup::describe_cache(&settings, cache.as_ref(), &plans) {
            println!("{line}");
        }
    }
    let applied = startup::node_secrets(&plans, &secrets);
    if let Err(e) = reload::write_pid(&settings.data_dir) {
        return fail(format!("data_dir: cannot write {}: {e}", reload::PID_FILE));
    }
    let settings = Arc::new(settings);
    if let Some(plan) = &accounts {
        let path = settings.accounts_signing_key_file();
        let how = if plan.keys.generated { "generated on first start, stored in" } else { "read from" };
        println!(
            "weft: local accounts on; signing key {} {how} {} (owner-only)",
            plan.keys.signing.kid,
            path.display()
        );
        println!(
            "weft: in Firefox (about:config) set identity.fxaccounts.autoconfig.uri = {}",
            settings.public_url.trim_end_matches('/')
        );
        if settings.accounts.trust_mozilla_accounts {
            println!(
                "weft: WARNING: accounts.trust_mozilla_accounts = true: anyone with a Mozilla account \
                 can use this server's storage, without an invite"
            );
        } else {
            println!(
                "weft: only local accounts can sync (Mozilla-account tokens are refused; \
                 accounts.trust_mozilla_accounts = true accepts them)"
            );
        }
    }
    let accounts_pool = tokenserver.as_ref().map(startup::TokenserverPlan::pool);
    let purge_pool = tokenserver
        .as_ref()
        .filter(|_| settings.tokenserver.retired_purge.enabled)
        .map(startup::TokenserverPlan::pool);
    let result = actix_web::rt::System::new().block_on(async move {
        let services = startup::start_services(&settings, plans, &secrets, pools, cache.clone());
        let accounts = match (accounts, accounts_pool) {
            (Some(plan), Some(pool)) => Some(actix_web::web::Data::new(accounts::AccountsState::new(
                plan.start(pool).map_err(|e| e.to_string())?,
                &settings.public_url,
                plan.keys.jwks(),
                settings.trust_proxy_headers.clone(),
            ))),
            _ => None,
        };
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
        if let Some(pool) = purge_pool {
            startup::start_retired_purge(&settings, pool, &services).map_err(|e| e.to_string())?;
            println!(
                "weft: purge of replaced users every {} s (grace period {} s)",
                settings.tokenserver.retired_purge.interval_seconds,
                settings.tokenserver.retired_purge.grace_period_seconds
            );
        }
        // The deleters run as long as the server does.
        let _deleters = startup::start_deleters(&settings, &services.nodes);
        let state = actix_web::web::Data::new(web::AppState {
            settings: settings.clone(),
            nodes: services.nodes,
            credentials: services.credentials,
            tokenserver,
            accounts,
            body_slots: web::extract::request_body::BodySlots::new(settings.http.max_concurrent_bodies),
            health: Default::default(),
        });
        let reloader = reload::Reloader::new(
            config_path,
            settings.clone(),
            state.clone(),
            services.verifier,
            cache,
            applied,
        );
        reload::on_sighup(reloader).map_err(|e| format!("SIGHUP handler: {e}"))?;
        server::serve(settings, state).await.map_err(|e| format!("listen: {e}"))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}
