//! FxA's account events (tokenserver-api.md §10.8): the claims of the Security Event Token FxA
//! posts to a relying party's webhook, and which change each event makes to the account's
//! tokenserver rows. Verification of the token itself is the OAuth verifier's (same keys as
//! access tokens); the changes are `TokenserverDb` messages.

use serde::Deserialize;

/// The account was deleted: retire it (§8.2), so its data is purged after the grace period.
pub const DELETE_USER: &str = "https://schemas.accounts.firefox.com/event/delete-user";
/// The password changed (or was reset): devices holding older credentials are locked out.
pub const PASSWORD_CHANGE: &str = "https://schemas.accounts.firefox.com/event/password-change";

/// Where events must come from and whom they must be for; the webhook is off without it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountEventsConfig {
    /// The `aud` FxA puts in the token: this relying party's OAuth client id.
    pub audience: String,
    /// The `iss` of the token: FxA's issuer.
    pub issuer: String,
}

/// The claims a Security Event Token must carry; others (`iat`, `jti`, …) are ignored.
#[derive(Debug, Clone, Deserialize)]
pub struct EventClaims {
    /// The FxA uid of the account.
    pub sub: String,
    /// Event URI → the event's own object.
    pub events: serde_json::Map<String, serde_json::Value>,
}

/// What one event does to the account's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountEvent {
    Deleted,
    /// The live rows' generation becomes at least this (`changeTime − 1`, §10.8).
    PasswordChanged {
        generation: i64,
    },
    /// Another event type, or a password change without a usable `changeTime`: nothing to do.
    Ignored,
}

impl AccountEvent {
    /// Every label, for the series exported at 0 from the start.
    pub const LABELS: [&'static str; 3] = ["delete_user", "password_change", "ignored"];

    /// The metrics label of the event (bounded: three values).
    pub fn label(self) -> &'static str {
        match self {
            AccountEvent::Deleted => "delete_user",
            AccountEvent::PasswordChanged { .. } => "password_change",
            AccountEvent::Ignored => "ignored",
        }
    }
}

/// The events of a verified token, in the token's order.
pub fn account_events(claims: &EventClaims) -> Vec<AccountEvent> {
    claims
        .events
        .iter()
        .map(|(kind, body)| match kind.as_str() {
            DELETE_USER => AccountEvent::Deleted,
            // One millisecond before the change, so that devices with older credentials are
            // refused while the next request with the new generation still passes (§10.8).
            PASSWORD_CHANGE => match body.get("changeTime").and_then(serde_json::Value::as_i64) {
                Some(change_time) if change_time > 0 => {
                    AccountEvent::PasswordChanged { generation: change_time - 1 }
                }
                _ => AccountEvent::Ignored,
            },
            // `profile-change` (a primary email change among others) changes nothing, as in REF
            // (§10.8): `users.email` is built from the FxA uid, not the address, and FxA bumps no
            // credential generation for it.
            _ => AccountEvent::Ignored,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(events: serde_json::Value) -> EventClaims {
        serde_json::from_value(serde_json::json!({"sub": "u", "events": events})).unwrap()
    }

    #[test]
    fn events_and_their_changes() {
        let c = claims(serde_json::json!({
            DELETE_USER: {},
            PASSWORD_CHANGE: {"changeTime": 1_700_000_000_123_i64},
            "https://schemas.accounts.firefox.com/event/profile-change": {"email": "x@y"},
        }));
        let mut events = account_events(&c);
        events.sort_by_key(|e| e.label());
        assert_eq!(
            events,
            [
                AccountEvent::Deleted,
                AccountEvent::Ignored,
                AccountEvent::PasswordChanged { generation: 1_700_000_000_122 }
            ]
        );
        let c = claims(serde_json::json!({PASSWORD_CHANGE: {"changeTime": "soon"}}));
        assert_eq!(account_events(&c), [AccountEvent::Ignored]);
    }
}
