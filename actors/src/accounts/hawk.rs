//! Hawk for local accounts (local-accounts.md §6 over tokens-and-hawk.md §6): FxA's session and
//! key-fetch credentials. Order matters for what a client without credentials can cost:
//! formats are checked at the edge (`well_formed`), `ts` before any transaction, then the token
//! is looked up and the MAC verified, and only then is the nonce remembered and the session's
//! rate limit counted. A request that fails verification counts against its client address
//! instead; nothing it sent is kept.

use std::cell::Cell;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use weft_schema::models::accounts::TokenRow;
use weft_schema::pool::Tx;
use weft_schema::queries::accounts as q;

use super::error::AccountError;
use super::onepw::unhex;
use super::requests::HawkRequest;
use super::shared::{now_ms, Shared};
use crate::token_verifier::hawk::normalized_string;

/// An `Authorization` header longer than this is refused before it is parsed: a well-formed
/// FxA Hawk header is about 250 bytes.
pub const MAX_HEADER_BYTES: usize = 1024;

/// Which table a Hawk id is looked up in.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum TokenKind {
    Session,
    KeyFetch,
    PasswordChange,
}

fn base64_text(text: &str, max: usize) -> bool {
    (1..=max).contains(&text.len())
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_'))
}

impl HawkRequest {
    /// The formats FxA's credentials have: `id` is 64 lowercase hex (a token id), `ts` at most
    /// 12 digits, `nonce` short base64 (Firefox and the page send 12 characters), `mac` and
    /// `hash` a base64 SHA-256. Anything else is refused before any lookup.
    pub fn well_formed(&self) -> Result<(), AccountError> {
        let h = &self.header;
        if h.id.len() != 64 || !h.id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(AccountError::InvalidToken("token id format"));
        }
        let ok = h.ts.len() <= 12
            && base64_text(&h.nonce, 64)
            && h.mac.len() == 44
            && base64_text(&h.mac, 44)
            && h.hash.as_deref().is_none_or(|hash| hash.len() == 44 && base64_text(hash, 44));
        if !ok {
            return Err(AccountError::InvalidSignature("header format"));
        }
        Ok(())
    }
}

/// `ts` within the window of the server clock (§6); answers it. Run once per request, before
/// any transaction.
pub(super) fn check_timestamp(shared: &Shared, hawk: &HawkRequest) -> Result<i64, AccountError> {
    let now = now_ms() / 1000;
    let ts: i64 = hawk.header.ts.parse().map_err(|_| AccountError::InvalidSignature("ts"))?;
    if (ts - now).abs() > shared.config.hawk_window_seconds {
        return Err(AccountError::InvalidTimestamp { server_time: now });
    }
    Ok(ts)
}

/// The Hawk credentials of one request, verified inside its transaction. A transaction retried
/// after a deadlock verifies again, but the nonce and the session's count are taken once.
pub(super) struct HawkCheck<'a> {
    shared: &'a Shared,
    hawk: &'a HawkRequest,
    client: &'a str,
    ts: i64,
    counted: Cell<bool>,
}

impl<'a> HawkCheck<'a> {
    pub fn new(shared: &'a Shared, hawk: &'a HawkRequest, client: &'a str) -> Result<Self, AccountError> {
        let ts = check_timestamp(shared, hawk)?;
        Ok(HawkCheck { shared, hawk, client, ts, counted: Cell::new(false) })
    }

    /// The token the request is signed with, once its MAC (and payload hash) verified, its
    /// nonce is new and its session is within its rate limit.
    pub fn verify(&self, tx: &mut Tx<'_>, kind: TokenKind) -> Result<TokenRow, AccountError> {
        let token = match self.mac(tx, kind) {
            Ok(token) => token,
            Err(e) => {
                // Only failures count against the address: a valid session is never limited
                // by what others behind the same address send.
                self.shared
                    .per_address
                    .check(self.client)
                    .map_err(|retry_after| AccountError::TooManyRequests { retry_after })?;
                return Err(e);
            }
        };
        if !self.counted.replace(true) {
            let now = now_ms() / 1000;
            if !self.shared.nonces.first_use(&token.token_id, &self.hawk.header.nonce, self.ts, now) {
                return Err(AccountError::InvalidNonce);
            }
            self.shared
                .per_session
                .check(&token.token_id)
                .map_err(|retry_after| AccountError::TooManyRequests { retry_after })?;
        }
        Ok(token)
    }

    fn mac(&self, tx: &mut Tx<'_>, kind: TokenKind) -> Result<TokenRow, AccountError> {
        let hawk = self.hawk;
        let token = match kind {
            TokenKind::Session => q::session(tx, &hawk.header.id)?,
            TokenKind::KeyFetch => q::key_fetch_token(tx, &hawk.header.id)?,
            TokenKind::PasswordChange => weft_schema::queries::password_changes::token(tx, &hawk.header.id)?,
        }
        .ok_or(AccountError::InvalidToken("unknown token"))?;
        let key = unhex::<32>(&token.hmac_key).ok_or(AccountError::InvalidToken("stored key"))?;
        match &hawk.header.hash {
            Some(hash) if *hash != hawk.body_hash => {
                return Err(AccountError::InvalidSignature("payload hash"));
            }
            // A body the MAC does not cover could be anything: FxA's clients always hash it.
            None if hawk.has_body => return Err(AccountError::InvalidSignature("payload hash missing")),
            _ => {}
        }
        let normalized =
            normalized_string(&hawk.header, &hawk.method, &hawk.request_target, &hawk.host, hawk.port);
        use base64::Engine as _;
        let client_mac = base64::engine::general_purpose::STANDARD
            .decode(&hawk.header.mac)
            .map_err(|_| AccountError::InvalidSignature("mac encoding"))?;
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&key).map_err(|_| AccountError::InvalidToken("stored key"))?;
        mac.update(normalized.as_bytes());
        mac.verify_slice(&client_mac).map_err(|_| AccountError::InvalidSignature("mac"))?;
        Ok(token)
    }
}
