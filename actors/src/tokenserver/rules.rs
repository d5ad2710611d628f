//! The consistency rules of tokenserver-api.md §6.3 and the updated values of §6.4, as pure
//! functions of the request's and the current record's values, in REF's order.

use super::TokenserverError;

/// What a request reports: `None` for a value that is missing or 0 ("not reported", §3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reported<'a> {
    pub generation: Option<i64>,
    pub keys_changed_at: Option<i64>,
    pub client_state: &'a str,
}

/// The current record's values. `generation` is always present (0 included); a NULL
/// `keys_changed_at` is absent while a stored 0 is present (§6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored<'a> {
    pub generation: i64,
    pub keys_changed_at: Option<i64>,
    pub client_state: &'a str,
}

/// `x > y`, false unless both are present.
fn gt(x: Option<i64>, y: Option<i64>) -> bool {
    matches!((x, y), (Some(x), Some(y)) if x > y)
}

/// `x <= y`, false unless both are present.
fn le(x: Option<i64>, y: Option<i64>) -> bool {
    matches!((x, y), (Some(x), Some(y)) if x <= y)
}

/// Rules 1–8 of §6.3; the first that applies decides.
pub fn check(
    req: &Reported<'_>,
    cur: &Stored<'_>,
    old_client_states: &[String],
) -> Result<(), TokenserverError> {
    let (ag, ak, ac) = (req.generation, req.keys_changed_at, req.client_state);
    let (ug, uk, uc) = (Some(cur.generation), cur.keys_changed_at, cur.client_state);
    if gt(ak, uk) && gt(ak, ag) {
        return Err(TokenserverError::InvalidKeysChangedAt);
    }
    if !uc.is_empty() && ac.is_empty() {
        return Err(TokenserverError::InvalidClientState("empty string"));
    }
    if old_client_states.iter().any(|s| s == ac) {
        return Err(TokenserverError::InvalidClientState("stale value"));
    }
    if ac != uc && le(ag, ug) {
        return Err(TokenserverError::InvalidClientState("new value with no generation change"));
    }
    if ac != uc && le(ak, uk) {
        return Err(TokenserverError::InvalidClientState("new value with no keys_changed_at change"));
    }
    if gt(ug, ag) {
        return Err(TokenserverError::InvalidGeneration);
    }
    if gt(uk, ak) {
        return Err(TokenserverError::InvalidKeysChangedAt);
    }
    if ak.is_none() && matches!(uk, Some(k) if k != 0) {
        return Err(TokenserverError::InvalidKeysChangedAt);
    }
    Ok(())
}

/// The record's values after a validated request (§6.4): (generation, keys_changed_at).
pub fn updated_values(req: &Reported<'_>, cur: &Stored<'_>) -> (i64, Option<i64>) {
    let keys_changed_at = req.keys_changed_at.or(cur.keys_changed_at);
    let generation = match (req.generation, req.keys_changed_at) {
        (Some(g), _) => g,
        // A key change implies a credential change.
        (None, Some(k)) if !matches!(cur.keys_changed_at, Some(uk) if k <= uk) && k > cur.generation => k,
        _ => cur.generation,
    };
    (generation, keys_changed_at)
}

/// The largest uid a storage URL can carry: the storage routes take 1–10 digits, as REF's.
pub const MAX_TOKEN_UID: i64 = 9_999_999_999;

/// The uid a token may carry for a `users` row. A row whose uid is 0, negative or too long for
/// a storage URL comes from a damaged or hand-edited table; signing it (a negative uid used to
/// become uid 0) would hand the client another user's storage or a URL that cannot work, so
/// the request fails instead and the operator is told which uid.
pub fn token_uid(uid: i64) -> Result<u64, TokenserverError> {
    if (1..=MAX_TOKEN_UID).contains(&uid) {
        Ok(uid as u64)
    } else {
        Err(TokenserverError::InvalidStoredUid(uid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(g: i64, k: i64, c: &str) -> Reported<'_> {
        let reported = |v: i64| (v != 0).then_some(v);
        Reported { generation: reported(g), keys_changed_at: reported(k), client_state: c }
    }

    fn cur(g: i64, k: Option<i64>, c: &str) -> Stored<'_> {
        Stored { generation: g, keys_changed_at: k, client_state: c }
    }

    fn reason(r: Result<(), TokenserverError>) -> String {
        r.map_or_else(|e| e.to_string(), |()| "ok".into())
    }

    #[test]
    fn keys_changed_at_before_generation() {
        let stored = cur(1232, Some(1234), "");
        assert_eq!(reason(check(&req(1235, 1236, ""), &stored, &[])), "keys_changed_at rules violated");
        assert_eq!(reason(check(&req(1233, 1234, ""), &stored, &[])), "ok");
        assert_eq!(reason(check(&req(0, 1235, ""), &stored, &[])), "ok");
        assert_eq!(reason(check(&req(1236, 1235, ""), &stored, &[])), "ok");
    }

    #[test]
    fn client_state_changes() {
        let stored = cur(1234, None, "aaaa");
        assert_eq!(
            reason(check(&req(1234, 1234, "bbbb"), &stored, &[])),
            "unacceptable client-state value new value with no generation change"
        );
        assert_eq!(reason(check(&req(0, 1235, "bbbb"), &stored, &[])), "ok");
        assert_eq!(updated_values(&req(0, 1235, "bbbb"), &stored), (1235, Some(1235)));
        assert_eq!(
            reason(check(&req(5000, 1234, "aaaa"), &cur(1234, Some(1234), "bbbb"), &["aaaa".into()])),
            "unacceptable client-state value stale value"
        );
        assert_eq!(
            reason(check(&req(5000, 5000, ""), &cur(1234, Some(1234), "bbbb"), &[])),
            "unacceptable client-state value empty string"
        );
        assert_eq!(
            reason(check(&req(0, 1234, "cccc"), &cur(1234, Some(1234), "bbbb"), &[])),
            "unacceptable client-state value new value with no keys_changed_at change"
        );
    }

    #[test]
    fn generation_stays_without_report() {
        let stored = cur(0, Some(1234), "");
        assert_eq!(updated_values(&req(0, 1234, ""), &stored), (0, Some(1234)));
        assert_eq!(updated_values(&req(0, 1235, ""), &stored), (1235, Some(1235)));
        assert_eq!(
            reason(check(&req(0, 0, ""), &cur(0, Some(1234), ""), &[])),
            "keys_changed_at rules violated"
        );
        assert_eq!(reason(check(&req(0, 0, ""), &cur(7, Some(0), ""), &[])), "ok");
    }

    #[test]
    fn retired_user() {
        let stored = cur(i64::MAX, None, "");
        assert_eq!(reason(check(&req(1234, 0, ""), &stored, &[])), "generation went backwards");
        assert_eq!(reason(check(&req(i64::MAX, 0, ""), &stored, &[])), "ok");
    }

    #[test]
    fn token_uids_fit_a_storage_url() {
        assert_eq!(token_uid(1).unwrap(), 1);
        assert_eq!(token_uid(MAX_TOKEN_UID).unwrap(), 9_999_999_999);
        for bad in [0, -1, i64::MIN, MAX_TOKEN_UID + 1, i64::MAX] {
            assert!(
                matches!(token_uid(bad), Err(TokenserverError::InvalidStoredUid(u)) if u == bad),
                "{bad}"
            );
        }
    }
}
