//! `[accounts]`: local accounts (Weft as its own account server) and their validation.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{invalid, ConfigError, Settings};

/// Local accounts (local-accounts.md): Weft as its own account server, so Firefox syncs
/// without a Mozilla account. Off by default.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccountsSettings {
    /// Serve the sign-in page and the account endpoints; the tokenserver trusts their tokens.
    pub enabled: bool,
    /// Also accept Mozilla-account tokens (existing users keep syncing). Off unless set: with
    /// it, anyone with a Mozilla account can use this server's storage, invite or not.
    pub trust_mozilla_accounts: bool,
    /// The RS256 signing keys (JSON, owner-only); empty: `<data_dir>/accounts-signing-keys.json`,
    /// generated on first start.
    pub signing_key_file: String,
    /// Threads (each with at most one connection) of the accounts actor's lane for everything
    /// but sign-ins.
    pub threads: u64,
    /// Password stretches (scrypt, 64 MiB each at the default cost) running at once: the
    /// threads of the sign-in lane.
    pub max_concurrent_stretches: u64,
    /// How long a sign-in may wait for a stretch; past it, 503 + Retry-After.
    pub stretch_deadline_seconds: u64,
    /// scrypt cost N = 2^scrypt_log_n (FxA: 16).
    pub scrypt_log_n: u64,
    /// Lifetime of the access tokens the tokenserver and the profile endpoint accept (≤ 3600).
    pub access_token_ttl_seconds: u64,
    /// Default lifetime of `weft account invite` and `reset-password-link` codes.
    pub invite_ttl_hours: u64,
    /// Requests without valid credentials (sign-in, create, reset, status, code and refresh
    /// grants, Hawk that fails to verify) per window per client address (docs/accounts.md).
    pub rate_limit_per_address: u64,
    /// Hawk-signed requests per window per valid session, whatever its address.
    pub rate_limit_per_session: u64,
    /// Wrong passwords per window per (account, client address).
    pub failed_logins_per_account_address: u64,
    pub rate_limit_window_seconds: u64,
    /// Web Push to a device's registered `pushCallback` when a tab is sent to it (and for
    /// `devices/notify`), so that it arrives at once instead of at the device's next poll.
    pub push_enabled: bool,
    /// The push services pushed to, by host: `host` (and its subdomains, https on 443) or
    /// `host:port`. Anything else a client registers is never contacted (docs/accounts.md).
    pub push_allowed_hosts: Vec<String>,
    /// Also push to http(s) endpoints on loopback (127.0.0.0/8, ::1, localhost): a push
    /// service on this machine, or tests. Off: a client could otherwise aim the server at
    /// whatever listens on it.
    pub push_allow_loopback: bool,
    /// Pushes waiting to be sent; beyond, a push is dropped (the command stays stored).
    pub push_queue_limit: u64,
    /// Pushes being sent at once.
    pub push_max_in_flight: u64,
    /// The whole exchange with the push service for one push.
    pub push_timeout_seconds: u64,
}

impl Default for AccountsSettings {
    fn default() -> Self {
        AccountsSettings {
            enabled: false,
            trust_mozilla_accounts: false,
            signing_key_file: String::new(),
            threads: 2,
            max_concurrent_stretches: 2,
            stretch_deadline_seconds: 5,
            scrypt_log_n: 16,
            access_token_ttl_seconds: 3600,
            invite_ttl_hours: 7 * 24,
            rate_limit_per_address: 60,
            rate_limit_per_session: 120,
            failed_logins_per_account_address: 5,
            // FxA's customs server counts in windows of 15 minutes.
            rate_limit_window_seconds: 900,
            push_enabled: true,
            push_allowed_hosts: vec![weft_actors::accounts::MOZILLA_PUSH_HOST.into()],
            push_allow_loopback: false,
            push_queue_limit: 1000,
            push_max_in_flight: 8,
            push_timeout_seconds: 10,
        }
    }
}

impl Settings {
    /// Where the accounts' signing keys live.
    pub fn accounts_signing_key_file(&self) -> PathBuf {
        if self.accounts.signing_key_file.is_empty() {
            self.data_dir.join("accounts-signing-keys.json")
        } else {
            PathBuf::from(&self.accounts.signing_key_file)
        }
    }

