//! The client address the accounts rate limits are keyed by. The TCP peer, unless the peer is
//! one of `trust_proxy_headers`: then the forwarding chain is read from the right (the hop the
//! nearest proxy appended) past every trusted proxy, and the first hop that is not one is the
//! client. Everything left of it was written by the client and is ignored, so a client cannot
//! pick its own bucket. `X-Forwarded-For` is read when present (nginx, Caddy, HAProxy, Apache
//! and Traefik append to it by default), `Forwarded` otherwise. IPv6 clients are grouped by
//! their /64, the smallest block one subscriber is usually given.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use actix_web::http::header::HeaderMap;
use actix_web::HttpRequest;

use crate::config::trust_proxy_headers::TrustProxyHeaders;

/// The rate-limit key of the request's client: an IPv4 address or an IPv6 /64.
pub fn client_address(req: &HttpRequest, trusted: &TrustProxyHeaders) -> String {
    match req.peer_addr() {
        Some(peer) => key(resolve(peer.ip(), req.headers(), trusted)),
        // Never the case over TCP; all such requests share one bucket.
        None => "unknown".into(),
    }
}

/// The client's address: `peer`, or the rightmost forwarded hop that is not a trusted proxy.
fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &TrustProxyHeaders) -> IpAddr {
    let mut client = peer;
    if !trusted.trusts(Some(client)) {
        return client;
    }
    for hop in forwarded_hops(headers).into_iter().rev() {
        // A hop that is not an address (`unknown`, an obfuscated name, garbage) ends the walk:
        // the last proxy that named a real address is the best that can be said.
        let Some(hop) = hop else { break };
        client = hop;
        if !trusted.trusts(Some(client)) {
            break;
        }
    }
    client
}

/// The hops of `X-Forwarded-For` (every line, in order) or, without it, of `Forwarded`'s `for=`.
fn forwarded_hops(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let lines = |name: &str| -> Vec<String> {
        headers.get_all(name).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()).collect()
    };
    let xff = lines("x-forwarded-for");
    if !xff.is_empty() {
        return xff.iter().flat_map(|line| line.split(',')).map(parse_hop).collect();
    }
    lines("forwarded")
        .iter()
        .flat_map(|line| line.split(','))
        .map(|element| {
            element
                .split(';')
                .filter_map(|pair| pair.split_once('='))
                .find(|(name, _)| name.trim().eq_ignore_ascii_case("for"))
                .and_then(|(_, value)| parse_hop(value))
        })
        .collect()
}

/// `192.0.2.1`, `192.0.2.1:443`, `2001:db8::1`, `[2001:db8::1]:443`, optionally quoted.
fn parse_hop(text: &str) -> Option<IpAddr> {
    let text = text.trim().trim_matches('"');
    text.parse::<IpAddr>()
        .or_else(|_| text.parse::<SocketAddr>().map(|s| s.ip()))
        .or_else(|_| text.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>())
        .ok()
}

/// IPv4 (a mapped one included) as itself, IPv6 as its /64.
fn key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let prefix = u128::from(v6) & !u128::from(u64::MAX);
                format!("{}/64", Ipv6Addr::from(prefix))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::{HeaderName, HeaderValue};

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(HeaderName::from_static(name), HeaderValue::from_static(value));
        }
        map
    }

    fn client(peer: &str, trusted: &str, pairs: &[(&'static str, &'static str)]) -> String {
        let trusted = TrustProxyHeaders::from_env(trusted).unwrap();
        key(resolve(peer.parse().unwrap(), &headers(pairs), &trusted))
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        assert_eq!(client("198.51.100.7", "false", &[("x-forwarded-for", "203.0.113.1")]), "198.51.100.7");
        assert_eq!(
            client("198.51.100.7", "10.0.0.0/8", &[("x-forwarded-for", "203.0.113.1")]),
            "198.51.100.7"
        );
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let xff = |v| client("10.0.0.1", "10.0.0.0/8", &[("x-forwarded-for", v)]);
        // The client wrote the left part; the proxy appended what it saw.
        assert_eq!(xff("1.1.1.1, 2.2.2.2, 198.51.100.9"), "198.51.100.9");
        assert_eq!(xff("1.1.1.1, 198.51.100.9, 10.0.0.2"), "198.51.100.9", "inner proxies are skipped");
        assert_eq!(xff("garbage, 198.51.100.9"), "198.51.100.9");
        assert_eq!(xff("198.51.100.9, garbage"), "10.0.0.1", "a proxy that forwards garbage is the client");
        assert_eq!(xff("10.0.0.3"), "10.0.0.3", "an all-trusted chain ends at its leftmost hop");
        assert_eq!(xff("[2001:db8::1]:443"), "2001:db8::/64");
        let two_lines = client(
            "10.0.0.1",
            "10.0.0.0/8",
            &[("x-forwarded-for", "1.1.1.1"), ("x-forwarded-for", "198.51.100.9")],
        );
        assert_eq!(two_lines, "198.51.100.9");
    }

    #[test]
    fn forwarded_is_read_without_x_forwarded_for() {
        let fwd = |v| client("10.0.0.1", "10.0.0.0/8", &[("forwarded", v)]);
        assert_eq!(fwd("for=1.1.1.1, for=\"[2001:db8:1:2::9]:4711\";proto=https"), "2001:db8:1:2::/64");
        assert_eq!(fwd("for=198.51.100.9;by=10.0.0.1"), "198.51.100.9");
        assert_eq!(fwd("for=unknown"), "10.0.0.1");
        let both = client(
            "10.0.0.1",
            "10.0.0.0/8",
            &[("forwarded", "for=1.1.1.1"), ("x-forwarded-for", "198.51.100.9")],
        );
        assert_eq!(both, "198.51.100.9", "X-Forwarded-For wins when both are there");
    }

    #[test]
    fn ipv6_is_grouped_by_its_64() {
        assert_eq!(client("2001:db8:1:2:aaaa::1", "false", &[]), "2001:db8:1:2::/64");
        assert_eq!(client("2001:db8:1:2:bbbb::2", "false", &[]), "2001:db8:1:2::/64");
        assert_eq!(client("::ffff:192.0.2.5", "false", &[]), "192.0.2.5");
    }
}
