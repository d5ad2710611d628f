//! `token`: tokenserver traffic (tokenserver-api.md §1–§4, §11). Each iteration is one
//! `GET /1.0/sync/1.5` as Firefox sends it (`Authorization: Bearer <JWT>`, `X-KeyID`,
//! `Accept: application/json`), mostly good, mixed with the bad requests a real tokenserver
//! sees: no `Authorization`, another scheme, a forged signature, an expired token, no
//! `X-KeyID`, a token without the sync scope. Good answers are checked for the fields clients
//! use, and some of the issued tokens are used at once on the storage node they name.
//! The JWTs are signed with the built-in test key (`oauth.rs`): the server must trust its JWK.
//! `fetch_token` is the same good request for the storage scenarios' `--tokenserver` users.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::Rng;
use reqwest::Method;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::User;
use crate::auth::{fxa_uid, unix_now, Credentials};
use crate::cli::is_loopback_url;
use crate::http::{Request, Session, Step, Stop};
use crate::oauth::SYNC_SCOPE;

pub const TOKEN_PATH: &str = "/1.0/sync/1.5";
/// Share (percent) of good requests; the rest is split evenly over the bad kinds.
const GOOD_PERCENT: u32 = 70;
/// Share (percent) of issued tokens used right away on `info/collections`.
const USE_TOKEN_PERCENT: u32 = 10;
/// JWT lifetime: longer than any bounded run plus its setup.
const JWT_LIFETIME_S: u64 = 3 * 3600;

/// The signed material of one user, made once in setup (RSA signing is the expensive part).
pub struct OauthUser {
    good: String,
    expired: String,
    wrong_scope: String,
    forged: String,
    key_id: String,
}

#[derive(Clone, Copy)]
enum Bad {
    NoAuthorization,
    OtherScheme,
    Forged,
    Expired,
    NoKeyId,
    WrongScope,
}

const BAD: [(Bad, &str); 6] = [
    (Bad::NoAuthorization, "GET /1.0/sync/1.5 (no Authorization)"),
    (Bad::OtherScheme, "GET /1.0/sync/1.5 (BrowserID scheme)"),
    (Bad::Forged, "GET /1.0/sync/1.5 (forged signature)"),
    (Bad::Expired, "GET /1.0/sync/1.5 (expired JWT)"),
    (Bad::NoKeyId, "GET /1.0/sync/1.5 (no X-KeyID)"),
    (Bad::WrongScope, "GET /1.0/sync/1.5 (wrong scope)"),
];
const GOOD_KIND: &str = "GET /1.0/sync/1.5 (good)";
const FETCH_KIND: &str = "GET /1.0/sync/1.5 (storage token)";
const USE_KIND: &str = "GET info/collections (issued token)";

pub async fn setup(s: &mut Session, user: &mut User) -> Step<()> {
    let Some(key) = s.shared.oauth.as_ref() else {
        s.stats.error("setup", "no OAuth key loaded".into());
        return Err(Stop::Failed);
    };
    // keys_changed_at and generation in milliseconds, constant per user so that the
    // tokenserver's consistency rules (§6.3) always hold.
    let generation = 1_700_000_000_000u64 + user.uid;
    let now = unix_now();
    let claims = |scope: &str, exp: u64| {
        json!({
            "sub": fxa_uid(user.uid),
            "scope": scope,
            "iss": s.shared.opts.oauth_issuer,
            "client_id": "5882386c6d801776",
            "iat": now,
            "exp": exp,
            "fxa-generation": generation,
        })
    };
    let good = key.jwt(&claims(SYNC_SCOPE, now + JWT_LIFETIME_S));
    let expired = key.jwt(&claims(SYNC_SCOPE, now - 3600));
    let wrong_scope = key.jwt(&claims("profile", now + JWT_LIFETIME_S));
    let forged = forge(&good);
    let client_state = &Sha256::digest(format!("weft-loadtest client state {}", user.uid).as_bytes())[..16];
    let key_id = format!("{generation:013}-{}", URL_SAFE_NO_PAD.encode(client_state));
    user.oauth = Some(OauthUser { good, expired, wrong_scope, forged, key_id });
    Ok(())
}

/// The same JWT with one signature character changed, so the signature no longer verifies.
fn forge(jwt: &str) -> String {
    let cut = jwt.rfind('.').map_or(0, |i| i + 1);
    let (head, sig) = jwt.split_at(cut);
    let mut sig: Vec<char> = sig.chars().collect();
    if let Some(first) = sig.first_mut() {
        *first = if *first == 'A' { 'B' } else { 'A' };
    }
    format!("{head}{}", sig.into_iter().collect::<String>())
}

