//! Which push endpoints Weft sends to. A device's `pushCallback` is whatever its client
//! registered, so without a rule an anonymous client with an account could make the server
//! POST to any address it can reach (its own network, a cloud metadata service): an SSRF tool.
//! FxA accepts only https endpoints of known push services (`push.allowedServerRegex`); Weft
//! does the same with a list of hosts (Mozilla's push service by default, an operator's own
//! autopush added by name), and allows loopback only when the operator says so (tests, a push
//! service on the same machine). Redirects are never followed (the client in `push`), so an
//! allowed host cannot send the request elsewhere.

use std::net::IpAddr;

use reqwest::Url;

/// Mozilla's push service: Firefox desktop's endpoints are `https://updates.push.services.mozilla.com/wpush/…`.
pub const MOZILLA_PUSH_HOST: &str = "push.services.mozilla.com";

#[derive(Debug, Clone)]
pub struct EndpointPolicy {
    /// `host` (any subdomain too, port 443) or `host:port` (that port only), lower case.
    pub allowed_hosts: Vec<String>,
    /// Also `http` and `https` to 127.0.0.0/8, `::1` and `localhost`, any port.
    pub allow_loopback: bool,
}

/// Why an endpoint is not sent to (for the log; the client is never told).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("not a URL")]
    NotAUrl,
    #[error("not https")]
    NotHttps,
    #[error("credentials in the URL")]
    Credentials,
    #[error("host not allowed")]
    HostNotAllowed,
}

impl EndpointPolicy {
    /// The endpoint as a URL when it may be sent to.
    pub fn check(&self, endpoint: &str) -> Result<Url, Refused> {
        let url = Url::parse(endpoint).map_err(|_| Refused::NotAUrl)?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Refused::Credentials);
        }
        if self.allow_loopback && is_loopback(&url) && matches!(url.scheme(), "http" | "https") {
            return Ok(url);
        }
        if url.scheme() != "https" {
            return Err(Refused::NotHttps);
        }
        let host = url.host_str().ok_or(Refused::HostNotAllowed)?;
        let port = url.port_or_known_default().unwrap_or(443);
        let allowed = self.allowed_hosts.iter().any(|entry| match entry.rsplit_once(':') {
            Some((name, p)) if p.parse() == Ok(port) => host == name,
            Some(_) => false,
            None => {
                port == 443
                    && (host == entry || host.strip_suffix(entry.as_str()).is_some_and(|s| s.ends_with('.')))
            }
        });
        if allowed {
            Ok(url)
        } else {
            Err(Refused::HostNotAllowed)
        }
    }
}

/// The URL parser has already written every spelling of an address (`127.1`, `0x7f.0.0.1`,
/// `2130706433`) as its dotted or bracketed form.
fn is_loopback(url: &Url) -> bool {
    let host = url.host_str().unwrap_or_default();
    host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allow_loopback: bool) -> EndpointPolicy {
        EndpointPolicy {
            allowed_hosts: vec![MOZILLA_PUSH_HOST.into(), "push.example.org:8443".into()],
            allow_loopback,
        }
    }

    #[test]
    fn only_allowed_https_hosts_and_opted_in_loopback() {
        let p = policy(false);
        for ok in [
            "https://updates.push.services.mozilla.com/wpush/v1/gAAAAABk",
            "https://push.services.mozilla.com/wpush/v2/x",
            "https://push.example.org:8443/wpush/v1/x",
        ] {
            assert!(p.check(ok).is_ok(), "{ok}");
        }
        for (refused, why) in [
            ("http://updates.push.services.mozilla.com/wpush/v1/x", Refused::NotHttps),
            ("https://evilpush.services.mozilla.com.attacker.example/x", Refused::HostNotAllowed),
            ("https://notpush.services.mozilla.com.example/x", Refused::HostNotAllowed),
            ("https://xpush.services.mozilla.com/x", Refused::HostNotAllowed),
            ("https://updates.push.services.mozilla.com:8080/x", Refused::HostNotAllowed),
            ("https://push.example.org/x", Refused::HostNotAllowed),
            ("https://169.254.169.254/latest/meta-data", Refused::HostNotAllowed),
            ("https://127.0.0.1:8443/x", Refused::HostNotAllowed),
            ("http://localhost:9/x", Refused::NotHttps),
            ("https://user:pw@updates.push.services.mozilla.com/x", Refused::Credentials),
            ("file:///etc/passwd", Refused::NotHttps),
            ("not a url", Refused::NotAUrl),
        ] {
            assert_eq!(p.check(refused).err(), Some(why), "{refused}");
        }
        let loopback = policy(true);
        for ok in [
            "http://127.0.0.1:8082/wpush/x",
            "http://[::1]:1/x",
            "https://localhost/x",
            "http://2130706433:9/x",
        ] {
            assert!(loopback.check(ok).is_ok(), "{ok}");
        }
        for refused in ["http://10.0.0.1/x", "http://127.0.0.1.nip.example/x", "gopher://127.0.0.1/x"] {
            assert!(loopback.check(refused).is_err(), "{refused}");
        }
    }
}
