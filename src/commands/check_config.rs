//! `weft check-config`: `Settings::load` (in `main`) has validated the file and the `WEFT_*`
//! variables; what remains is whether this build can open the configured databases and whether
//! the secrets file reads. Prints the warnings `serve` would print and a one-line summary.
//! Touches no database and writes nothing; exits 0 when `weft serve` would accept the
//! configuration.

use std::path::Path;

use crate::config::secrets_file::SecretsFile;
use crate::config::Settings;

pub fn run(settings: &Settings) -> Result<(), String> {
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
        return Err("a database_url is mysql:// but this weft was built without `--features mysql`".into());
    }
    if !settings.secrets_file.is_empty() {
        SecretsFile::read(Path::new(&settings.secrets_file)).map_err(|e| e.to_string())?;
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
    Ok(())
}