pub async fn iteration(s: &mut Session, user: &mut User) -> Step<()> {
    let Some(oauth) = user.oauth.as_ref() else {
        s.stats.error(GOOD_KIND, "user has no OAuth material (setup failed)".into());
        return Err(Stop::Failed);
    };
    let get =
        || Request::unauthenticated(Method::GET, TOKEN_PATH.to_string()).header("Accept", "application/json");
    let bearer = |jwt: &str| format!("Bearer {jwt}");
    if s.rng.gen_range(0..100) >= GOOD_PERCENT {
        let (bad, kind) = BAD[s.rng.gen_range(0..BAD.len())];
        let req = match bad {
            Bad::NoAuthorization => get().header("X-KeyID", oauth.key_id.clone()),
            Bad::OtherScheme => get()
                .header("Authorization", "BrowserID eyJhbGciOiJSUzI1NiJ9")
                .header("X-KeyID", oauth.key_id.clone()),
            Bad::Forged => {
                get().header("Authorization", bearer(&oauth.forged)).header("X-KeyID", oauth.key_id.clone())
            }
            Bad::Expired => {
                get().header("Authorization", bearer(&oauth.expired)).header("X-KeyID", oauth.key_id.clone())
            }
            Bad::NoKeyId => get().header("Authorization", bearer(&oauth.good)),
            Bad::WrongScope => get()
                .header("Authorization", bearer(&oauth.wrong_scope))
                .header("X-KeyID", oauth.key_id.clone()),
        };
        s.call(kind, req, &[401]).await?;
        return Ok(());
    }
    let Issued { id, key, endpoint, uid } = good_request(s, GOOD_KIND, oauth).await?;
    if s.rng.gen_range(0..100) < USE_TOKEN_PERCENT {
        // Only ever follow the endpoint to the target itself (loopback by construction).
        let base = s.shared.opts.target.as_str().trim_end_matches('/').to_string();
        let Some(path) = endpoint.strip_prefix(&base) else {
            s.stats.error(GOOD_KIND, format!("api_endpoint {endpoint:?} is not on the target {base}"));
            return Err(Stop::Failed);
        };
        let creds = Credentials::issued(uid, id, key, None);
        let req = Request::get(format!("{path}/info/collections"), &creds);
        s.call(USE_KIND, req, &[200]).await?;
    }
    Ok(())
}

/// What a tokenserver's 200 gives a client.
struct Issued {
    id: String,
    key: String,
    endpoint: String,
    uid: u64,
}

/// The good `GET /1.0/sync/1.5`, its answer checked for the fields clients use.
async fn good_request(s: &mut Session, kind: &'static str, oauth: &OauthUser) -> Step<Issued> {
    let req = Request::unauthenticated(Method::GET, TOKEN_PATH.to_string())
        .header("Accept", "application/json")
        .header("Authorization", format!("Bearer {}", oauth.good))
        .header("X-KeyID", oauth.key_id.clone());
    let reply = s.call(kind, req, &[200]).await?;
    let json = reply.json().unwrap_or_default();
    let field = |name: &str| json.get(name).and_then(|v| v.as_str()).map(str::to_string);
    let (Some(id), Some(key), Some(endpoint), Some(uid)) =
        (field("id"), field("key"), field("api_endpoint"), json.get("uid").and_then(|v| v.as_u64()))
    else {
        s.stats.error(kind, "200 without id, key, uid and api_endpoint".into());
        return Err(Stop::Failed);
    };
    if json.get("duration").and_then(|v| v.as_u64()).is_none() || json.get("hashalg").is_none() {
        s.stats.error(kind, "200 without duration or hashalg".into());
        return Err(Stop::Failed);
    }
    Ok(Issued { id, key, endpoint, uid })
}

/// `--tokenserver`: a token for `user` from the tokenserver, as Firefox fetches one at its
/// first sync and after a 401; its requests then go to the node `api_endpoint` names (a
/// loopback one unless `--allow-remote-host`). The storage uid must stay the user's.
pub async fn fetch_token(s: &mut Session, user: &mut User) -> Step<()> {
    if user.oauth.is_none() {
        setup(s, user).await?;
    }
    let Some(oauth) = user.oauth.as_ref() else { return Err(Stop::Failed) };
    let Issued { id, key, endpoint, uid } = good_request(s, FETCH_KIND, oauth).await?;
    let origin = endpoint.strip_suffix(&format!("/1.5/{uid}")).map(str::to_string);
    let Some(origin) = origin.filter(|o| reqwest::Url::parse(o).is_ok()) else {
        s.stats.error(FETCH_KIND, format!("api_endpoint {endpoint:?} does not end in /1.5/{uid}"));
        return Err(Stop::Failed);
    };
    let loopback = reqwest::Url::parse(&origin).is_ok_and(|url| is_loopback_url(&url));
    if !loopback && !s.shared.opts.allow_remote_host {
        s.stats.error(FETCH_KIND, format!("api_endpoint {endpoint:?} is not loopback (--allow-remote-host)"));
        return Err(Stop::Failed);
    }
    if user.has_token() && user.creds.uid != uid {
        s.stats.error(
            FETCH_KIND,
            format!("the tokenserver changed the user's uid ({} → {uid})", user.creds.uid),
        );
        return Err(Stop::Failed);
    }
    user.creds = Credentials::issued(uid, id, key, Some(origin));
    Ok(())
}
