//! Batch uploads (storage-api.md §6.9): the create/append/commit lifecycle, invisibility of
//! staged items, `batch=true&commit=true` as a plain POST, per-id merging and PUT semantics on
//! commit, invalid items never staged, rejection (400 `0`) of foreign, unknown, committed,
//! malformed and expired batch ids and of bad `commit` values, X-Weave-Total-* headers over the
//! limits (400 `17`), actual staged totals over `max_total_records`/`max_total_bytes` refused at
//! append and at commit, and preconditions across a batch. Batch behaviours numbered in §13
//! (4, 14–17, 37, 41, 42) are in storage_edge_cases.rs.

#[macro_use]
mod common;

use common::*;
use serde_json::{json, Value};

fn sorted_ids(u: &User, coll: &str) -> Vec<String> {
    let mut ids = ids_of(&u.get_json(&format!("/storage/{coll}")));
    ids.sort();
    ids
}

backend_tests! {
    fn lifecycle_create_append_commit(b: Backend) {
        let u = User::new(shared(b));
        let r = u.post("/storage/bookmarks?batch=true", &json!([{"id": "a", "payload": "1"}, {"id": "b", "payload": "2"}])).expect(202);
        let v = r.json();
        let id = v["batch"].as_str().expect("batch id").to_string();
        assert_eq!(v["success"], json!(["a", "b"]));
        assert_eq!(v["failed"], json!({}));
        let v = append_batch(&u, "bookmarks", &id, &json!([{"id": "c", "payload": "3"}]));
        assert_eq!(v["success"], json!(["c"]));
        let r = commit_batch(&u, "bookmarks", &id, &json!([{"id": "d", "payload": "4"}]));
        let t = r.ts_header("X-Last-Modified");
        assert_eq!(r.ts_header("X-Weave-Timestamp"), t);
        let v = r.json();
        assert_eq!(json_ts(&v["modified"]), t);
        // The commit response describes only the commit request's body.
        assert_eq!(v["success"], json!(["d"]));
        let full = u.get_json("/storage/bookmarks?full=1");
        assert_eq!(full.as_array().unwrap().len(), 4);
        assert!(full.as_array().unwrap().iter().all(|i| json_ts(&i["modified"]) == t), "{full}");
        assert_eq!(json_ts(&u.get_json("/info/collections")["bookmarks"]), t);
    }

    fn staged_items_are_invisible_until_commit(b: Backend) {
        let u = seeded_user(shared(b), "history");
        let before = snapshot(&u, "history");
        let id = create_batch(&u, "history", &json!([{"id": "s1", "payload": "x".repeat(2048)}]));
        append_batch(&u, "history", &id, &json!([{"id": "known-a", "payload": "changed"}]));
        // Nothing a client can observe moved: items, counts, timestamps, usage.
        assert_eq!(snapshot(&u, "history"), before);
        u.get("/storage/history/s1").expect(404);
        assert_eq!(u.get_json("/storage/history/known-a")["payload"], "alpha");
        assert_eq!(u.get_json("/info/collection_usage")["history"].as_f64().map(|k| k < 1.0), Some(true));
        // A batch in a new collection does not create the collection.
        let other = create_batch(&u, "forms", &json!([{"id": "f", "payload": "x"}]));
        assert!(u.get_json("/info/collections").get("forms").is_none());
        commit_batch(&u, "history", &id, &json!([]));
        assert_eq!(u.get_json("/storage/history/known-a")["payload"], "changed");
        assert_eq!(u.get_json("/info/collection_counts")["history"], 4);
        commit_batch(&u, "forms", &other, &json!([]));
        assert_eq!(u.get_json("/info/collection_counts")["forms"], 1);
    }

    fn batch_true_with_commit_is_a_plain_post(b: Backend) {
        let u = User::new(shared(b));
        let r = u.post("/storage/tabs?batch=true&commit=true", &json!([{"id": "t", "payload": "p"}])).expect(200);
        let v = r.json();
        assert!(v.get("batch").is_none(), "{v}");
        assert_eq!(v["success"], json!(["t"]));
        assert_eq!(json_ts(&v["modified"]), r.ts_header("X-Last-Modified"));
        assert_eq!(u.get_json("/storage/tabs/t")["payload"], "p");
        // `batch=TRUE`, `?batch` and `?batch=` also start batches.
        for q in ["batch=TRUE", "batch", "batch="] {
            let v = u.post(&format!("/storage/tabs?{q}"), &json!([])).expect(202).json();
            assert!(v["batch"].is_string(), "{q}: {v}");
        }
    }

    fn staging_merges_fields_per_id_and_commit_applies_put_semantics(b: Backend) {
        let u = User::new(shared(b));
        u.put("/storage/prefs/stored", &json!({"payload": "stored-payload", "sortindex": 1})).expect(200);
        let id = create_batch(&u, "prefs", &json!([
            {"id": "m", "payload": "first", "sortindex": 1},
            {"id": "stored", "sortindex": 5},
        ]));
        append_batch(&u, "prefs", &id, &json!([{"id": "m", "sortindex": 2}]));
        let t = commit_batch(&u, "prefs", &id, &json!([])).ts_header("X-Last-Modified");
        let m = u.get_json("/storage/prefs/m");
        assert_eq!((m["payload"].as_str(), m["sortindex"].as_i64()), (Some("first"), Some(2)));
        let stored = u.get_json("/storage/prefs/stored");
        assert_eq!((stored["payload"].as_str(), stored["sortindex"].as_i64()), (Some("stored-payload"), Some(5)));
        assert_eq!(json_ts(&stored["modified"]), t);
    }

    fn invalid_items_are_never_staged(b: Backend) {
        let u = User::new(shared(b));
        let r = u.post("/storage/forms?batch=true", &json!([{"id": "ok", "payload": "x"}, {"id": "bad", "payload": 42}])).expect(202);
        let v = r.json();
        assert_eq!(v["success"], json!(["ok"]));
        assert!(v["failed"]["bad"].is_string(), "{v}");
        let id = v["batch"].as_str().unwrap().to_string();
        commit_batch(&u, "forms", &id, &json!([]));
        assert_eq!(sorted_ids(&u, "forms"), vec!["ok".to_string()]);
    }

    fn foreign_unknown_and_malformed_batch_ids_are_400(b: Backend) {
        let server = shared(b);
        let u = seeded_user(server, "bookmarks");
        let other = User::new(server);
        let mine = create_batch(&u, "bookmarks", &json!([{"id": "staged", "payload": "mine"}]));
        // Batch ids are scoped per user (creation ms + uid % 10), so another user's id can equal
        // one of `u`'s own by coincidence — then it is `u`'s batch, not a foreign one (§13.15).
        // Keep asking until the other user's id is one `u` does not have.
        let theirs = (0..20)
            .map(|_| create_batch(&other, "bookmarks", &json!([{"id": "theirs", "payload": "x"}])))
            .find(|id| *id != mine)
            .expect("another user's batch id distinct from u's");
        let in_other_collection = create_batch(&u, "history", &json!([{"id": "h", "payload": "x"}]));
        let never_issued = "MTIzNDU2Nzg5MDEyMw==".to_string(); // base64 of "1234567890123"
        for bad in [theirs.clone(), in_other_collection.clone(), never_issued, "notanumber".into(), "%21%21%21".into(), "-5".into()] {
            for commit in ["", "&commit=true"] {
                rejects_unchanged(&u, "bookmarks", 400, Some("0"), || {
                    u.post(&format!("/storage/bookmarks?batch={bad}{commit}"), &json!([{"id": "intruder", "payload": "x"}]))
                });
            }
        }
        // The rejected requests did not disturb the real batches.
        commit_batch(&u, "bookmarks", &mine, &json!([]));
        assert!(sorted_ids(&u, "bookmarks").contains(&"staged".to_string()));
        assert!(!sorted_ids(&u, "bookmarks").contains(&"intruder".to_string()));
        commit_batch(&other, "bookmarks", &theirs, &json!([]));
        assert_eq!(sorted_ids(&other, "bookmarks"), vec!["theirs".to_string()]);
        // A committed id is gone.
        rejects_unchanged(&u, "bookmarks", 400, Some("0"), || {
            u.post(&format!("/storage/bookmarks?batch={mine}&commit=true"), &json!([]))
        });
        rejects_unchanged(&u, "bookmarks", 400, Some("0"), || {
            u.post(&format!("/storage/bookmarks?batch={mine}"), &json!([{"id": "again", "payload": "x"}]))
        });
    }

    fn bad_commit_parameters_are_400(b: Backend) {
        let u = seeded_user(shared(b), "bookmarks");
        let id = create_batch(&u, "bookmarks", &json!([{"id": "s", "payload": "x"}]));
        for q in ["commit=true".to_string(), format!("batch={id}&commit=false"), format!("batch={id}&commit=yes"), format!("batch={id}&commit=")] {
            rejects_unchanged(&u, "bookmarks", 400, Some("0"), || {
                u.post(&format!("/storage/bookmarks?{q}"), &json!([{"id": "n", "payload": "x"}]))
            });
        }
        // `true` is case-insensitive.
        u.post(&format!("/storage/bookmarks?batch={id}&commit=TRUE"), &json!([])).expect(200);
        u.get("/storage/bookmarks/s").expect(200);
    }

    fn expired_batches_are_refused(b: Backend) {
        let server = TestServer::start(b, &[("WEFT_BATCH_TTL_SECONDS", "1")]);
        let u = seeded_user(&server, "bookmarks");
        let id = create_batch(&u, "bookmarks", &json!([{"id": "late", "payload": "x"}]));
        // A batch used within its lifetime works, so the refusals below are about expiry.
        let fresh = create_batch(&u, "bookmarks", &json!([]));
        commit_batch(&u, "bookmarks", &fresh, &json!([]));
        let id2 = create_batch(&u, "bookmarks", &json!([{"id": "late2", "payload": "x"}]));
        // The protocol is about time: wait past the one-second batch lifetime.
        std::thread::sleep(std::time::Duration::from_millis(1200));
        rejects_unchanged(&u, "bookmarks", 400, Some("0"), || {
            u.post(&format!("/storage/bookmarks?batch={id}"), &json!([{"id": "more", "payload": "x"}]))
        });
        rejects_unchanged(&u, "bookmarks", 400, Some("0"), || {
            u.post(&format!("/storage/bookmarks?batch={id2}&commit=true"), &json!([]))
        });
        u.get("/storage/bookmarks/late").expect(404);
    }

    fn total_headers_over_the_limits_are_400_17(b: Backend) {
        let server = shared(b);
        let u = seeded_user(server, "bookmarks");
        let id = create_batch(&u, "bookmarks", &json!([{"id": "s", "payload": "x"}]));
        let cases = [("X-Weave-Total-Records", "10001"), ("X-Weave-Total-Bytes", "262144001")];
        for (header, value) in cases {
            for q in ["batch=true".to_string(), format!("batch={id}"), format!("batch={id}&commit=true")] {
                rejects_unchanged(&u, "bookmarks", 400, Some("17"), || {
                    u.req("POST", &format!("/storage/bookmarks?{q}")).json(&json!([{"id": "n", "payload": "x"}]))
                        .header(header, value).send()
                });
            }
        }
        // Exactly at the limits is fine (limits are inclusive).
        u.req("POST", &format!("/storage/bookmarks?batch={id}")).json(&json!([]))
            .header("X-Weave-Total-Records", "10000").header("X-Weave-Total-Bytes", "262144000").send().expect(202);
        commit_batch(&u, "bookmarks", &id, &json!([]));
        u.get("/storage/bookmarks/s").expect(200);
    }

    fn staged_record_total_over_limit_is_refused_at_append(b: Backend) {
        // SMALL_LIMITS: 5 records per POST, 12 per batch.
        let u = seeded_user(shared_small(b), "bookmarks");
        let id = create_batch(&u, "bookmarks", &records("a", 5));
        append_batch(&u, "bookmarks", &id, &records("b", 5));
        rejects_unchanged(&u, "bookmarks", 400, Some("17"), || {
            u.post(&format!("/storage/bookmarks?batch={id}"), &records("c", 5))
        });
        // The batch kept exactly what it had: committing applies the 10 staged items.
        commit_batch(&u, "bookmarks", &id, &json!([]));
        assert_eq!(u.get_json("/info/collection_counts")["bookmarks"], 13);
        u.get("/storage/bookmarks/c000").expect(404);
    }

    fn staged_record_total_over_limit_is_refused_at_commit(b: Backend) {
        let u = seeded_user(shared_small(b), "bookmarks");
        let id = create_batch(&u, "bookmarks", &records("a", 5));
        append_batch(&u, "bookmarks", &id, &records("b", 5));
        rejects_unchanged(&u, "bookmarks", 400, Some("17"), || {
            u.post(&format!("/storage/bookmarks?batch={id}&commit=true"), &records("c", 3))
        });
        commit_batch(&u, "bookmarks", &id, &records("d", 2));
        assert_eq!(u.get_json("/info/collection_counts")["bookmarks"], 15);
    }

    fn staged_byte_total_over_limit_is_refused(b: Backend) {
        // SMALL_LIMITS: 1000 payload bytes per POST, 2500 per batch.
        let u = seeded_user(shared_small(b), "bookmarks");
        let two = |p: &str| json!([{"id": format!("{p}1"), "payload": "x".repeat(500)}, {"id": format!("{p}2"), "payload": "y".repeat(500)}]);
        let id = create_batch(&u, "bookmarks", &two("a"));
        append_batch(&u, "bookmarks", &id, &two("b"));
        rejects_unchanged(&u, "bookmarks", 400, Some("17"), || {
            u.post(&format!("/storage/bookmarks?batch={id}"), &two("c"))
        });
        rejects_unchanged(&u, "bookmarks", 400, Some("17"), || {
            u.post(&format!("/storage/bookmarks?batch={id}&commit=true"), &two("d"))
        });
        commit_batch(&u, "bookmarks", &id, &json!([]));
        assert_eq!(u.get_json("/info/collection_counts")["bookmarks"], 7);
    }

    fn precondition_spans_the_whole_batch(b: Backend) {
        let u = seeded_user(shared(b), "bookmarks");
        let lm = u.get("/storage/bookmarks").must_header("X-Last-Modified");
        let r = u.req("POST", "/storage/bookmarks?batch=true").json(&json!([{"id": "s", "payload": "x"}]))
            .header("X-If-Unmodified-Since", &lm).send().expect(202);
        let id = r.json()["batch"].as_str().unwrap().to_string();
        // Staging does not move the collection, so the same value keeps working.
        u.req("POST", &format!("/storage/bookmarks?batch={id}")).json(&json!([{"id": "s2", "payload": "x"}]))
            .header("X-If-Unmodified-Since", &lm).send().expect(202);
        // Another client writes in the meantime.
        u.put("/storage/bookmarks/other", &json!({"payload": "concurrent"})).expect(200);
        rejects_unchanged(&u, "bookmarks", 412, Some(""), || {
            u.req("POST", &format!("/storage/bookmarks?batch={id}&commit=true")).json(&json!([]))
                .header("X-If-Unmodified-Since", &lm).send()
        });
        u.get("/storage/bookmarks/s").expect(404);
    }

    fn per_request_limits_apply_to_batch_posts(b: Backend) {
        let u = User::new(shared_small(b));
        let v = u.post("/storage/history?batch=true", &records("r", 7)).expect(202).json();
        let failed = v["failed"].as_object().unwrap();
        assert_eq!(v["success"].as_array().unwrap().len(), 5, "{v}");
        assert_eq!(failed.get("r005").and_then(Value::as_str), Some("retry bso"));
        assert_eq!(failed.get("r006").and_then(Value::as_str), Some("retry bso"));
        let id = v["batch"].as_str().unwrap().to_string();
        commit_batch(&u, "history", &id, &json!([]));
        assert_eq!(u.get_json("/info/collection_counts")["history"], 5);
    }

    fn open_batches_created_back_to_back_all_succeed(b: Backend) {
        // A client uploading several collections at once keeps several batches open; ids are
        // derived from the clock, and collisions must be resolved, not answered with 503.
        let u = User::new(shared(b));
        let colls = [
            "bookmarks", "history", "forms", "prefs", "tabs", "passwords", "addons", "clients", "addresses",
            "creditcards", "meta", "extension-storage",
        ];
        let ids: Vec<(String, &str)> = colls
            .iter()
            .map(|c| (create_batch(&u, c, &json!([{"id": "x", "payload": *c}])), *c))
            .collect();
        for (id, c) in &ids {
            commit_batch(&u, c, id, &json!([]));
            assert_eq!(u.get_json(&format!("/storage/{c}/x"))["payload"], *c);
        }
    }
}
