//! Hawk header authentication as Sync uses it (tokens-and-hawk.md §6): parsing the
//! `Authorization: Hawk …` header, building the normalized request string, computing and
//! checking the request MAC, and the payload hash; and the client's side, the header a request
//! is signed with. Request side only: no bewits, no `Server-Authorization`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::AuthError;

/// The attributes of a Hawk `Authorization` header, as sent (values unescaped, untrimmed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HawkHeader {
    /// The token string.
    pub id: String,
    /// Decimal Unix seconds, kept as text because the MAC covers the exact digits sent.
    pub ts: String,
    pub nonce: String,
    /// Standard base64 of the client's MAC.
    pub mac: String,
    /// Standard base64 payload hash, if the client sent one.
    pub hash: Option<String>,
    pub ext: Option<String>,
}

/// Parses `Hawk id="…", ts="…", nonce="…", mac="…"[, hash="…"][, ext="…"]`.
///
/// The scheme must be exactly `Hawk ` (as REF requires) or the result is `NotHawk`. Attributes
/// may come in any order, separated by commas with optional whitespace; values must be
/// double-quoted and run to the next `"` (Sync values never need escapes). Missing `id`, `ts`,
/// `nonce` or `mac`, a non-numeric `ts`, a repeated attribute or any other attribute name is
/// `BadHeader`: `app` and `dlg` in particular would be covered by the client's MAC in a way
/// §6.2 does not reproduce, so accepting them could only end in a MAC mismatch.
pub fn parse_header(value: &str) -> Result<HawkHeader, AuthError> {
    let mut rest = value.strip_prefix("Hawk ").ok_or(AuthError::NotHawk)?;
    let (mut id, mut ts, mut nonce, mut mac, mut hash, mut ext) = (None, None, None, None, None, None);
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            break;
        }
        let (name, after_name) = rest.split_once("=\"").ok_or(AuthError::BadHeader)?;
        let (attr_value, after_value) = after_name.split_once('"').ok_or(AuthError::BadHeader)?;
        let slot = match name {
            "id" => &mut id,
            "ts" => &mut ts,
            "nonce" => &mut nonce,
            "mac" => &mut mac,
            "hash" => &mut hash,
            "ext" => &mut ext,
            _ => return Err(AuthError::BadHeader),
        };
        if slot.replace(attr_value.to_owned()).is_some() {
            return Err(AuthError::BadHeader);
        }
        rest = after_value.trim_start();
        if let Some(after_comma) = rest.strip_prefix(',') {
            rest = after_comma;
        } else if !rest.is_empty() {
            return Err(AuthError::BadHeader);
        }
    }
    let ts: String = ts.ok_or(AuthError::BadHeader)?;
    // The digit check rejects the `+` that u64 parsing would allow; parsing rejects empty and
    // overflowing values, so the actor can rely on a number for its skew check.
    if !ts.bytes().all(|b| b.is_ascii_digit()) || ts.parse::<u64>().is_err() {
        return Err(AuthError::BadHeader);
    }
    Ok(HawkHeader {
        id: id.ok_or(AuthError::BadHeader)?,
        ts,
        nonce: nonce.ok_or(AuthError::BadHeader)?,
        mac: mac.ok_or(AuthError::BadHeader)?,
        hash,
        ext,
    })
}

/// The normalized request string of §6.2, every line LF-terminated. `request_target` is the
/// path and query exactly as on the request line; `host` and `port` are what the client used.
/// The method is upper-cased because Hawk clients upper-case it before signing. The hash and
/// ext lines are the client's attributes or empty — never a server-computed hash (§6.5).
pub fn normalized_string(
    h: &HawkHeader,
    method: &str,
    request_target: &str,
    host: &str,
    port: u16,
) -> String {
    format!(
        "hawk.1.header\n{ts}\n{nonce}\n{method}\n{request_target}\n{host}\n{port}\n{hash}\n{ext}\n",
        ts = h.ts,
        nonce = h.nonce,
        method = method.to_ascii_uppercase(),
        hash = h.hash.as_deref().unwrap_or(""),
        ext = h.ext.as_deref().unwrap_or(""),
    )
}

