//! `weft serve`: runs the server until stopped. `run` assembles it from the settings in the
//! order a failure is best reported in: the data directory (`data_dir`), node plans and secrets, pools (with migrations), local
//! accounts, the tokenserver, metrics, the cache, then, inside the actix system, the shard,
//! tokenserver and accounts actors, the purges, the SIGHUP reload and the HTTP server. Each
//! step's work is in `startup` (settings → pools, actors, secrets); `server` is the HTTP server
//! with its middleware; `live_reload` applies a changed configuration on SIGHUP; `firefox_prefs`
//! says which `about:config` prefs to print.

pub mod data_dir;
pub mod firefox_prefs;
pub mod live_reload;
pub mod server;
pub mod startup;

use std::path::PathBuf;
use std::sync::Arc;

use self::startup::SecretSource;
use crate::config::{Settings, Sources};
use crate::{accounts, telemetry, web};

/// The start-up lines saying where the configuration came from: the file, and the names (never
/// the values) of the variables applied and ignored.
fn print_sources(sources: &Sources) {
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

pub fn run(settings: Settings, config_path: Option<PathBuf>) -> Result<(), String> {
    data_dir::prepare(&settings.data_dir).map_err(|e| e.to_string())?;
    let (plans, secrets) = startup::plan_nodes(&settings).map_err(|e| e.to_string())?;
    // Storage off: no pools and no shards; the plans still carry every node's secrets, which
    // the tokenserver signs with.
    let pools = if settings.storage.enabled {
        startup::open_pools(&settings, &plans, settings.run_migrations).map_err(|e| e.to_string())?
    } else {
        Vec::new()
    };
    let accounts = if settings.accounts.enabled {
        Some(startup::plan_accounts(&settings).map_err(|e| e.to_string())?)
    } else {
        None
    };
    let tokenserver = if settings.tokenserver.enabled {
        Some(
            startup::plan_tokenserver(
                &settings,
                &plans,
                &secrets,
                settings.storage.enabled,
                accounts.as_ref(),
            )
            .map_err(|e| e.to_string())?,
        )
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
    telemetry::prometheus::install(&settings).map_err(|e| format!("metrics: {e}"))?;
    let cache = startup::cache_store(&settings).map_err(|e| e.to_string())?;
    if settings.storage.enabled {
        for line in startup::describe_cache(&settings, cache.as_ref(), &plans) {
            println!("{line}");
        }
    }
    let applied = startup::node_secrets(&plans, &secrets);
    live_reload::write_pid(&settings.data_dir)
        .map_err(|e| format!("data_dir: cannot write {}: {e}", live_reload::PID_FILE))?;
    let settings = Arc::new(settings);
    if let Some(plan) = &accounts {
        let path = settings.accounts_signing_key_file();
        let how = if plan.keys.generated { "generated on first start, stored in" } else { "read from" };
        println!(
            "weft: local accounts on; signing key {} {how} {} (owner-only)",
            plan.keys.signing.kid,
            path.display()
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
    actix_web::rt::System::new().block_on(async move {
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
                Some(addr)
            }
            None => {
                println!("weft: tokenserver disabled (tokenserver.enabled = false)");
                None
            }
        };
        let prefs = firefox_prefs::firefox_prefs(
            &settings.public_url,
            settings.accounts.enabled,
            tokenserver.is_some(),
        );
        for pref in &prefs {
            println!("{}", firefox_prefs::line(pref));
        }
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
        let reloader = live_reload::Reloader::new(
            config_path,
            settings.clone(),
            state.clone(),
            services.verifier,
            cache,
            applied,
        );
        live_reload::on_sighup(reloader).map_err(|e| format!("SIGHUP handler: {e}"))?;
        server::serve(settings, state).await.map_err(|e| format!("listen: {e}"))
    })
}
