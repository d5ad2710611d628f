//! A write-through or cache-only collection as the cache holds it (`Items`: the collection's
//! timestamp and its items), how a read is answered from it exactly as the database would
//! answer, and how each write changes it by the database's own rules (`apply::merge`). The
//! cache's protocol (`storage/cache.rs`) and the cache-only writes (`storage/cache_only.rs`)
//! both work on this form.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use weft_schema::models::ExportedBso;
use weft_schema::queries::storage::Order;
use weft_schema::SyncTimestamp;

use crate::storage::apply::{merge, Stored, Touch};
use crate::storage::collection::Window;
use crate::storage::requests::*;
use crate::storage::rules::check_precondition;
use crate::storage::{Storage, StorageError};

/// A write-through or cache-only collection as cached (ops-model.md §5.2
/// `<uid>:c:<collection>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Items {
    /// The collection's last-modified (milliseconds); 0 when the user has none.
    modified: i64,
    /// id → item (expired ones are skipped by reads and dropped by writes); `None` when the
    /// collection had more than `MAX_CACHED_ITEMS`: its reads then go to the database.
    items: Option<BTreeMap<String, Item>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Item {
    pub(crate) modified: i64,
    payload: String,
    sortindex: Option<i32>,
    /// Absolute expiry (milliseconds): the item is live while `expiry > now`.
    expiry: i64,
}

impl Items {
    pub(crate) fn empty() -> Items {
        Items { modified: 0, items: Some(BTreeMap::new()) }
    }

    /// The collection's timestamp (milliseconds).
    pub(crate) fn modified(&self) -> i64 {
        self.modified
    }

    /// The item `id` if it is live at `now`.
    pub(crate) fn live_item(&self, id: &str, now: SyncTimestamp) -> Option<&Item> {
        self.items.as_ref()?.get(id).filter(|item| item.expiry > now.as_millis())
    }

    pub(crate) fn loaded((modified, rows): (SyncTimestamp, Option<Vec<ExportedBso>>)) -> Items {
        let items = rows.map(|rows| {
            rows.into_iter()
                .map(|r| {
                    let item = Item {
                        modified: r.modified,
                        payload: r.payload,
                        sortindex: r.sortindex,
                        expiry: r.ttl,
                    };
                    (r.id, item)
                })
                .collect()
        });
        Items { modified: modified.as_millis(), items }
    }

    /// The reply to a collection read, as the database would give it at this instant (the
    /// filters, order and paging of `storage::find_bsos`); `None` when the items are not kept.
    pub(crate) fn page(
        &self,
        ctx: &Storage,
        msg: &GetBsos,
    ) -> Option<Result<Timestamped<BsoPage>, StorageError>> {
        let items = self.items.as_ref()?;
        let last_modified = SyncTimestamp::from_millis(self.modified);
        if let Err(err) = check_precondition(msg.precondition, last_modified) {
            return Some(Err(err));
        }
        let query = &msg.query;
        let window = Window::of(ctx, query);
        if window.limit == 0 {
            return Some(Ok(Timestamped { last_modified, value: BsoPage::default() }));
        }
        let now = SyncTimestamp::now().as_millis();
        let newer = query.newer.map(SyncTimestamp::as_millis);
        let older = query.older.map(SyncTimestamp::as_millis);
        let mut matching: Vec<(&String, &Item)> = items
            .iter()
            .filter(|(id, item)| {
                item.expiry > now
                    && (query.ids.is_empty() || query.ids.contains(*id))
                    && newer.is_none_or(|n| item.modified > n)
                    && older.is_none_or(|o| item.modified < o)
                    && window.bound.is_none_or(|b| match window.order {
                        Order::Oldest => item.modified >= b,
                        Order::Newest | Order::Index => item.modified <= b,
                    })
            })
            .collect();
        matching.sort_by(|(a_id, a), (b_id, b)| match window.order {
            Order::Newest => b.modified.cmp(&a.modified).then_with(|| b_id.cmp(a_id)),
            Order::Oldest => a.modified.cmp(&b.modified).then_with(|| a_id.cmp(b_id)),
            // sortindex descending, NULL last, then id descending.
            Order::Index => match (a.sortindex, b.sortindex) {
                (Some(x), Some(y)) => y.cmp(&x),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            }
            .then_with(|| b_id.cmp(a_id)),
        });
        let bsos = matching
            .into_iter()
            .skip(usize::try_from(window.skip).unwrap_or(usize::MAX))
            .take(usize::try_from(window.limit).unwrap_or(usize::MAX).saturating_add(1))
            .map(|(id, item)| Bso {
                id: id.clone(),
                modified: SyncTimestamp::from_millis(item.modified),
                payload: if query.full { item.payload.clone() } else { String::new() },
                sortindex: item.sortindex,
            })
            .collect();
        Some(Ok(Timestamped { last_modified, value: window.page(bsos) }))
    }

