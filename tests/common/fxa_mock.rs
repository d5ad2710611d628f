//! An in-repo stand-in for the Mozilla-accounts OAuth server (tokenserver-api.md §3), started by
//! the tokenserver tests on a loopback port: `POST /v1/verify` answers from a table of tokens the
//! test registered (unknown tokens get FxA's 400), `GET /v1/jwks` serves a configurable key
//! set, and a few reserved tokens simulate outages. Also mints RS256 JWT access tokens with
//! three fixed RSA test keys (primary, secondary, and one the server is never given).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

/// The scope Firefox requests sync tokens with.
pub const SYNC_SCOPE: &str = "https://identity.mozilla.com/apps/oldsync";
/// `POST /v1/verify` with this token answers 500.
pub const TOKEN_SERVER_ERROR: &str = "mock-fxa-500";
/// `POST /v1/verify` with this token answers only after `SLOW_SECONDS`.
pub const TOKEN_SLOW: &str = "mock-fxa-slow";
pub const SLOW_SECONDS: u64 = 4;
/// The issuer the tests configure and put in JWTs.
pub const ISSUER: &str = "https://accounts.example.test";

const PRIMARY_PEM: &str = "-----BEGIN RSA PRIVATE KEY-----
MIIEoQIBAAKCAQEAtTMDKFakG0VI0WQ/+JhSO25JcaxqjCeNULWL308uBYYqTmb5
/jn3alrAQi78AfrMglxzczgnSmF1ORY3s3Ly97a6n+oWBLG1hUZasgEX6eJzNA4s
M9T+uK+WAaMmXFVqZFRBKftgkvY9dADHwJUHs38SyIk9u/jwdFjhSQerv/cpWaqe
RzS15hJzQ7GkYNSUIIEg5oR+nvA5zZZeh0lhMqZTFUtblL1KTEDXa+RBPHiAGFIZ
damb/t9+sVSBDik6VMAB3jw9kAkxSB/x1Rb/b91RTHaKFhDouGhXbIs90gLJFbHE
Lk7hbHwSV6HdcZ4/upYrM8UaVYTP/raYvGol8wIDAQABAoH/SKbQdXiAo8Pfoa7a
XdKHl+vwDzfOFJzjoD/VJO00CYAih28o71+YhJS2rxFEEK715K+qDGwiFj7mgs+e
ltezPj59VurwzKzD0Vx1LmzQB6dHBtxu/tZtmvS1Nk3eya9IPYXlwqV/TC7x1Zbs
R6Y64gdg/chY50P/uTqUemmvt79B0rLMEwGuaPwwRitluJ3dImB7HkmcM54HEtCF
dGdR707Wi8cx8Rt4fftyKYrH1RnbbQd710e/TQ0QOX8Sq4Q5gKkT1RfVPe3C7V58
ryNMMEr/IYOntcm5gMCxjG32jV2CRCFsYuZ11f1XPAZ0dKN+dDlOzPIyUUt0dB/f
u4TJAoGBAPfCMtVEuQPXsyRNBTJCTKGWNRnAS10MuWopALCeMDzxPdqPw/tr+wQj
NfbqXuJwYjRrGSbMxmJAGawdFgZceoMNT2C1u3Kv1Cdrs6zJrw2yJDHFXoiBKzJ+
VUpJCCB1W9KWYBqqo/dbvxjY04rgYav6G6e4cop9ThjJzDeEyX9VAoGBALs6Bjpc
7LQe45tpK/Z3LF7LGJzU8MKvk0uCVrtC2XfEBrdnOjUEltizac4iDnaxVfmqkYSU
lOLxmaDXkqVJn7zGF3Kl8aMwR0Oxstfk73/rMZg8ReBEULPzDPapVFYMzLhYUEZn
NE2ZO2XX2FpYv6sFL8mWLeD95UG6NFQpWMAnAoGASfuxlkHJRb55fhOJw7JMk8v4
21Gyr3yHOY446IS0Pt6C6+sWSNO7x0aEbNEbuF561NBOWGm5q8kcYWrmEsw2wT+O
PoDGEr8yiPr+UlB/d4WEjWA0lGqN7awP5/ja9mZVHxNMa2odQFYjQFYvBT9vqx0q
ePD5MyWr1nccBlAeo2kCgYBjJ3Os7RGews0fvS8/NBYXjc/XHx7yvDFxx/FO8zRg
rTwxXUYCVg/dbAcY2Ah466nws1ilslq3ZeRKvmA3kSo7u10npqK2Hhdfzng8xk3g
nRqC2UjYYNWst4eiCkNT3yt8Zaj94CJfBkviv9Eg5+d6FyEbzaE2isAjcw3LlKof
+QKBgQCUumvLkOXXSVxPrbuOmm2uipWlNVlX/MTOM71r54KcBLt1i1q2m4MmQYu3
X5NMc+NECCXrKT47uXhFzRKD0RQYB3HptM/3Uc6pMR4QpvCJ5dLIGoQz4qroMVjt
CQpHNmM4WC4qNkZKr0JznGDcqLUB1IJhj9RZViZT/KfbIBw3Ng==
-----END RSA PRIVATE KEY-----\n";
const PRIMARY_N: &str = "tTMDKFakG0VI0WQ_-JhSO25JcaxqjCeNULWL308uBYYqTmb5_jn3alrAQi78AfrMglxzczgnSmF1ORY3s3Ly97a6n-oWBLG1hUZasgEX6eJzNA4sM9T-uK-WAaMmXFVqZFRBKftgkvY9dADHwJUHs38SyIk9u_jwdFjhSQerv_cpWaqeRzS15hJzQ7GkYNSUIIEg5oR-nvA5zZZeh0lhMqZTFUtblL1KTEDXa-RBPHiAGFIZdamb_t9-sVSBDik6VMAB3jw9kAkxSB_x1Rb_b91RTHaKFhDouGhXbIs90gLJFbHELk7hbHwSV6HdcZ4_upYrM8UaVYTP_raYvGol8w";

