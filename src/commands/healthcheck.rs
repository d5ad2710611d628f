//! `weft healthcheck`: asks the server this configuration starts for `/__lbheartbeat__` and
//! exits 0 when it answers 200 (500 while it is saturated, nothing when it is down or hung).
//! For the container image's HEALTHCHECK: the image has no shell and no curl, and the address
//! comes from the same settings (`listen`, `WEFT_LISTEN`) the server reads, so the check
//! follows them. A listener on every interface (`0.0.0.0`, `::`) is asked on loopback.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

use crate::config::Settings;

/// Connecting and answering together; a container runtime's own timeout is usually longer.
const TIMEOUT: Duration = Duration::from_secs(5);

pub fn run(settings: &Settings) -> Result<(), String> {
    let addr = probe_address(&settings.listen)?;
    let url = format!("http://{addr}/__lbheartbeat__");
    let client =
        reqwest::Client::builder().timeout(TIMEOUT).build().map_err(|e| format!("healthcheck: {e}"))?;
    let status = actix_web::rt::System::new()
        .block_on(async { client.get(&url).send().await.map(|r| r.status()) })
        .map_err(|e| format!("unhealthy: {url}: {e}"))?;
    if status.is_success() {
        println!("weft: healthy: {url} answered {status}");
        Ok(())
    } else {
        Err(format!("unhealthy: {url} answered {status}"))
    }
}

/// The first address `listen` names, with an unspecified IP replaced by loopback.
fn probe_address(listen: &str) -> Result<SocketAddr, String> {
    let mut addr = listen
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| format!("listen: {listen:?} is not an address"))?;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        });
    }
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_interface_is_asked_on_loopback() {
        assert_eq!(probe_address("0.0.0.0:8000").unwrap().to_string(), "127.0.0.1:8000");
        assert_eq!(probe_address("[::]:8000").unwrap().to_string(), "[::1]:8000");
        assert_eq!(probe_address("10.0.0.5:81").unwrap().to_string(), "10.0.0.5:81");
        assert!(probe_address("nonsense").is_err());
    }
}