    /// The reply to an item read; `None` when the items are not kept.
    pub(crate) fn item(&self, msg: &GetBso) -> Option<Result<Bso, StorageError>> {
        self.items.as_ref()?;
        let item = self.live_item(&msg.id, SyncTimestamp::now());
        let resource = SyncTimestamp::from_millis(item.map_or(0, |item| item.modified));
        Some(check_precondition(msg.precondition, resource).and_then(|()| {
            let item = item.ok_or(StorageError::NotFound)?;
            Ok(Bso {
                id: msg.id.clone(),
                modified: resource,
                payload: item.payload.clone(),
                sortindex: item.sortindex,
            })
        }))
    }

    /// After `bsos` were written at `t` (`apply::apply_bsos`, the same rule).
    pub(crate) fn applied(mut self, bsos: &[BsoInput], t: SyncTimestamp, touch: Touch) -> Items {
        self.modified = t.as_millis();
        if let Some(items) = &mut self.items {
            items.retain(|_, item| item.expiry > t.as_millis());
            for bso in bsos {
                let stored = items.get(&bso.id);
                let merged = merge(
                    bso,
                    stored.map(|s| Stored { modified: s.modified, sortindex: s.sortindex, ttl: s.expiry }),
                    t,
                    touch,
                );
                let payload = match (merged.payload, stored) {
                    (Some(payload), _) => payload.to_owned(),
                    // `merge` keeps the payload only of a live stored item.
                    (None, stored) => stored.map(|s| s.payload.clone()).unwrap_or_default(),
                };
                let item = Item {
                    modified: merged.modified,
                    payload,
                    sortindex: merged.sortindex,
                    expiry: merged.ttl,
                };
                items.insert(bso.id.clone(), item);
            }
        }
        self
    }

    /// After the items `ids` were deleted at `t`.
    pub(crate) fn removed(mut self, ids: &[String], t: SyncTimestamp) -> Items {
        self.modified = t.as_millis();
        if let Some(items) = &mut self.items {
            for id in ids {
                items.remove(id);
            }
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_follow_put_semantics() {
        let t1 = SyncTimestamp::now();
        let t2 = SyncTimestamp::from_millis(t1.as_millis() + 10);
        let put = |id: &str, payload: Option<&str>, sortindex: Option<i32>, ttl: Option<u32>| BsoInput {
            id: id.into(),
            payload: payload.map(str::to_owned),
            sortindex,
            ttl,
        };
        let items = Items::empty().applied(
            &[put("a", Some("one"), Some(5), None), put("b", Some("two"), None, Some(0))],
            t1,
            Touch::Changed,
        );
        // A ttl-only update keeps payload, sortindex and modified; "b" expired at once.
        let items = items.applied(&[put("a", None, None, Some(60))], t2, Touch::Changed);
        assert_eq!(items.modified, t2.as_millis());
        let kept = items.items.as_ref().unwrap();
        let a = &kept["a"];
        assert_eq!((a.payload.as_str(), a.sortindex, a.modified), ("one", Some(5), t1.as_millis()));
        assert_eq!(a.expiry, t2.as_millis() + 60_000);
        assert!(!kept.contains_key("b"), "expired items are dropped by writes");
        let items = items.removed(&["a".to_string()], t2);
        assert!(items.items.unwrap().is_empty());
    }
}