const SECONDARY_PEM: &str = "-----BEGIN RSA PRIVATE KEY-----
MIIEpAIBAAKCAQEA7/MUSwpyJQGEJzC2Fq1ENXml7feWO4DB4oROpKRSw+mzYT39
mbge2Vw+8FM09oj27VMPmid+eOB0al3rr9u/DTPMdwDNDOStEm8cA3+r/qMJ0hZX
MgeedNFsIKeWckQpJD+kDoBX+tcLerVOmJEiqVBHMHgMLDe6km3WRZWHF4WB8Gx6
JsSoaeh1YrSsoKKAo50Pki9Vji+llJo8Y3rlsRkMljQP2OKuC7sie/DwIElieAMQ
/RFuUPcv7RU8OFFw47MYvOrMm9all/SJN8RHcpnff4Xqgs8uA1Bmqf5RgSk1gkew
dMsXrGN/EnF0WHO/c1sK34ht+vlugU9JkVGX+wIDAQABAoIBADjf1xmKWk/nMhnP
8/kgDKDYOrpTCysDc/FrBvEDehKx3DDabrf26mj+8nQoZM9i25SZMYOKhPHF0hI8
PNcsMPbCJl62s+OweE18RJmXs37hyjwfy38ySx7JXOXIk2J2QYI0C4Dcbv4n5rKp
Mv36uMqFGrqkWc5JT1HR8w3/SUwLhZ92O/4u+TrvoSIyyykWN4tHhFE4S9RXkoJv
F9xVF7C/ByfOzUnIDH9I/DLtd1WHDs5oLLkEGq+4G6wwHezCVhomCut8eNTnbc3r
axJ0ut6HaYKh0j5RZGMyktIaX7XLiaWcLj4RNCFBf0WJ3tvM1KUWSrUcostSZjTk
KMtRdeECgYEA/h0zERrmMPmQNXol7F36vKcfJid2HjmPqvU8rVZjW2DHeN1/xcAb
W6XoDEjBIHWk3ETEdBVLRPoWnGtuFqD8B5w6x/8OJJ5tIHNDtMXzxsCzK3nEMeAg
LBfhBE5H876qQ9/xy3s7GwVdGCZeaSYh7zShjF+0AetKh9rFXxgLxMkCgYEA8br3
1Dmq3GWNepR6W/+GskMbiG/BmoeO02ZqzciNcAwc17yxb9OKaELc0YNI9JC6zLXZ
Rn9owgNHF3knGHVp3Xztu+9pKMZU8P/BZHLfWIdpQchUk42g0rYXDRzWicqdzbjI
urdScorqkzx6VW2FUpHu3BUdwnMz3oVobwwa7KMCgYAasS6ACXdMhapkM6RwI58G
2fcnptV9b0ZsCr6I5p4hJxVM2NdnCjrVcaPiRnIi2riqen64QtRZNnvRimdR8S8I
DZ0PDPeLWSjVU8Y04uYsZmlrk6rMImK+vvNf5GkibVCtOITJfvRCblnNA5q/KMY/
viOJ/zOFUBXQF2bMClaSIQKBgQDBeWn+XKGagVV5dPlyRNSkPP3+d6Q3cKQqI2D8
j7ZUpf031vkVjfTLeiiPMErmJCi+zBW5TSSllEYETZ2y/9bZxbHpp7c9QXCe67T4
FtEYZFkko5i9+K9ttvxALIKyCo+/JlTSzQOaVgFmExO+6Ee7TL4nPGdzSQ2M3q41
ozSxjQKBgQD3FtlkfwNNKmfliZFu5Mh47WyhXALVu4R4hvQkESqlYYgv3NOnY0Pv
BmDCMLd02LU++k7sZEvmKC2k/40+LayLNbddV7WT3/BSHQpQh5oxGjcDqDqxleoy
JaRRHYbh7buotJVa7ptENTiYLj72splw7a8Vq6LkTYIGqT/402gj6g==
-----END RSA PRIVATE KEY-----\n";
const SECONDARY_N: &str = "7_MUSwpyJQGEJzC2Fq1ENXml7feWO4DB4oROpKRSw-mzYT39mbge2Vw-8FM09oj27VMPmid-eOB0al3rr9u_DTPMdwDNDOStEm8cA3-r_qMJ0hZXMgeedNFsIKeWckQpJD-kDoBX-tcLerVOmJEiqVBHMHgMLDe6km3WRZWHF4WB8Gx6JsSoaeh1YrSsoKKAo50Pki9Vji-llJo8Y3rlsRkMljQP2OKuC7sie_DwIElieAMQ_RFuUPcv7RU8OFFw47MYvOrMm9all_SJN8RHcpnff4Xqgs8uA1Bmqf5RgSk1gkewdMsXrGN_EnF0WHO_c1sK34ht-vlugU9JkVGX-w";

