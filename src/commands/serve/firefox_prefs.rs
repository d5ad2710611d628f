//! The Firefox prefs (`about:config`) that make a desktop Firefox sync with this server, as
//! `weft serve` prints them at start-up: exactly the ones the current setup needs, no more
//! (README "Use Weft without a Mozilla account", docs/tokenserver.md).
//!
//! - Local accounts on: `identity.fxaccounts.autoconfig.uri` = the public origin; Firefox
//!   derives every other URL (auth, OAuth, profile, tokenserver) from the discovery document
//!   (local-accounts.md §2). On plain http (allowed for accounts on loopback only) Firefox also
//!   needs `identity.fxaccounts.allowHttp = true`: without it "Sign in to sync" does nothing
//!   visible ("Firefox Accounts server must use HTTPS" in the browser console only).
//! - Local accounts off, tokenserver on: `identity.sync.tokenserver.uri` (Mozilla accounts sign
//!   in, this server keeps the data). Firefox accepts an http tokenserver without another pref.
//! - Neither: nothing to set (a storage node behind another server's tokenserver).

use crate::accounts::is_loopback_origin;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pref {
    pub name: &'static str,
    pub value: String,
}

pub fn firefox_prefs(public_url: &str, accounts: bool, tokenserver: bool) -> Vec<Pref> {
    let origin = public_url.trim_end_matches('/');
    let pref = |name, value: &str| Pref { name, value: value.to_string() };
    if accounts {
        let mut prefs = vec![pref("identity.fxaccounts.autoconfig.uri", origin)];
        if is_loopback_origin(origin) {
            prefs.push(pref("identity.fxaccounts.allowHttp", "true"));
        }
        prefs
    } else if tokenserver {
        vec![pref("identity.sync.tokenserver.uri", &format!("{origin}/1.0/sync/1.5"))]
    } else {
        Vec::new()
    }
}

/// The start-up line of one pref.
pub fn line(pref: &Pref) -> String {
    format!("weft: in Firefox (about:config) set {} = {}", pref.name, pref.value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(prefs: &[Pref]) -> Vec<String> {
        prefs.iter().map(|p| format!("{} = {}", p.name, p.value)).collect()
    }

    #[test]
    fn accounts_on_http_loopback_need_allow_http() {
        assert_eq!(
            names(&firefox_prefs("http://localhost:8000/", true, true)),
            [
                "identity.fxaccounts.autoconfig.uri = http://localhost:8000",
                "identity.fxaccounts.allowHttp = true"
            ]
        );
    }

    #[test]
    fn accounts_on_https_need_only_autoconfig() {
        assert_eq!(
            names(&firefox_prefs("https://sync.example.com", true, true)),
            ["identity.fxaccounts.autoconfig.uri = https://sync.example.com"]
        );
    }

    #[test]
    fn accounts_off_need_only_the_tokenserver() {
        assert_eq!(
            names(&firefox_prefs("http://localhost:8000", false, true)),
            ["identity.sync.tokenserver.uri = http://localhost:8000/1.0/sync/1.5"]
        );
        assert!(firefox_prefs("http://localhost:8000", false, false).is_empty());
    }
}
