//! Consistent hashing of keys onto the configured memcached servers: each server owns
//! `POINTS_PER_SERVER` points on a 64-bit circle, and a key belongs to the first point at or
//! after its hash. Adding or removing a server in the configuration therefore moves only the
//! keys of the arcs it gains or loses (about 1/n of them), not nearly all of them as
//! `hash % n` would.
//!
//! A server that fails at runtime keeps its arcs: its keys are then not cached at all (reads go
//! to the database) rather than moved to another server. Every webhead therefore agrees at all
//! times on where a key lives, which the consistency protocol relies on: a webhead that moved a
//! failed server's keys elsewhere would invalidate there while another webhead still read the
//! old entries on the original server.

use sha2::{Digest, Sha256};

/// Enough points that each server's share stays within a few percent of 1/n.
const POINTS_PER_SERVER: usize = 160;

/// A stable 64-bit hash (the same in every process and version, unlike `DefaultHasher`).
pub(crate) fn hash(bytes: &[u8]) -> u64 {
    let digest = Sha256::digest(bytes);
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

pub struct Ring {
    /// (point, server index), sorted by point.
    points: Vec<(u64, usize)>,
}

impl Ring {
    /// `servers` are the configured addresses; a point depends only on its server's address,
    /// so the order of the list does not matter.
    pub fn new(servers: &[String]) -> Ring {
        let mut points: Vec<(u64, usize)> = servers
            .iter()
            .enumerate()
            .flat_map(|(index, server)| {
                (0..POINTS_PER_SERVER).map(move |i| (hash(format!("{server}#{i}").as_bytes()), index))
            })
            .collect();
        points.sort_unstable();
        Ring { points }
    }

    /// Index of the server that owns `key`; `None` only for an empty ring.
    pub fn server_for(&self, key: &str) -> Option<usize> {
        let h = hash(key.as_bytes());
        let at = self.points.partition_point(|&(point, _)| point < h);
        self.points.get(at).or_else(|| self.points.first()).map(|&(_, server)| server)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owners(servers: &[&str], keys: &[String]) -> Vec<String> {
        let servers: Vec<String> = servers.iter().map(|s| s.to_string()).collect();
        let ring = Ring::new(&servers);
        keys.iter().map(|k| servers[ring.server_for(k).unwrap()].clone()).collect()
    }

    #[test]
    fn adding_a_server_moves_only_its_share() {
        let keys: Vec<String> = (0..20_000).map(|uid| format!("sync:{uid}:metadata")).collect();
        let three = owners(&["10.0.0.1:11211", "10.0.0.2:11211", "10.0.0.3:11211"], &keys);
        let four = owners(&["10.0.0.1:11211", "10.0.0.2:11211", "10.0.0.3:11211", "10.0.0.4:11211"], &keys);
        let moved: Vec<(&String, &String)> = three.iter().zip(&four).filter(|(a, b)| a != b).collect();
        // Every moved key moved to the new server, and about a quarter of the keys moved.
        assert!(moved.iter().all(|(_, to)| to.as_str() == "10.0.0.4:11211"));
        let share = moved.len() as f64 / keys.len() as f64;
        assert!((0.18..0.32).contains(&share), "moved share {share}");
        for server in ["10.0.0.1:11211", "10.0.0.2:11211", "10.0.0.3:11211"] {
            let owned = three.iter().filter(|s| s.as_str() == server).count() as f64 / keys.len() as f64;
            assert!((0.25..0.42).contains(&owned), "{server} owns {owned}");
        }
    }

    #[test]
    fn order_of_the_list_does_not_matter() {
        let keys: Vec<String> = (0..1000).map(|uid| format!("{uid}:c:meta")).collect();
        assert_eq!(owners(&["a:1", "b:2", "c:3"], &keys), owners(&["c:3", "a:1", "b:2"], &keys));
        assert_eq!(Ring::new(&[]).server_for("x"), None);
    }
}