const UNKNOWN_PEM: &str = "-----BEGIN RSA PRIVATE KEY-----
MIIEpAIBAAKCAQEAsKh20jsXS2W12ZBHCuxeajmoCixqWTC7q+pgE0m01St4nme8
GopmwvTeKKREfSe3SBtD8sQ+RGpWFaahc1WbHnqtCkIV0qdMh0auBOmNz/JJmSXw
GNoED8I8TKP4JzxrgY80itVWISGqx2oEizkv/jD5OeBJ8qJLcaNyRr4gI2o5qLyj
2CcqMch/+jjCiwk0iCsyMuqytrVupLmmVrK1TLk3o7usCVx6Lh4iwygkSs3qkii0
BNQZRBO7kkpJqV5vdpQ0F3q/22dhM99aHOt5sybWrO0RenXb98pZDguHXP2JYRjB
CR/+aM23Xzv3B0XnYFmVezqsUFrjFtXCZQLSIQIDAQABAoIBABpRSTz8jKCGNdcu
7/En/CYlvMD3Pkisl+jT8R2D0irHtR/JeHPDwUIIqhKyliQcXJOjbDX9wlZS48w0
l2zP3gdmYzevV1ebO4K+UYJt1jCaecMVAcsnVN+Rd4Y7ZJFZJkhA20+rhI9JrWAp
N9ATOZvME/TpUwWQjrNj6XcHL/vWbImMBAb1PhtWJ6XZgpAczOuyw/m7iumL7+gT
1kWV8ZOP7LylW+eElibUeP24fxGJvG8bdGSU59kULIXYNk/Eswu6i+KytEkBIKn4
XdGq+9J37dJVU9zxDYE8Vaz6SikiQUOBWHcZ+0VyJIDFwr0aEnwR4labsdDGmcDi
cQPFTrkCgYEA48Bybr9as7WQAEcTko3LZtkVEYbyzTna0D8SZOzN36C3U4cnSx9b
IPk+KgVnkQtqpB6xa21e7Uu3lDZxy+CpCICKD+vvbS8KOS8WYLMlE/DYHyJjkyNd
m72Qez00EWJR+2Yq04Pjdvjw+DROwCe+lQ2UquUB7wAJTW4nGyZhd18CgYEAxpGx
8nQioW/R/FE1FXJKB7SnRpLYHiFozQjJcB5s7H8qdIT8wcRtVVdY59Ct8Bo4jc0g
LKyuBi2R1DREsNPDv+zJJFRqVEWK0uDEFdXaQEcqMV9ZEVfShwhpRE3B3DgwrLeL
SXAgPG0dop2gOeRiZXpjNTcOwg5atoSdeQVfpn8CgYEA26axNooqigNjfEEQaVmD
gA+BOEQ0SyWvGQSbUubnrvOrm01P4i29j9GR2KkZt1ORZ/OKHReAY8+Qn8raeUyU
+XQusyhS47RoYbo+FMjxy4eOiIh8DF4hW6C5hYIDg3iVpKZmS1R5vjZdAKRCByTN
s6dDaIYxFTWtwxWndZHQknUCgYBV/nbQB1eQDnskCI8ysII7ABOJTsLlmZZnZSzH
r4WAjjn2qDlGOSkYUnGgQxFw8AoZ7wHGFypuZoHHIrO02KDnl0Ysw5og0NUkKk8B
HdIdEDTHmQFbr2rvK8da20nfcz4xLnPV5Acx5Bd3e0gOikfKpswcGbH8fHbwoFIK
PTeFRQKBgQCt+rHdk/1vEd/P6mGEvkEA/qyPJEOIbp9oPqJR46V7r/eFr3WJZoCL
POrFVICI708d5UkP6Pebato4XV3tmJdeaaoxEWgXwcyyl27tedfC4RnI9JVm3tWt
D0I31hTzwZlba6ieAiiOoZxl+IjIq9KKVum2S0tZLjva13ICj0Kb/g==
-----END RSA PRIVATE KEY-----\n";
const UNKNOWN_N: &str = "sKh20jsXS2W12ZBHCuxeajmoCixqWTC7q-pgE0m01St4nme8GopmwvTeKKREfSe3SBtD8sQ-RGpWFaahc1WbHnqtCkIV0qdMh0auBOmNz_JJmSXwGNoED8I8TKP4JzxrgY80itVWISGqx2oEizkv_jD5OeBJ8qJLcaNyRr4gI2o5qLyj2CcqMch_-jjCiwk0iCsyMuqytrVupLmmVrK1TLk3o7usCVx6Lh4iwygkSs3qkii0BNQZRBO7kkpJqV5vdpQ0F3q_22dhM99aHOt5sybWrO0RenXb98pZDguHXP2JYRjBCR_-aM23Xzv3B0XnYFmVezqsUFrjFtXCZQLSIQ";

