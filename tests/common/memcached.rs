//! A memcached process of a test's own on a free loopback port, killed on drop, so that a test
//! that kills or restarts it disturbs nobody. Shared by tests/cache.rs and, through `#[path]`,
//! by actors/tests/cache_protocol.rs.

use std::net::TcpListener;
use std::process::{Child, Command};
use std::thread;
use std::time::{Duration, Instant};

/// A private memcached on a free loopback port, killed on drop.
pub struct PrivateMemcached {
    pub port: u16,
    child: Option<Child>,
}

impl PrivateMemcached {
    pub fn start() -> PrivateMemcached {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut m = PrivateMemcached { port, child: None };
        m.restart();
        m
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn restart(&mut self) {
        self.kill();
        let child = Command::new("memcached")
            .args(["-l", "127.0.0.1", "-p", &self.port.to_string(), "-U", "0", "-m", "16", "-u", "root"])
            .spawn()
            .expect("memcached must be installed (scripts/test installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(self.address()).is_err() {
            assert!(Instant::now() < deadline, "memcached did not start");
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateMemcached {
    fn drop(&mut self) {
        self.kill();
    }
}
