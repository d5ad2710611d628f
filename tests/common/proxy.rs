//! A loopback TCP proxy the test owns, in front of a database server, to make one db node
//! unreachable without touching the shared server behind it: `Forward` passes bytes both ways,
//! `Hang` stops passing them (open connections stall mid-query, new ones are accepted and never
//! answered, as a wedged server or a black-holed network does), `Refuse` resets every open
//! connection and closes new ones at once (a server that went away). Threads are bounded by
//! the connections the server under test opens (two per connection); all stop on Drop.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    Forward = 0,
    Hang = 1,
    Refuse = 2,
    /// Only on Drop: every thread ends.
    Stopped = 3,
}

/// How often idle threads look at the mode.
const POLL: Duration = Duration::from_millis(20);

struct Shared {
    mode: AtomicU8,
    /// Connections accepted while hanging: held silent, closed when the mode changes.
    held: Mutex<Vec<TcpStream>>,
}

impl Shared {
    fn mode(&self) -> Mode {
        match self.mode.load(Ordering::Acquire) {
            0 => Mode::Forward,
            1 => Mode::Hang,
            2 => Mode::Refuse,
            _ => Mode::Stopped,
        }
    }
}

pub struct Proxy {
    pub port: u16,
    shared: Arc<Shared>,
}

impl Proxy {
    /// Listens on a free loopback port, forwarding to `upstream`.
    pub fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("proxy addr").port();
        listener.set_nonblocking(true).expect("nonblocking listener");
        let shared =
            Arc::new(Shared { mode: AtomicU8::new(Mode::Forward as u8), held: Mutex::new(Vec::new()) });
        let accepting = shared.clone();
        std::thread::spawn(move || accept_loop(listener, upstream, accepting));
        Proxy { port, shared }
    }

    pub fn set(&self, mode: Mode) {
        self.shared.mode.store(mode as u8, Ordering::Release);
        // Connections that were held while hanging end now, so that whoever waited on them
        // gets an error and connects again.
        self.shared.held.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.set(Mode::Stopped);
    }
}

fn accept_loop(listener: TcpListener, upstream: SocketAddr, shared: Arc<Shared>) {
    loop {
        let client = match listener.accept() {
            Ok((client, _)) => client,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                if shared.mode() == Mode::Stopped {
                    return;
                }
                std::thread::sleep(POLL);
                continue;
            }
            Err(_) => return,
        };
        let _ = client.set_nonblocking(false);
        // Small query packets must not wait for delayed ACKs (Nagle): the proxy adds no latency.
        let _ = client.set_nodelay(true);
        match shared.mode() {
            Mode::Forward => {
                let Ok(server) = TcpStream::connect(upstream) else { continue };
                let _ = server.set_nodelay(true);
                let (Ok(client2), Ok(server2)) = (client.try_clone(), server.try_clone()) else { continue };
                let (up, down) = (shared.clone(), shared.clone());
                std::thread::spawn(move || pump(client, server, up));
                std::thread::spawn(move || pump(server2, client2, down));
            }
            Mode::Hang => shared.held.lock().unwrap_or_else(|e| e.into_inner()).push(client),
            Mode::Refuse => drop(client),
            Mode::Stopped => return,
        }
    }
}

/// Copies `from` to `to` while forwarding; stalls while hanging; ends both on refuse or stop.
fn pump(mut from: TcpStream, mut to: TcpStream, shared: Arc<Shared>) {
    let _ = from.set_read_timeout(Some(POLL));
    let mut buf = [0u8; 16 * 1024];
    loop {
        match shared.mode() {
            Mode::Forward => {}
            Mode::Hang => {
                std::thread::sleep(POLL);
                continue;
            }
            Mode::Refuse | Mode::Stopped => {
                let _ = from.shutdown(Shutdown::Both);
                let _ = to.shutdown(Shutdown::Both);
                return;
            }
        }
        match from.read(&mut buf) {
            Ok(0) => {
                let _ = to.shutdown(Shutdown::Write);
                return;
            }
            Ok(n) => {
                // Bytes that arrived after a hang began wait with it: a read already under way
                // when the mode changed must not carry a request through.
                while shared.mode() == Mode::Hang {
                    std::thread::sleep(POLL);
                }
                if shared.mode() != Mode::Forward {
                    let _ = from.shutdown(Shutdown::Both);
                    let _ = to.shutdown(Shutdown::Both);
                    return;
                }
                if to.write_all(&buf[..n]).is_err() {
                    let _ = from.shutdown(Shutdown::Both);
                    return;
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => {
                let _ = to.shutdown(Shutdown::Both);
                return;
            }
        }
    }
}