/// One of the fixed test keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestKey {
    Primary,
    Secondary,
    /// Never configured on a server: its signatures must be rejected.
    Unknown,
}

impl TestKey {
    fn pem(self) -> &'static str {
        match self {
            TestKey::Primary => PRIMARY_PEM,
            TestKey::Secondary => SECONDARY_PEM,
            TestKey::Unknown => UNKNOWN_PEM,
        }
    }

    /// The public key as a JWK, the way FxA publishes it.
    pub fn jwk(self) -> Value {
        let n = match self {
            TestKey::Primary => PRIMARY_N,
            TestKey::Secondary => SECONDARY_N,
            TestKey::Unknown => UNKNOWN_N,
        };
        json!({"kty": "RSA", "alg": "RS256", "use": "sig", "kid": format!("{self:?}"), "n": n, "e": "AQAB"})
    }
}

/// What goes into a JWT access token; `Jwt::new` gives a valid one.
#[derive(Debug, Clone)]
pub struct Jwt {
    pub key: TestKey,
    pub typ: Option<String>,
    pub claims: Value,
}

impl Jwt {
    pub fn new(key: TestKey, fxa_uid: &str, generation: Option<i64>) -> Jwt {
        let mut claims = json!({
            "sub": fxa_uid,
            "scope": SYNC_SCOPE,
            "iss": ISSUER,
            "exp": now_secs() + 3600,
            "client_id": "5882386c6d801776",
        });
        if let Some(g) = generation {
            claims["fxa-generation"] = json!(g);
        }
        Jwt { key, typ: Some("at+jwt".into()), claims }
    }

