//! The `WEFT_*` environment variables, applied over the file's settings.
//!
//! Naming rule: `WEFT_` followed by the key's path with sections joined by `_`, upper-cased.
//! `limits.max_post_records` is `WEFT_LIMITS_MAX_POST_RECORDS`, `public_url` is
//! `WEFT_PUBLIC_URL`. List values are comma-separated. `WEFT_MASTER_SECRET` sets a one-element
//! `master_secrets` list.
//!
//! Unknown `WEFT_*` variables: a variable that looks like a mistyped setting — it starts with a
//! section's prefix (`WEFT_SHARD_…`) or is within two edits of a real variable — stops the start
//! with one line naming it and the likely intended key; any other unknown `WEFT_*` variable (a
//! wrapper script's, a CI job's) is ignored and named in a start-up line. Build-time names are
//! not `WEFT_*` (build.rs), so nothing cargo sets can collide with a setting.

use std::collections::BTreeMap;

use super::trust_proxy_headers::TrustProxyHeaders;
use super::{invalid, ConfigError, Settings};

/// Every key path of `Settings` with the TOML type of its default, e.g. `limits.max_post_bytes`.
fn known_keys() -> BTreeMap<String, toml::Value> {
    fn walk(prefix: &str, table: &toml::Table, out: &mut BTreeMap<String, toml::Value>) {
        for (k, v) in table {
            let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
            match v {
                // `[[nodes]]` tables only come from the file.
                _ if path == "nodes" || path == "db_nodes" => {}
                toml::Value::Table(t) => walk(&path, t, out),
                other => {
                    out.insert(path, other.clone());
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    if let Ok(toml::Value::Table(t)) = toml::Value::try_from(Settings::default()) {
        walk("", &t, &mut out);
    }
    out
}

/// Shorter names the tokenserver's settings are known by (issue 3; REF's are similar), besides
/// the `WEFT_TOKENSERVER_*` names of the naming rule.
const ENV_ALIASES: [(&str, &str); 2] = [
    ("FXA_OAUTH_SERVER_URL", "tokenserver.fxa_oauth_server_url"),
    ("FXA_METRICS_HASH_SECRET", "tokenserver.fxa_metrics_hash_secret"),
];

/// Applies the `WEFT_*` variables to the file's tree. Returns the names applied and the names
/// ignored (see the module's rule for unknown variables).
pub(super) fn apply_env(
    tree: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(Vec<String>, Vec<String>), ConfigError> {
    let keys = known_keys();
    let (mut applied, mut ignored) = (Vec::new(), Vec::new());
    let mut env: Vec<(String, String)> = env.into_iter().collect();
    env.sort();
    for (name, raw) in env {
        let Some(rest) = name.strip_prefix("WEFT_") else { continue };
        // Variables read by the test suite or by other tools, not configuration keys.
        if rest.starts_with("TEST_") || rest == "LOG" {
            continue;
        }
        let (path, value) = if rest == "MASTER_SECRET" {
            ("master_secrets".to_string(), toml::Value::Array(vec![toml::Value::String(raw.clone())]))
        } else if let Some(path) = ENV_ALIASES.iter().find(|(alias, _)| *alias == rest).map(|(_, p)| *p) {
            (path.to_string(), toml::Value::String(raw.clone()))
        } else if rest == "TRUST_PROXY_HEADERS" {
            // A boolean word or a list of addresses: the one key with two TOML types.
            let setting = TrustProxyHeaders::from_env(&raw).map_err(|e| invalid(&name, e.to_string()))?;
            let value = toml::Value::try_from(setting).map_err(|e| invalid(&name, e.to_string()))?;
            ("trust_proxy_headers".to_string(), value)
        } else if let Some((path, default)) =
            keys.iter().find(|(path, _)| path.replace('.', "_").to_uppercase() == rest)
        {
            (path.clone(), env_value(&name, &raw, default)?)
        } else if let Some(meant) = mistyped_setting(rest, &keys) {
            return Err(invalid(
                &name,
                format!("unknown setting; did you mean WEFT_{meant}? (see `weft serve --help`)"),
            ));
        } else {
            ignored.push(name);
            continue;
        };
        let mut table = &mut *tree;
        let mut parts: Vec<&str> = path.split('.').collect();
        let leaf = parts.pop().unwrap_or_default();
        for part in parts {
            let entry =
                table.entry(part.to_string()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
            table = entry.as_table_mut().ok_or_else(|| invalid(&name, format!("{part} is not a section")))?;
        }
        table.insert(leaf.to_string(), value);
        applied.push(name);
    }
    Ok((applied, ignored))
}

/// The setting an unknown variable (without `WEFT_`) was probably meant to be: the closest
/// variable name when it starts with a section's prefix (`SHARD_…`, `LIMITS_…`) or is within
/// two edits of a variable name; `None` for a name that is no setting's typo.
fn mistyped_setting(rest: &str, keys: &BTreeMap<String, toml::Value>) -> Option<String> {
    const MAX_EDITS: usize = 2;
    let names: Vec<String> = keys
        .keys()
        .map(|path| path.replace('.', "_").to_uppercase())
        .chain(["MASTER_SECRET".to_string()])
        .chain(ENV_ALIASES.iter().map(|(alias, _)| alias.to_string()))
        .collect();
    let (closest, edits) = names
        .iter()
        .map(|name| (name, strsim::damerau_levenshtein(rest, name)))
        .min_by_key(|(_, edits)| *edits)?;
    let in_a_section = keys
        .keys()
        .filter_map(|path| path.split_once('.').map(|(section, _)| format!("{}_", section.to_uppercase())))
        .any(|prefix| rest.starts_with(&prefix));
    (in_a_section || edits <= MAX_EDITS).then(|| closest.clone())
}

/// Converts an environment string to the TOML type of the key's default.
fn env_value(name: &str, raw: &str, default: &toml::Value) -> Result<toml::Value, ConfigError> {
    Ok(match default {
        toml::Value::Boolean(_) => match raw.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => toml::Value::Boolean(true),
            "0" | "false" | "no" | "off" => toml::Value::Boolean(false),
            _ => return Err(invalid(name, format!("{raw:?} is not a boolean"))),
        },
        toml::Value::Integer(_) => toml::Value::Integer(
            raw.trim().parse().map_err(|_| invalid(name, format!("{raw:?} is not an integer")))?,
        ),
        toml::Value::Float(_) => toml::Value::Float(
            raw.trim().parse().map_err(|_| invalid(name, format!("{raw:?} is not a number")))?,
        ),
        toml::Value::Array(_) => toml::Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.into()))
                .collect(),
        ),
        _ => toml::Value::String(raw.to_string()),
    })
}

/// The `weft serve --help` section listing every setting with its variable and default.
pub fn env_help() -> String {
    let mut help = String::from(
        "Settings (TOML key = environment variable, default). Variables override the file.\n\
         WEFT_MASTER_SECRET sets a single master secret; the file takes a list `master_secrets`.\n\
         WEFT_FXA_OAUTH_SERVER_URL and WEFT_FXA_METRICS_HASH_SECRET are aliases of the\n\
         tokenserver.fxa_oauth_server_url and tokenserver.fxa_metrics_hash_secret variables.\n\n",
    );
    for (path, default) in known_keys() {
        let var = format!("WEFT_{}", path.replace('.', "_").to_uppercase());
        help.push_str(&format!("  {path:<36} {var:<44} {default}\n"));
    }
    help.push_str(
        "\nsecrets_file names an owner-only file holding every node's secrets (`weft secret --help`).\n",
    );
    help.push_str("\nStorage nodes besides the primary one are `[[nodes]]` tables in the file (url, aliases, database_url, master_secrets).\n");
    help
}

#[cfg(test)]
mod tests {
    use super::TrustProxyHeaders;
    use crate::config::tests::{env, LONG_SECRET};
    use crate::config::Settings;

    #[test]
    fn env_overrides_nested_keys_with_types() {
        let s = Settings::load(
            None,
            env(&[
                ("WEFT_LIMITS_MAX_POST_RECORDS", "10"),
                ("WEFT_QUOTA_ENABLED", "true"),
                ("WEFT_MASTER_SECRET", LONG_SECRET),
                ("WEFT_NODE_ALIASES", "http://a:1, http://b:2"),
            ]),
        )
        .unwrap();
        assert_eq!(s.limits.max_post_records, 10);
        assert!(s.quota.enabled);
        assert_eq!(s.master_secrets, vec![LONG_SECRET.to_string()]);
        assert_eq!(s.node_aliases.len(), 2);
    }

    #[test]
    fn a_mistyped_setting_is_refused_with_the_key_it_resembles() {
        for (typo, meant) in [
            ("WEFT_LIMITS_MAX_POST_RECORD", "WEFT_LIMITS_MAX_POST_RECORDS"),
            ("WEFT_LISTN", "WEFT_LISTEN"),
            ("WEFT_MASTER_SECRT", "WEFT_MASTER_SECRET"),
            ("WEFT_SHARD_THREAD_COUNT", "WEFT_SHARD_THREADS"),
            ("WEFT_TOKENSERVER_NO_SUCH_KEY", ""),
        ] {
            let err = Settings::load(None, env(&[(typo, "1")])).unwrap_err().to_string();
            assert!(err.starts_with(&format!("{typo}: unknown setting; did you mean {meant}")), "{err}");
        }
    }

    #[test]
    fn unrelated_weft_variables_are_ignored_and_reported() {
        let s = Settings::load(
            None,
            env(&[
                ("WEFT_BUILD", "local"),
                ("WEFT_WRAPPER_NOTE", "x"),
                ("WEFT_LISTEN", "127.0.0.1:9000"),
                ("HOME", "/root"),
            ]),
        )
        .unwrap();
        assert_eq!(s.listen, "127.0.0.1:9000");
        assert_eq!(s.sources.variables, vec!["WEFT_LISTEN"]);
        assert_eq!(s.sources.ignored, vec!["WEFT_BUILD", "WEFT_WRAPPER_NOTE"]);
        assert!(s.sources.file.is_none());
    }

    #[test]
    fn trust_proxy_headers_takes_booleans_or_addresses() {
        let s = Settings::load(None, env(&[("WEFT_TRUST_PROXY_HEADERS", "127.0.0.1, 10.0.0.0/8")])).unwrap();
        assert!(s.trust_proxy_headers.trusts(Some("10.1.2.3".parse().unwrap())));
        assert!(!s.trust_proxy_headers.trusts(Some("192.0.2.1".parse().unwrap())));
        assert!(s.warnings().is_empty());
        let s = Settings::load(None, env(&[("WEFT_TRUST_PROXY_HEADERS", "true")])).unwrap();
        assert_eq!(s.trust_proxy_headers, TrustProxyHeaders::Everybody);
        assert!(s.warnings()[0].contains("trust_proxy_headers = [\"127.0.0.1\""), "{:?}", s.warnings());
        let err = Settings::load(None, env(&[("WEFT_TRUST_PROXY_HEADERS", "proxy.local")])).unwrap_err();
        assert!(err.to_string().contains("WEFT_TRUST_PROXY_HEADERS"), "{err}");
    }
}