fn mac_over(key: &str, normalized: &str) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC accepts any key");
    mac.update(normalized.as_bytes());
    mac
}

/// The request MAC as a client computes it: standard base64 of HMAC-SHA256 keyed with the
/// *ASCII bytes* of the base64url Hawk key string (§2, §10.1).
pub fn request_mac(key: &str, normalized: &str) -> String {
    STANDARD.encode(mac_over(key, normalized).finalize().into_bytes())
}

/// Whether `client_mac` (standard base64, canonical padding) is the MAC of `normalized` under
/// `key`. The comparison is constant-time (`verify_slice`), so timing reveals nothing about
/// how much of a forged MAC was right.
pub fn verify_mac(key: &str, normalized: &str, client_mac: &str) -> bool {
    match STANDARD.decode(client_mac) {
        Ok(bytes) => mac_over(key, normalized).verify_slice(&bytes).is_ok(),
        Err(_) => false,
    }
}

/// The `Authorization` value a client sends for `method` on `url`, signed with the token `id`
/// and its Hawk `key`: the MAC covers the path and query exactly as they go on the request line
/// and the host and port connected to; no payload hash and no `ext`, exactly as Firefox signs
/// (storage-api.md §12.1).
pub fn authorization(id: &str, key: &str, method: &str, url: &reqwest::Url, ts: u64, nonce: &str) -> String {
    let target = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    let header = HawkHeader {
        id: id.to_string(),
        ts: ts.to_string(),
        nonce: nonce.to_string(),
        mac: String::new(),
        hash: None,
        ext: None,
    };
    let host = url.host_str().unwrap_or("");
    let port = url.port_or_known_default().unwrap_or(80);
    let mac = request_mac(key, &normalized_string(&header, method, &target, host, port));
    format!("Hawk id=\"{id}\", ts=\"{ts}\", nonce=\"{nonce}\", mac=\"{mac}\"")
}

/// The Hawk payload hash of §6.5: standard base64 of
/// SHA-256(`hawk.1.payload\n` + media type + `\n` + body + `\n`), where the media type is the
/// Content-Type lower-cased with its parameters removed.
pub fn payload_hash(content_type: &str, body: &[u8]) -> String {
    let media_type = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let mut hasher = Sha256::new();
    hasher.update(b"hawk.1.payload\n");
    hasher.update(media_type.as_bytes());
    hasher.update(b"\n");
    hasher.update(body);
    hasher.update(b"\n");
    STANDARD.encode(hasher.finalize())
}

