//! `weft migrate`: applies the embedded migrations to every configured database (each storage
//! node's, and the tokenserver's when it runs), prints each one migrated, and exits. `weft
//! serve` does the same at start unless `run_migrations = false`.

use crate::commands::serve::startup;
use crate::config::Settings;

pub fn run(settings: &Settings) -> Result<(), startup::StartupError> {
    let (plans, _) = startup::plan_nodes(settings)?;
    if settings.storage.enabled {
        startup::open_pools(settings, &plans, true)?;
    }
    if settings.tokenserver.enabled {
        startup::tokenserver_pool(settings, true)?;
    }
    if settings.storage.enabled {
        for plan in plans {
            println!("weft: migrated {}", startup::redact_url(&plan.database_url));
        }
    }
    if settings.tokenserver.enabled {
        println!("weft: migrated {}", startup::redact_url(&settings.tokenserver_database_url()));
    }
    Ok(())
}
