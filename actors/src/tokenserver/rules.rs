//! The tokenserver's rules as pure functions: the consistency rules of tokenserver-api.md §6.3
//! and the updated values of §6.4 (of the request's and the current record's values, in REF's
//! order), node assignment (§7.1): which nodes may take a new user, which of them is best,
//! and how many slots a node releases at a time, and what the purge of replaced users does
//! with each row (§10.6).

use weft_schema::models::tokenserver::{NodeRow, ReplacedUser};

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

/// Whether a node may take a new user now: it has a released slot and room, and is neither
/// downed nor backing off (§7.1).
pub fn is_assignable(node: &NodeRow) -> bool {
    node.available > 0 && node.capacity > node.current_load && node.downed == 0 && node.backoff == 0
}

/// The best node for a new user among `nodes` (§7.1), or `None` when none is assignable: by
/// `ln(current_load) / ln(capacity)` with empty nodes first (MySQL's NULL from `LOG(0)`), then
/// larger `available`, then lower id. Written here rather than in SQL so that both backends
/// choose identically: SQLite has no `LOG` in every build.
pub fn best_node(nodes: Vec<NodeRow>) -> Option<NodeRow> {
    nodes.into_iter().filter(is_assignable).min_by(|a, b| {
        load_ratio(a)
            .partial_cmp(&load_ratio(b))
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(b.available.cmp(&a.available))
            .then(a.id.cmp(&b.id))
    })
}

/// MySQL's `LOG(current_load) / LOG(capacity)`; `None` (sorting first, like NULL in MySQL) where
/// MySQL yields NULL: a load of 0 and a capacity whose log is 0 (division by zero).
fn load_ratio(node: &NodeRow) -> Option<f64> {
    if node.current_load <= 0 || node.capacity <= 1 {
        return None;
    }
    Some(f64::from(node.current_load).ln() / f64::from(node.capacity).ln())
}

/// The slots a node of `capacity` releases at a time: `ceil(capacity × rate)` (`rate` is a
/// validated setting in (0, 1]). The same number opens a new node (`node add`, §10.1) and
/// refills one that ran out (§7.1). REF's refill rounds instead (an integer column stores
/// `capacity × rate`), so a node whose share rounds to 0 — capacity below 5 at the default 10 % —
/// could never release a slot; with `ceil` every node releases at least one, and the two agree
/// whenever `capacity × rate` is whole. A product within 1e-9 of a whole number counts as whole,
/// so that binary floating point (30 × 0.1 = 3.0000000000000004) does not add a slot.
pub fn released_slots(capacity: i32, rate: f64) -> i32 {
    let share = f64::from(capacity) * rate;
    let whole = share.round();
    let slots = if (share - whole).abs() < 1e-9 { whole } else { share.ceil() };
    slots as i32
}

/// The slots to release on `node` when no node can take a new user (§7.1): none when it still
/// has some, has no room left or is downed (a node backing off gets them, but is not chosen);
/// otherwise `released_slots`, at most its room.
pub fn slots_to_release(node: &NodeRow, rate: f64) -> Option<i32> {
    let room = node.capacity - node.current_load;
    (node.available <= 0 && room > 0 && node.downed == 0)
        .then(|| released_slots(node.capacity, rate).min(room))
}

/// What the purge of replaced users does with one row (§10.6 step 3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PurgeStep<'a> {
    /// The node row is gone: the data went with it; only the user row is deleted.
    ForgetOnly,
    /// The node is `downed`: the row waits until it is back in service.
    Wait,
    /// Delete the uid's data on this node, then the user row.
    DeleteData { node: &'a str },
}

pub fn purge_step(row: &ReplacedUser) -> PurgeStep<'_> {
    match (&row.node, row.downed) {
        (None, _) => PurgeStep::ForgetOnly,
        (Some(_), Some(downed)) if downed != 0 => PurgeStep::Wait,
        (Some(node), _) => PurgeStep::DeleteData { node },
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

    fn node(id: i64, available: i32, load: i32, capacity: i32) -> NodeRow {
        NodeRow { id, node: format!("n{id}"), available, current_load: load, capacity, downed: 0, backoff: 0 }
    }

    #[test]
    fn the_emptiest_assignable_node_is_best() {
        // §7.1's example: empty nodes first (larger available wins), then by load ratio.
        let nodes = vec![node(1, 100, 0, 100), node(2, 1, 0, 100), node(3, 5, 0, 100)];
        assert_eq!(best_node(nodes).map(|n| n.id), Some(1));
        let nodes = vec![node(1, 9, 91, 100), node(2, 1, 10, 100), node(3, 0, 0, 100)];
        assert_eq!(best_node(nodes).map(|n| n.id), Some(2));
        let downed = NodeRow { downed: 1, ..node(1, 5, 0, 10) };
        let backoff = NodeRow { backoff: 1, ..node(2, 5, 0, 10) };
        assert_eq!(best_node(vec![downed, backoff, node(3, 5, 10, 10)]), None);
    }

    #[test]
    fn released_slots_are_the_ceiling_of_the_share() {
        assert_eq!(released_slots(1000, 0.1), 100);
        assert_eq!(released_slots(30, 0.1), 3);
        assert_eq!(released_slots(81, 0.1), 9);
        assert_eq!(released_slots(3, 0.1), 1);
        assert_eq!(released_slots(7, 1.0), 7);
        // §7.1's example: (0, 99/100), (0, 90/100), (0, 80/81), (0, 70/71, backoff),
        // (0, 60/61, downed) → 1, 10, 1, 1, none.
        let nodes = [
            node(1, 0, 99, 100),
            node(2, 0, 90, 100),
            node(3, 0, 80, 81),
            NodeRow { backoff: 1, ..node(4, 0, 70, 71) },
            NodeRow { downed: 1, ..node(5, 0, 60, 61) },
        ];
        let released: Vec<Option<i32>> = nodes.iter().map(|n| slots_to_release(n, 0.1)).collect();
        assert_eq!(released, [Some(1), Some(10), Some(1), Some(1), None]);
        assert_eq!(slots_to_release(&node(6, 2, 0, 10), 0.1), None);
    }

    #[test]
    fn purge_steps() {
        let row = |node: Option<&str>, downed: Option<i32>| ReplacedUser {
            uid: 7,
            nodeid: 1,
            email: "a@b".into(),
            generation: 1,
            keys_changed_at: None,
            client_state: String::new(),
            replaced_at: 1,
            node: node.map(str::to_string),
            downed,
        };
        assert_eq!(purge_step(&row(None, None)), PurgeStep::ForgetOnly);
        assert_eq!(purge_step(&row(Some("https://n"), Some(1))), PurgeStep::Wait);
        assert_eq!(purge_step(&row(Some("https://n"), Some(0))), PurgeStep::DeleteData { node: "https://n" });
    }
}