    pub(super) fn validate_accounts(&self) -> Result<(), ConfigError> {
        let a = &self.accounts;
        if !a.enabled {
            return Ok(());
        }
        if !self.tokenserver.enabled {
            return Err(invalid(
                "accounts.enabled",
                "local accounts need the tokenserver (tokenserver.enabled)",
            ));
        }
        // Passwords are stretched in the page and authPW travels in the body: plain http only
        // where nothing but this machine can listen (local-accounts.md §2, §6).
        if !(self.public_url.starts_with("https://") || crate::node::is_loopback_origin(&self.public_url)) {
            return Err(invalid(
                "public_url",
                "local accounts need an https:// public_url (http only on loopback)",
            ));
        }
        if !(10..=20).contains(&a.scrypt_log_n) {
            return Err(invalid("accounts.scrypt_log_n", "must be between 10 and 20"));
        }
        if a.threads == 0 || a.max_concurrent_stretches == 0 {
            return Err(invalid(
                "accounts.threads",
                "threads and max_concurrent_stretches must be at least 1",
            ));
        }
        if !(1..=3600).contains(&a.access_token_ttl_seconds) {
            return Err(invalid("accounts.access_token_ttl_seconds", "must be between 1 and 3600"));
        }
        if a.rate_limit_window_seconds == 0 || a.invite_ttl_hours == 0 || a.stretch_deadline_seconds == 0 {
            return Err(invalid(
                "accounts.rate_limit_window_seconds",
                "windows and lifetimes must be at least 1",
            ));
        }
        if a.push_queue_limit == 0 || a.push_max_in_flight == 0 || a.push_timeout_seconds == 0 {
            return Err(invalid(
                "accounts.push_queue_limit",
                "push_queue_limit, push_max_in_flight and push_timeout_seconds must be at least 1",
            ));
        }
        if let Some(host) = a.push_allowed_hosts.iter().find(|h| !is_push_host(h)) {
            return Err(invalid(
                "accounts.push_allowed_hosts",
                format!("{host:?} is not a lower-case host name or host:port (no scheme, no path)"),
            ));
        }
        Ok(())
    }
}

/// `push.example.org` or `push.example.org:8443`: what `push_allowed_hosts` entries are
/// compared with (the URL parser's lower-case host and its port).
fn is_push_host(entry: &str) -> bool {
    let (name, port) = entry.rsplit_once(':').map_or((entry, None), |(name, port)| (name, Some(port)));
    let name_ok = !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        });
    name_ok && port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p > 0))
}

#[cfg(test)]
mod tests {
    use crate::config::tests::env;
    use crate::config::Settings;

    #[test]
    fn accounts_are_off_and_need_https_off_loopback() {
        let s = Settings::load(None, env(&[])).unwrap();
        assert!(!s.accounts.enabled && !s.accounts.trust_mozilla_accounts);
        let on = [("WEFT_ACCOUNTS_ENABLED", "true")];
        assert!(Settings::load(None, env(&on)).is_ok());
        let err =
            Settings::load(None, env(&[on[0], ("WEFT_PUBLIC_URL", "http://sync.example.com")])).unwrap_err();
        assert!(err.to_string().starts_with("public_url"), "{err}");
        assert!(Settings::load(None, env(&[on[0], ("WEFT_PUBLIC_URL", "https://sync.example.com")])).is_ok());
        assert!(Settings::load(None, env(&[on[0], ("WEFT_PUBLIC_URL", "http://127.0.0.1:9")])).is_ok());
        let err = Settings::load(None, env(&[on[0], ("WEFT_TOKENSERVER_ENABLED", "false")])).unwrap_err();
        assert!(err.to_string().starts_with("accounts.enabled"), "{err}");
    }

    #[test]
    fn push_goes_to_mozilla_only_unless_told() {
        let on = ("WEFT_ACCOUNTS_ENABLED", "true");
        let s = Settings::load(None, env(&[on])).unwrap();
        assert!(s.accounts.push_enabled && !s.accounts.push_allow_loopback);
        assert_eq!(s.accounts.push_allowed_hosts, ["push.services.mozilla.com"]);
        let hosts = [on, ("WEFT_ACCOUNTS_PUSH_ALLOWED_HOSTS", "push.example.org, autopush.example.net:8443")];
        let s = Settings::load(None, env(&hosts)).unwrap();
        assert_eq!(s.accounts.push_allowed_hosts, ["push.example.org", "autopush.example.net:8443"]);
        for bad in [
            "https://push.example.org",
            "push.example.org/wpush",
            "Push.Example.org",
            "push.example.org:0",
            "",
        ] {
            let err = Settings::load(
                None,
                env(&[on, ("WEFT_ACCOUNTS_PUSH_ALLOWED_HOSTS", &format!("x.org,{bad}"))]),
            );
            if bad.is_empty() {
                // An empty item of a list variable is no item.
                assert!(err.is_ok());
                continue;
            }
            let err = err.unwrap_err();
            assert!(err.to_string().starts_with("accounts.push_allowed_hosts"), "{bad}: {err}");
        }
    }
}
