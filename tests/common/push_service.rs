//! A Web Push service on a loopback port (RFC 8030's push resource, as Mozilla's autopush
//! answers it) and a device's push subscription keys as Firefox makes them (a P-256 key pair
//! and a 16-byte auth secret, registered base64url). The service records every push it gets;
//! its answer depends on the endpoint's first path segment: `/gone/…` 410 (the subscription
//! expired), `/slow/…` nothing for `SLOW_SECONDS` and then a closed connection, anything else
//! 201 Created.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;
use web_push_native::p256::elliptic_curve::sec1::ToEncodedPoint;
use web_push_native::p256::SecretKey;
use web_push_native::Auth;

/// How long `/slow/…` holds a push without answering: longer than the server's push timeout
/// in the tests, bounded so that no thread outlives the test by much.
pub const SLOW_SECONDS: u64 = 5;

/// One push as the service received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

#[derive(Clone)]
pub struct PushService {
    pub url: String,
    received: Arc<Mutex<Vec<Received>>>,
}

impl PushService {
    pub fn start() -> PushService {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the push service");
        let url = format!("http://{}", listener.local_addr().expect("local addr"));
        let service = PushService { url, received: Arc::default() };
        let server = service.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let server = server.clone();
                std::thread::spawn(move || server.serve(stream));
            }
        });
        service
    }

    /// The pushes received so far on endpoints whose path starts with `prefix`.
    pub fn received(&self, prefix: &str) -> Vec<Received> {
        let all = self.received.lock().unwrap_or_else(|e| e.into_inner());
        all.iter().filter(|r| r.path.starts_with(prefix)).cloned().collect()
    }

    /// Waits (at most 20 s) until `count` pushes arrived on `prefix`; they, or a panic.
    pub fn wait_for(&self, prefix: &str, count: usize) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let got = self.received(prefix);
            if got.len() >= count {
                return got;
            }
            assert!(Instant::now() < deadline, "{count} pushes on {prefix} expected, got {}", got.len());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn serve(&self, stream: TcpStream) {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let Ok(read_half) = stream.try_clone() else { return };
        let mut reader = BufReader::new(read_half);
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).is_err() {
            return;
        }
        let path = request_line.split(' ').nth(1).unwrap_or_default().to_string();
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() || line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
            }
        }
        let length = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0usize);
        let mut body = vec![0u8; length.min(1 << 16)];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        self.received.lock().unwrap_or_else(|e| e.into_inner()).push(Received {
            path: path.clone(),
            headers,
            body,
        });
        let status = if path.starts_with("/gone/") {
            "410 Gone"
        } else if path.starts_with("/slow/") {
            std::thread::sleep(Duration::from_secs(SLOW_SECONDS));
            return;
        } else {
            "201 Created"
        };
        let mut stream = stream;
        let _ = write!(stream, "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    }
}

/// A device's push subscription keys: what Firefox registers as `pushPublicKey` (the P-256
/// public key, uncompressed point) and `pushAuthKey` (16 random bytes), and what it decrypts
/// a push with.
pub struct PushKeys {
    secret: SecretKey,
    auth: [u8; 16],
}

impl PushKeys {
    pub fn generate() -> PushKeys {
        let secret = SecretKey::random(&mut rand::rngs::OsRng);
        PushKeys { secret, auth: rand::random() }
    }

    pub fn public_key(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.secret.public_key().to_encoded_point(false).as_bytes())
    }

    pub fn auth_key(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.auth)
    }

    /// The push's message, decrypted (RFC 8291) and parsed as JSON.
    pub fn decrypt(&self, push: &Received) -> Value {
        let plain =
            web_push_native::decrypt(push.body.clone(), &self.secret, &Auth::clone_from_slice(&self.auth))
                .expect("the push decrypts with the device's keys");
        serde_json::from_slice(&plain).expect("a JSON message")
    }
}