/// Checks the client's `hash` attribute, when it sent one, against the body it sent (§6.5).
/// Without the attribute the body is not looked at, as in REF.
pub fn check_payload_hash(
    client_hash: Option<&str>,
    content_type: &str,
    body: &[u8],
) -> Result<(), AuthError> {
    match client_hash {
        // A plain comparison is fine: the hash is of data the client itself sent, and the MAC
        // already proved the attribute came from the key holder; nothing secret can leak.
        Some(client_hash) if client_hash != payload_hash(content_type, body) => {
            Err(AuthError::BadPayloadHash)
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token_verifier::token::derived_key;

    // §9.1
    const REF_TOKEN: &str = "eyJ1aWQiOiAxLCAibm9kZSI6ICJodHRwOi8vbG9jYWxob3N0OjUwMDAiLCAiZXhwaXJlcyI6IDE4ODQ5Njg0MzkuMCwgImZ4YV91aWQiOiAiMzE5Yjk4Zjk5NjFmZjFkYmRkMDczMTNjZDZiYTkyNWEiLCAiZnhhX2tpZCI6ICJkZTY5N2FkNjZkODQ1YjI4NzNjOWQ3ZTEzYjg5NzFhZiIsICJoYXNoZWRfZnhhX3VpZCI6ICIwZThkZjVkNDEzOThhMzg5OTEzYmQ4NDAyNDM1NjQ5NTE4YWY0NjQ5M2RhMWQ0YTQzN2E0NmRjMTc4NGM1MDFhIiwgImhhc2hlZF9kZXZpY2VfaWQiOiAiMmJjYjkyZjRkNDY5OGMzZDdiMDgzYTNjNjk4YTE2Y2NkNzhiYzJhOGQyMGE5NmU0YmIxMjhkZGNlYWY0ZTBiNiIsICJzYWx0IjogIjJiMzA3YiJ9lXaC5pIOenf7qL1AWlgKFvYH63nakyniTXP-7acS5cw=";
    const REF_KEY: &str = "dSi3EoZyHwgDp-O9OG1jRHtmbGl2M1bwcWsi04C4F58=";
    const REF_GET_PATH: &str = "/storage/1.5/1/storage/col2";
    const REF_POST_PATH: &str = "/storage/1.5/1/storage/col2?batch=MTUzNjE5ODk3NjkyMQ==&commit=true";
    const REF_GET_MAC: &str = "UwDpC+DSrHCSTQSfMOWlueB6kM6gHb0Hsv8eU9ZcTVs=";
    const REF_POST_MAC: &str = "E7j1UjN7//mh7pYXsgGi3n0KGR+sUPpuyogDVzJWaHg=";

    fn header(ts: &str, nonce: &str, mac: &str) -> HawkHeader {
        HawkHeader {
            id: REF_TOKEN.into(),
            ts: ts.into(),
            nonce: nonce.into(),
            mac: mac.into(),
            hash: None,
            ext: None,
        }
    }

    #[test]
    fn ref_fixture_macs() {
        let get = header("1569608439", "h1Ch4vo=", REF_GET_MAC);
        let n = normalized_string(&get, "GET", REF_GET_PATH, "localhost", 5000);
        assert_eq!(request_mac(REF_KEY, &n), REF_GET_MAC);
        assert!(verify_mac(REF_KEY, &n, REF_GET_MAC));

        let post = header("1569608439", "4Rj7c+0=", REF_POST_MAC);
        let n = normalized_string(&post, "POST", REF_POST_PATH, "localhost", 5000);
        assert_eq!(request_mac(REF_KEY, &n), REF_POST_MAC);
        assert!(verify_mac(REF_KEY, &n, REF_POST_MAC));
    }

    #[test]
    fn ref_fixture_variations_do_not_validate() {
        let ok = header("1569608439", "h1Ch4vo=", REF_GET_MAC);
        let with_query = format!("{REF_GET_PATH}?batch=MTUzNjE5ODk3NjkyMQ==&commit=true");
        let wibble_key = derived_key("wibble", "2b307b", REF_TOKEN);
        let variations = [
            (REF_KEY, normalized_string(&ok, "POST", REF_GET_PATH, "localhost", 5000)),
            (REF_KEY, normalized_string(&ok, "GET", &with_query, "localhost", 5000)),
            (REF_KEY, normalized_string(&ok, "GET", REF_GET_PATH, "localhost.com", 5000)),
            (REF_KEY, normalized_string(&ok, "GET", REF_GET_PATH, "localhost", 5001)),
            (
                REF_KEY,
                normalized_string(
                    &header("1536198978", "h1Ch4vo=", REF_GET_MAC),
                    "GET",
                    REF_GET_PATH,
                    "localhost",
                    5000,
                ),
            ),
            (
                REF_KEY,
                normalized_string(
                    &header("1569608439", "1d4mRs0=", REF_GET_MAC),
                    "GET",
                    REF_GET_PATH,
                    "localhost",
                    5000,
                ),
            ),
            (wibble_key.as_str(), normalized_string(&ok, "GET", REF_GET_PATH, "localhost", 5000)),
        ];
        for (key, n) in &variations {
            assert!(!verify_mac(key, n, REF_GET_MAC), "{n:?}");
        }
    }

    #[test]
    fn using_decoded_key_bytes_gives_wrong_mac() {
        // §10.1: the key is the base64url *string*; its decoded bytes do not reproduce the MAC.
        use base64::engine::general_purpose::URL_SAFE;
        let raw = URL_SAFE.decode(REF_KEY).unwrap();
        let n = normalized_string(
            &header("1569608439", "h1Ch4vo=", REF_GET_MAC),
            "GET",
            REF_GET_PATH,
            "localhost",
            5000,
        );
        let mut mac = Hmac::<Sha256>::new_from_slice(&raw).unwrap();
        mac.update(n.as_bytes());
        assert_ne!(STANDARD.encode(mac.finalize().into_bytes()), REF_GET_MAC);
    }

    // §9.2
    const HAWKLIB_KEY: &str = "werxhqb98rpaxn39848xrunpaw3489ruxnpa98w4rxn";

    fn hawklib(hash: Option<&str>) -> HawkHeader {
        HawkHeader {
            id: "dh37fgj492je".into(),
            ts: "1353832234".into(),
            nonce: "j4h3g2".into(),
            mac: String::new(),
            hash: hash.map(str::to_owned),
            ext: Some("some-app-ext-data".into()),
        }
    }

    #[test]
    fn hawkauthlib_vectors() {
        let target = "/resource/1?b=1&a=2";
        let n = normalized_string(&hawklib(None), "GET", target, "example.com", 8000);
        assert_eq!(request_mac(HAWKLIB_KEY, &n), "6R4rV5iE+NPoym+WwjeHzjAGXUtLNIxmo1vpMofpLAE=");
        let n = normalized_string(&hawklib(None), "POST", target, "example.com", 8000);
        assert_eq!(request_mac(HAWKLIB_KEY, &n), "56wgBMHr4oIwA/dGZspMm6Zk4rnf3aiwwVeL0VtWoGo=");

        let hash = payload_hash("application/json; charset=utf-8", br#"{"test": "just some text"}"#);
        assert_eq!(hash, "Lj826IMSgrm1vnCFQNxaXasE8zHBXSWq2pPtnHEmaO8=");
        let n = normalized_string(&hawklib(Some(&hash)), "post", target, "example.com", 8000);
        assert_eq!(request_mac(HAWKLIB_KEY, &n), "Tx7PoLWYtn3VJEc0GdkguHkEB281grYEtFycPhtln9w=");
    }

    #[test]
    fn payload_hash_normalizes_media_type() {
        let body = br#"{"test": "just some text"}"#;
        let expected = "Lj826IMSgrm1vnCFQNxaXasE8zHBXSWq2pPtnHEmaO8=";
        assert_eq!(payload_hash("application/json", body), expected);
        assert_eq!(payload_hash("Application/JSON ;charset=UTF-8", body), expected);
        assert_ne!(payload_hash("text/plain", body), expected);
    }

    #[test]
    fn payload_hash_checked_only_when_sent() {
        let body = br#"{"id":"abc","payload":"x"}"#;
        let hash = payload_hash("application/json", body);
        assert_eq!(check_payload_hash(None, "text/plain", b"anything"), Ok(()));
        assert_eq!(check_payload_hash(Some(&hash), "application/json; charset=utf-8", body), Ok(()));
        let other_body = br#"{"id":"abc","payload":"y"}"#;
        assert_eq!(
            check_payload_hash(Some(&hash), "application/json", other_body),
            Err(AuthError::BadPayloadHash)
        );
        assert_eq!(check_payload_hash(Some(&hash), "text/plain", body), Err(AuthError::BadPayloadHash));
    }

    // §9.5
    #[test]
    fn compact_vector_mac() {
        let token = "eyJub2RlIjoiaHR0cHM6Ly9zeW5jLmV4YW1wbGUuY29tIiwiZnhhX2tpZCI6IjAwMDAwMDAwMDEyMzQtcXFvIiwiZnhhX3VpZCI6IjMxOWI5OGY5OTYxZmYxZGJkZDA3MzEzY2Q2YmE5MjVhIiwiaGFzaGVkX2RldmljZV9pZCI6IjNhNDFjY2NiZGQ2NjZlYmM0MTk5ZjFmOWQxMjQ5ZDQ0IiwiaGFzaGVkX2Z4YV91aWQiOiI0ZDAwZWNhZTY0Yjk4ZGQ3ZGM3ZGVhNjhkMGRkNjE1ZCIsImV4cGlyZXMiOjE4ODQ5Njg0MzksInVpZCI6NDIsInRva2Vuc2VydmVyX29yaWdpbiI6InJ1c3QiLCJzYWx0IjoiYTFiMmMzIn32LKcRiyZKh22GJxqF_zCpvXnIuXJi0K4lN2EnLCi0rA==";
        let h = HawkHeader {
            id: token.into(),
            ts: "1700000000".into(),
            nonce: "abc123".into(),
            mac: String::new(),
            hash: None,
            ext: None,
        };
        let n = normalized_string(&h, "GET", "/1.5/42/info/collections", "sync.example.com", 443);
        assert_eq!(
            request_mac("HRcZqvJahwm3tetV3Hl34aapzRJJz3UIwTq3uQ8vI4o=", &n),
            "MzrAM81cvhTF5k3akUm8CvnxzHmvxhl/ta4ztKvWUyY="
        );
    }

    #[test]
    fn parses_ref_header() {
        let value =
            format!("Hawk id=\"{REF_TOKEN}\", mac=\"{REF_GET_MAC}\", nonce=\"h1Ch4vo=\", ts=\"1569608439\"");
        assert_eq!(parse_header(&value).unwrap(), header("1569608439", "h1Ch4vo=", REF_GET_MAC));
    }

    #[test]
    fn parses_any_order_and_spacing() {
        let h = parse_header(
            "Hawk   ts=\"12\",nonce=\"n\" ,  ext=\"a b, c\",\thash=\"h=\", mac=\"m\", id=\"i\"  ",
        )
        .unwrap();
        assert_eq!(
            h,
            HawkHeader {
                id: "i".into(),
                ts: "12".into(),
                nonce: "n".into(),
                mac: "m".into(),
                hash: Some("h=".into()),
                ext: Some("a b, c".into()),
            }
        );
    }

    #[test]
    fn rejects_bad_headers() {
        for not_hawk in [
            "",
            "Hawk",
            "hawk id=\"i\", ts=\"1\", nonce=\"n\", mac=\"m\"",
            "HAWK id=\"i\", ts=\"1\", nonce=\"n\", mac=\"m\"",
            "Bearer abc",
        ] {
            assert_eq!(parse_header(not_hawk), Err(AuthError::NotHawk), "{not_hawk:?}");
        }
        for bad in [
            "Hawk ",
            "Hawk ts=\"1\", nonce=\"n\", mac=\"m\"",
            "Hawk id=\"i\", nonce=\"n\", mac=\"m\"",
            "Hawk id=\"i\", ts=\"1\", mac=\"m\"",
            "Hawk id=\"i\", ts=\"1\", nonce=\"n\"",
            "Hawk id=\"i\", ts=\"-1\", nonce=\"n\", mac=\"m\"",
            "Hawk id=\"i\", ts=\"1.5\", nonce=\"n\", mac=\"m\"",
            "Hawk id=\"i\", ts=\"\", nonce=\"n\", mac=\"m\"",
            "Hawk id=\"i\", ts=\"99999999999999999999999\", nonce=\"n\", mac=\"m\"",
            "Hawk id=\"i\", ts=\"1\", nonce=\"n\", mac=\"m\", id=\"j\"",
            "Hawk id=\"i\", ts=\"1\", nonce=\"n\", mac=\"m\", app=\"a\"",
            "Hawk id=\"i\", ts=\"+1\", nonce=\"n\", mac=\"m\"",
            "Hawk id=\"i\" ts=\"1\", nonce=\"n\", mac=\"m\"",
            "Hawk id=i, ts=\"1\", nonce=\"n\", mac=\"m\"",
            "Hawk id = \"i\", ts=\"1\", nonce=\"n\", mac=\"m\"",
            "Hawk id=\"i, ts=\"1\", nonce=\"n\", mac=\"m\"",
        ] {
            assert_eq!(parse_header(bad), Err(AuthError::BadHeader), "{bad:?}");
        }
    }

    #[test]
    fn verify_mac_rejects_malformed_mac() {
        let n = normalized_string(
            &header("1569608439", "h1Ch4vo=", REF_GET_MAC),
            "GET",
            REF_GET_PATH,
            "localhost",
            5000,
        );
        assert!(!verify_mac(REF_KEY, &n, ""));
        assert!(!verify_mac(REF_KEY, &n, "not base64!"));
        assert!(!verify_mac(REF_KEY, &n, REF_GET_MAC.trim_end_matches('=')));
        assert!(!verify_mac(REF_KEY, &n, &REF_GET_MAC[..20]));
    }
}
