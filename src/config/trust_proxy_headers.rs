//! `trust_proxy_headers`: which peers may tell Weft, through `Forwarded` / `X-Forwarded-Host` /
//! `X-Forwarded-Proto`, the origin a client used (tokens-and-hawk.md §6.4). Those headers
//! decide the host and port the Hawk MAC binds and the node a request is for, so only the
//! deployment's own proxies may set them; from any other peer they are ignored.
//!
//! The setting is a list of addresses or networks (`"127.0.0.1"`, `"10.0.0.0/8"`, `"::1"`),
//! or `false` (no peer). `true`, the older form, still means every peer, and is reported as a
//! warning by `check-config` and `serve` with what to write instead.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// An entry of the list that is neither an address nor a network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an IP address or network (e.g. 10.0.0.0/8)")]
pub struct NotANetwork(pub String);

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawSetting", into = "RawSetting")]
pub enum TrustProxyHeaders {
    /// `false` or `[]`: the headers are never used.
    #[default]
    Nobody,
    /// `true`: every peer is trusted, as before the list existed.
    Everybody,
    /// The peers whose headers are used.
    Peers(Vec<IpNetwork>),
}

impl TrustProxyHeaders {
    /// Whether the headers of a request from `peer` are used. A request without a known peer
    /// address (never the case over TCP) is not trusted.
    pub fn trusts(&self, peer: Option<IpAddr>) -> bool {
        match self {
            TrustProxyHeaders::Nobody => false,
            TrustProxyHeaders::Everybody => true,
            TrustProxyHeaders::Peers(networks) => {
                peer.is_some_and(|peer| networks.iter().any(|net| net.contains(peer)))
            }
        }
    }

    /// Parses the comma-separated form of the environment variable: a boolean word or a list.
    pub fn from_env(raw: &str) -> Result<TrustProxyHeaders, NotANetwork> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => return Ok(TrustProxyHeaders::Everybody),
            "0" | "false" | "no" | "off" | "" => return Ok(TrustProxyHeaders::Nobody),
            _ => {}
        }
        let list = raw.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
        TrustProxyHeaders::try_from(RawSetting::List(list))
    }
}

/// The TOML / environment form.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum RawSetting {
    Bool(bool),
    List(Vec<String>),
}

impl TryFrom<RawSetting> for TrustProxyHeaders {
    type Error = NotANetwork;

    fn try_from(raw: RawSetting) -> Result<Self, NotANetwork> {
        Ok(match raw {
            RawSetting::Bool(false) => TrustProxyHeaders::Nobody,
            RawSetting::Bool(true) => TrustProxyHeaders::Everybody,
            RawSetting::List(list) if list.is_empty() => TrustProxyHeaders::Nobody,
            RawSetting::List(list) => {
                TrustProxyHeaders::Peers(list.iter().map(|s| s.parse()).collect::<Result<_, _>>()?)
            }
        })
    }
}

impl From<TrustProxyHeaders> for RawSetting {
    fn from(setting: TrustProxyHeaders) -> RawSetting {
        match setting {
            TrustProxyHeaders::Nobody => RawSetting::Bool(false),
            TrustProxyHeaders::Everybody => RawSetting::Bool(true),
            TrustProxyHeaders::Peers(networks) => {
                RawSetting::List(networks.iter().map(ToString::to_string).collect())
            }
        }
    }
}

/// An address, or a network in CIDR notation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNetwork {
    addr: IpAddr,
    prefix: u8,
}

impl IpNetwork {
    pub fn contains(&self, peer: IpAddr) -> bool {
        // A v4 client on a dual-stack socket shows up as ::ffff:a.b.c.d.
        let peer = match peer {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(peer, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, peer) {
            (IpAddr::V4(net), IpAddr::V4(peer)) => {
                masked(u32::from(net).into(), self.prefix, 32)
                    == masked(u32::from(peer).into(), self.prefix, 32)
            }
            (IpAddr::V6(net), IpAddr::V6(peer)) => {
                masked(u128::from(net), self.prefix, 128) == masked(u128::from(peer), self.prefix, 128)
            }
            _ => false,
        }
    }
}

/// The top `prefix` bits of a `width`-bit address.
fn masked(addr: u128, prefix: u8, width: u8) -> u128 {
    let host_bits = u32::from(width - prefix);
    addr.checked_shr(host_bits).unwrap_or(0)
}

impl std::str::FromStr for IpNetwork {
    type Err = NotANetwork;

    fn from_str(text: &str) -> Result<Self, NotANetwork> {
        let bad = || NotANetwork(text.to_string());
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let width = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => width,
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= width).ok_or_else(bad)?,
        };
        Ok(IpNetwork { addr, prefix })
    }
}

impl fmt::Display for IpNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = if self.addr.is_ipv4() { 32 } else { 128 };
        if self.prefix == width {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.prefix)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn lists_trust_only_their_peers() {
        let setting = TrustProxyHeaders::from_env("127.0.0.1, 10.0.0.0/8,fd00::/8").unwrap();
        assert!(setting.trusts(ip("127.0.0.1")));
        assert!(setting.trusts(ip("::ffff:127.0.0.1")));
        assert!(setting.trusts(ip("10.200.3.4")));
        assert!(setting.trusts(ip("fd12::1")));
        assert!(!setting.trusts(ip("127.0.0.2")));
        assert!(!setting.trusts(ip("11.0.0.1")));
        assert!(!setting.trusts(ip("::1")));
        assert!(!setting.trusts(None));
        assert!(TrustProxyHeaders::from_env("0.0.0.0/0").unwrap().trusts(ip("8.8.8.8")));
    }

    #[test]
    fn booleans_keep_their_meaning() {
        assert_eq!(TrustProxyHeaders::from_env("false").unwrap(), TrustProxyHeaders::Nobody);
        assert!(!TrustProxyHeaders::Nobody.trusts(ip("127.0.0.1")));
        assert_eq!(TrustProxyHeaders::from_env("true").unwrap(), TrustProxyHeaders::Everybody);
        assert!(TrustProxyHeaders::Everybody.trusts(ip("203.0.113.9")));
    }

    #[test]
    fn bad_entries_are_refused() {
        for bad in ["localhost", "10.0.0.0/33", "::1/129", "10.0.0.1/", "1.2.3"] {
            assert!(TrustProxyHeaders::from_env(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn toml_round_trip() {
        #[derive(Serialize, Deserialize)]
        struct T {
            t: TrustProxyHeaders,
        }
        for (text, expected) in [
            ("t = false", TrustProxyHeaders::Nobody),
            ("t = true", TrustProxyHeaders::Everybody),
            ("t = []", TrustProxyHeaders::Nobody),
            ("t = [\"::1\", \"192.168.0.0/16\"]", TrustProxyHeaders::from_env("::1,192.168.0.0/16").unwrap()),
        ] {
            let parsed: T = toml::from_str(text).unwrap();
            assert_eq!(parsed.t, expected);
            let again: T = toml::from_str(&toml::to_string(&parsed).unwrap()).unwrap();
            assert_eq!(again.t, expected);
        }
        assert!(toml::from_str::<T>("t = [\"nope\"]").is_err());
    }
}