    pub fn sign(&self) -> String {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.typ = self.typ.clone();
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(self.key.pem().as_bytes()).expect("test key");
        jsonwebtoken::encode(&header, &self.claims, &key).expect("JWT signs")
    }
}

pub fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock after 1970").as_secs()
        as i64
}

#[derive(Default)]
struct State {
    /// token → (status, body) of `/v1/verify`.
    verify: HashMap<String, (u16, Value)>,
    /// `None`: `/v1/jwks` answers 500.
    jwks: Option<Value>,
}

/// A running mock FxA server. It lives as long as the test process.
#[derive(Clone)]
pub struct FxaMock {
    pub url: String,
    state: Arc<Mutex<State>>,
    /// token → `/v1/verify` calls with it.
    verify_calls: Arc<Mutex<HashMap<String, usize>>>,
    jwks_calls: Arc<AtomicUsize>,
}

impl FxaMock {
    pub fn start() -> FxaMock {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind mock FxA");
        let url = format!("http://{}", listener.local_addr().expect("local addr"));
        let mock =
            FxaMock { url, state: Arc::default(), verify_calls: Arc::default(), jwks_calls: Arc::default() };
        let server = mock.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let server = server.clone();
                std::thread::spawn(move || server.serve(stream));
            }
        });
        mock
    }

    /// Makes `/v1/verify` accept `token` for `fxa_uid` with the given scopes and generation.
    pub fn accept(&self, token: &str, fxa_uid: &str, scope: &[&str], generation: Option<i64>) {
        let body = json!({"user": fxa_uid, "client_id": "5882386c6d801776", "scope": scope, "generation": generation});
        self.answer(token, 200, body);
    }

    /// Makes `/v1/verify` answer `token` with any status and body.
    pub fn answer(&self, token: &str, status: u16, body: Value) {
        self.lock().verify.insert(token.to_string(), (status, body));
    }

    /// Makes `/v1/jwks` serve `keys` (`None`: answer 500).
    pub fn set_jwks(&self, keys: Option<&[TestKey]>) {
        self.lock().jwks = keys.map(|keys| json!({"keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>()}));
    }

    /// How often `/v1/verify` was asked about `token`.
    pub fn verify_calls(&self, token: &str) -> usize {
        self.verify_calls.lock().unwrap_or_else(|e| e.into_inner()).get(token).copied().unwrap_or(0)
    }

    pub fn jwks_calls(&self) -> usize {
        self.jwks_calls.load(Ordering::SeqCst)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn serve(&self, stream: TcpStream) {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let mut reader = BufReader::new(match stream.try_clone() {
            Ok(s) => s,
            Err(_) => return,
        });
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).is_err() {
            return;
        }
        let mut content_length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() || line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    content_length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0u8; content_length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let (status, answer) = if request_line.starts_with("POST /v1/verify ") {
            let token = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v["token"].as_str().map(str::to_string))
                .unwrap_or_default();
            *self.verify_calls.lock().unwrap_or_else(|e| e.into_inner()).entry(token.clone()).or_default() +=
                1;
            match token.as_str() {
                TOKEN_SERVER_ERROR => (500, json!({"error": "Internal Server Error"})),
                TOKEN_SLOW => {
                    std::thread::sleep(Duration::from_secs(SLOW_SECONDS));
                    (200, json!({"user": "slow", "scope": [SYNC_SCOPE]}))
                }
                _ => self
                    .lock()
                    .verify
                    .get(&token)
                    .cloned()
                    .unwrap_or((400, json!({"code": 400, "errno": 108, "message": "Invalid token"}))),
            }
        } else if request_line.starts_with("GET /v1/jwks ") {
            self.jwks_calls.fetch_add(1, Ordering::SeqCst);
            match self.lock().jwks.clone() {
                Some(keys) => (200, keys),
                None => (500, json!({"error": "unavailable"})),
            }
        } else {
            (404, json!({"error": "not found"}))
        };
        let body = answer.to_string();
        let mut stream = stream;
        let _ = write!(
            stream,
            "HTTP/1.1 {status} Mock\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    }
}
