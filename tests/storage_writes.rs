//! Writes without batching (storage-api.md §4.2, §5.1, §5.4, §6.8, §6.10, §6.12, §6.13, §11):
//! PUT create/update semantics and response form, POST success/failed reporting and per-item
//! validation, null fields, newline-delimited bodies, DELETE of items, ids and collections,
//! preconditions on writes, ttl expiry over time, ids containing `/`, and quota. Behaviours
//! named in §13 live in storage_edge_cases.rs; error responses in storage_errors.rs.

#[macro_use]
mod common;

use common::*;
use serde_json::{json, Value};

backend_tests! {
    fn put_creates_item_and_answers_its_timestamp(b: Backend) {
        let u = User::new(shared(b));
        let r = u.put("/storage/bookmarks/abc", &json!({"payload": "hello", "sortindex": 3})).expect(200);
        let t = r.ts_header("X-Last-Modified");
        assert_eq!(r.body.trim(), fmt_ts(t), "PUT body is the bare timestamp");
        assert_eq!(r.ts_header("X-Weave-Timestamp"), t);
        let item = u.get_json("/storage/bookmarks/abc");
        assert_eq!(item["payload"], "hello");
        assert_eq!(item["sortindex"], 3);
        assert_eq!(json_ts(&item["modified"]), t);
        assert_eq!(json_ts(&u.get_json("/info/collections")["bookmarks"]), t);
        // A PUT without payload creates an item with the empty payload.
        u.put("/storage/bookmarks/empty", &json!({"sortindex": 1})).expect(200);
        assert_eq!(u.get_json("/storage/bookmarks/empty")["payload"], "");
    }

    fn put_updates_only_the_fields_it_carries(b: Backend) {
        let u = User::new(shared(b));
        let t1 = u.put("/storage/bookmarks/x", &json!({"payload": "one", "sortindex": 7})).expect(200).ts_header("X-Last-Modified");
        let t2 = u.put("/storage/bookmarks/x", &json!({"sortindex": 8})).expect(200).ts_header("X-Last-Modified");
        let item = u.get_json("/storage/bookmarks/x");
        assert_eq!(item["payload"], "one");
        assert_eq!(item["sortindex"], 8);
        assert_eq!(json_ts(&item["modified"]), t2);
        assert!(t2 > t1);
        u.put("/storage/bookmarks/x", &json!({"payload": "two"})).expect(200);
        let item = u.get_json("/storage/bookmarks/x");
        assert_eq!((item["payload"].as_str(), item["sortindex"].as_i64()), (Some("two"), Some(8)));
    }

    fn put_url_id_is_authoritative(b: Backend) {
        let u = User::new(shared(b));
        u.put("/storage/bookmarks/url-id", &json!({"id": "body-id", "payload": "p"})).expect(200);
        assert_eq!(ids_of(&u.get_json("/storage/bookmarks")), vec!["url-id".to_string()]);
        u.get("/storage/bookmarks/body-id").expect(404);
    }

    fn put_and_post_accept_json_media_type_variants(b: Backend) {
        let u = User::new(shared(b));
        for (i, ct) in ["application/json", "text/plain", "application/json; charset=utf-8", "Application/JSON", "text/plain;charset=UTF-8"].iter().enumerate() {
            u.req("PUT", &format!("/storage/prefs/p{i}")).body(Some(ct), json!({"payload": ct}).to_string()).send().expect(200);
            u.req("POST", "/storage/forms").body(Some(ct), json!([{"id": format!("f{i}"), "payload": ct}]).to_string()).send().expect(200);
        }
        assert_eq!(u.get_json("/info/collection_counts"), json!({"prefs": 5, "forms": 5}));
    }

    fn post_reports_success_in_order_and_failures(b: Backend) {
        let u = User::new(shared(b));
        let r = u.post("/storage/history", &json!([
            {"id": "z", "payload": "1"},
            {"id": "bad-ttl", "payload": "x", "ttl": -1},
            {"id": "a", "payload": "2"},
            {"id": "m", "payload": "3", "sortindex": 1},
        ])).expect(200);
        let t = r.ts_header("X-Last-Modified");
        assert_eq!(r.ts_header("X-Weave-Timestamp"), t);
        let v = r.json();
        assert_eq!(json_ts(&v["modified"]), t);
        assert_eq!(raw_numbers_after(&r.body, "modified"), vec![fmt_ts(t)]);
        assert_eq!(v["success"], json!(["z", "a", "m"]));
        assert_eq!(v["failed"].as_object().unwrap().keys().collect::<Vec<_>>(), vec!["bad-ttl"]);
        assert!(v["failed"]["bad-ttl"].is_string());
        // One POST, one timestamp for every written item.
        let full = u.get_json("/storage/history?full=1");
        assert_eq!(full.as_array().unwrap().len(), 3);
        assert!(full.as_array().unwrap().iter().all(|i| json_ts(&i["modified"]) == t));
        u.get("/storage/history/bad-ttl").expect(404);
        let ok = u.post("/storage/history", &json!([{"id": "n", "payload": "4"}])).expect(200).json();
        assert_eq!(ok["failed"], json!({}));
    }

    fn post_rejects_invalid_items_individually(b: Backend) {
        let u = User::new(shared(b));
        let bad: Vec<(&str, Value)> = vec![
            ("si-string", json!({"sortindex": "12"})),
            ("si-float", json!({"sortindex": 2.6})),
            ("si-big", json!({"sortindex": 1_000_000_000})),
            ("si-small", json!({"sortindex": -1_000_000_000})),
            ("ttl-string", json!({"ttl": "4"})),
            ("ttl-neg", json!({"ttl": -1})),
            ("ttl-big", json!({"ttl": 1_000_000_000})),
            ("ttl-float", json!({"ttl": 1.5})),
            ("payload-num", json!({"payload": 42})),
            ("payload-obj", json!({"payload": {"a": 1}})),
            ("unknown-key", json!({"payload": "x", "foo": 1})),
        ];
        let mut body: Vec<Value> = bad.iter().map(|(id, extra)| {
            let mut o = extra.clone();
            o["id"] = json!(id);
            o
        }).collect();
        let long_id = "i".repeat(65);
        body.push(json!({"id": long_id, "payload": "x"}));
        body.push(json!({"id": "", "payload": "x"}));
        body.push(json!({"id": "tab\there", "payload": "x"}));
        body.push(json!({"id": "nön-ascii", "payload": "x"}));
        body.push(json!({"id": "good", "payload": "kept"}));
        let v = u.post("/storage/history", &Value::Array(body)).expect(200).json();
        assert_eq!(v["success"], json!(["good"]));
        let failed = v["failed"].as_object().unwrap();
        for (id, _) in &bad {
            assert!(failed.contains_key(*id), "{id} not reported failed: {v}");
        }
        for id in [long_id.as_str(), "", "tab\there", "nön-ascii"] {
            assert!(failed.contains_key(id), "{id:?} not reported failed: {v}");
        }
        assert_eq!(ids_of(&u.get_json("/storage/history")), vec!["good".to_string()]);
    }

    fn post_accepts_values_at_the_inclusive_bounds(b: Backend) {
        let u = User::new(shared(b));
        let id64 = "~".repeat(64);
        let v = u.post("/storage/history", &json!([
            {"id": "si-max", "sortindex": 999_999_999, "payload": "x"},
            {"id": "si-min", "sortindex": -999_999_999, "payload": "x"},
            {"id": "ttl-max", "ttl": 999_999_999, "payload": "x"},
            {"id": id64, "payload": ""},
            {"id": " !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}", "payload": "printable"},
        ])).expect(200).json();
        assert_eq!(v["failed"], json!({}), "{v}");
        assert_eq!(v["success"].as_array().unwrap().len(), 5);
        assert_eq!(u.get_json("/storage/history/si-min")["sortindex"], -999_999_999);
    }

    fn null_fields_are_treated_as_absent(b: Backend) {
        let u = User::new(shared(b));
        u.post("/storage/forms", &json!([{"id": "f", "payload": "keep", "sortindex": 4}])).expect(200);
        u.post("/storage/forms", &json!([{"id": "f", "payload": null, "sortindex": null, "ttl": null}])).expect(200);
        let item = u.get_json("/storage/forms/f");
        assert_eq!((item["payload"].as_str(), item["sortindex"].as_i64()), (Some("keep"), Some(4)));
        u.put("/storage/forms/f", &json!({"payload": null, "sortindex": 9})).expect(200);
        let item = u.get_json("/storage/forms/f");
        assert_eq!((item["payload"].as_str(), item["sortindex"].as_i64()), (Some("keep"), Some(9)));
    }

    fn post_applies_put_semantics_per_item(b: Backend) {
        let u = User::new(shared(b));
        u.post("/storage/tabs", &json!([{"id": "t", "payload": "old", "sortindex": 1}])).expect(200);
        u.post("/storage/tabs", &json!([{"id": "t", "sortindex": 2}, {"id": "n", "sortindex": 3}])).expect(200);
        assert_eq!(u.get_json("/storage/tabs/t")["payload"], "old");
        assert_eq!(u.get_json("/storage/tabs/n")["payload"], "");
    }

    fn post_newline_delimited_bodies(b: Backend) {
        let u = User::new(shared(b));
        let body = "{\"id\":\"n1\",\"payload\":\"a\"}\n{\"id\":\"n2\",\"payload\":\"b\"}\n";
        let v = u.req("POST", "/storage/forms").body(Some("application/newlines"), body).send().expect(200).json();
        assert_eq!(v["success"], json!(["n1", "n2"]));
        let crlf = "{\"id\":\"n3\",\"payload\":\"c\"}\r\n{\"id\":\"n4\",\"payload\":\"d\"}";
        let v = u.req("POST", "/storage/forms").body(Some("application/newlines"), crlf).send().expect(200).json();
        assert_eq!(v["success"], json!(["n3", "n4"]));
        assert_eq!(u.get_json("/info/collection_counts")["forms"], 4);
    }

    fn delete_item_answers_modified_object(b: Backend) {
        let u = seeded_user(shared(b), "bookmarks");
        let r = u.delete("/storage/bookmarks/known-a").expect(200);
        let t = r.ts_header("X-Last-Modified");
        assert_eq!(json_ts(&r.json()["modified"]), t);
        assert_eq!(r.ts_header("X-Weave-Timestamp"), t);
        u.get("/storage/bookmarks/known-a").expect(404);
        let mut left = ids_of(&u.get_json("/storage/bookmarks"));
        left.sort();
        assert_eq!(left, vec!["known-b".to_string(), "known-c".to_string()]);
        assert_eq!(json_ts(&u.get_json("/info/collections")["bookmarks"]), t);
        u.delete("/storage/bookmarks/known-a").expect_error(404, "0");
    }

    fn delete_collection_answers_new_storage_timestamp(b: Backend) {
        let u = seeded_user(shared(b), "bookmarks");
        seed(&u, "history");
        let before = u.get("/info/collections").ts_header("X-Last-Modified");
        let r = u.delete("/storage/bookmarks").expect(200);
        let t = json_ts(&r.json());
        // Another collection may have been written in the same tick (§4.4 is per collection).
        assert!(t >= before);
        assert_eq!(r.body.trim(), fmt_ts(t));
        // §14: X-Last-Modified is the new storage timestamp, like the body.
        assert_eq!(r.ts_header("X-Last-Modified"), t);
        assert_eq!(u.get_json("/storage/bookmarks"), json!([]));
        let info = u.get_json("/info/collections");
        assert!(info.get("bookmarks").is_none(), "{info}");
        assert!(info.get("history").is_some());
        assert_eq!(u.get_json("/info/collection_counts"), json!({"history": 3}));
    }

    fn delete_ids_keeps_collection_and_answers_t(b: Backend) {
        let u = seeded_user(shared(b), "bookmarks");
        let r = u.delete("/storage/bookmarks?ids=known-a,known-c,unknown").expect(200);
        let t = r.ts_header("X-Last-Modified");
        assert_eq!(r.body.trim(), fmt_ts(t));
        assert_eq!(ids_of(&u.get_json("/storage/bookmarks")), vec!["known-b".to_string()]);
        assert_eq!(json_ts(&u.get_json("/info/collections")["bookmarks"]), t);
    }

    fn delete_with_empty_ids_deletes_nothing_but_touches(b: Backend) {
        // §14 recommendation (REF deleting everything here is an accident).
        let u = seeded_user(shared(b), "bookmarks");
        let before = u.get("/storage/bookmarks").ts_header("X-Last-Modified");
        let r = u.delete("/storage/bookmarks?ids=").expect(200);
        let t = r.ts_header("X-Last-Modified");
        assert!(t > before);
        assert_eq!(u.get_json("/info/collection_counts")["bookmarks"], 3);
        assert_eq!(json_ts(&u.get_json("/info/collections")["bookmarks"]), t);
    }

    fn put_preconditions_compare_the_item(b: Backend) {
        let u = seeded_user(shared(b), "bookmarks");
        let item_ts = json_ts(&u.get_json("/storage/bookmarks/known-a")["modified"]);
        let r = rejects_unchanged(&u, "bookmarks", 412, Some(""), || {
            u.req("PUT", "/storage/bookmarks/known-a").json(&json!({"payload": "late"}))
                .header("X-If-Unmodified-Since", &fmt_ts(item_ts - 10)).send()
        });
        assert_eq!(r.ts_header("X-Last-Modified"), item_ts);
        rejects_unchanged(&u, "bookmarks", 412, Some(""), || {
            u.req("PUT", "/storage/bookmarks/known-a").json(&json!({"payload": "create-only"}))
                .header("X-If-Unmodified-Since", "0").send()
        });
        u.req("PUT", "/storage/bookmarks/known-a").json(&json!({"payload": "on-time"}))
            .header("X-If-Unmodified-Since", &fmt_ts(item_ts)).send().expect(200);
        u.req("PUT", "/storage/bookmarks/brand-new").json(&json!({"payload": "created"}))
            .header("X-If-Unmodified-Since", "0").send().expect(200);
        assert_eq!(u.get_json("/storage/bookmarks/known-a")["payload"], "on-time");
    }

    fn post_and_delete_preconditions_compare_the_collection(b: Backend) {
        let u = seeded_user(shared(b), "bookmarks");
        let coll_ts = u.get("/storage/bookmarks").ts_header("X-Last-Modified");
        let stale = fmt_ts(coll_ts - 10);
        rejects_unchanged(&u, "bookmarks", 412, Some(""), || {
            u.req("POST", "/storage/bookmarks").json(&json!([{"id": "n", "payload": "x"}]))
                .header("X-If-Unmodified-Since", &stale).send()
        });
        rejects_unchanged(&u, "bookmarks", 412, Some(""), || {
            u.req("DELETE", "/storage/bookmarks").header("X-If-Unmodified-Since", &stale).send()
        });
        rejects_unchanged(&u, "bookmarks", 412, Some(""), || {
            u.req("DELETE", "/storage/bookmarks?ids=known-a").header("X-If-Unmodified-Since", &stale).send()
        });
        let item_ts = json_ts(&u.get_json("/storage/bookmarks/known-b")["modified"]);
        rejects_unchanged(&u, "bookmarks", 412, Some(""), || {
            u.req("DELETE", "/storage/bookmarks/known-b").header("X-If-Unmodified-Since", &fmt_ts(item_ts - 10)).send()
        });
        u.req("POST", "/storage/bookmarks").json(&json!([{"id": "n", "payload": "x"}]))
            .header("X-If-Unmodified-Since", &fmt_ts(coll_ts)).send().expect(200);
    }

    fn writes_get_strictly_increasing_timestamps(b: Backend) {
        // Strictly increasing per collection (§4.4); across collections only non-decreasing,
        // since the references check the target collection alone.
        let u = User::new(shared(b));
        let (mut last, mut last_per) = (0, [0i64; 2]);
        for i in 0..10 {
            let coll = ["bookmarks", "history"][i % 2];
            let t = u
                .put(&format!("/storage/{coll}/i{i}"), &json!({"payload": "x"}))
                .expect(200)
                .ts_header("X-Last-Modified");
            assert!(t > last_per[i % 2] && t >= last, "write {i}: {t} after {last}");
            last_per[i % 2] = t;
            last = t;
        }
        assert_eq!(u.get("/info/collections").ts_header("X-Last-Modified"), last);
    }

    fn ttl_expires_items_over_time(b: Backend) {
        let u = User::new(shared(b));
        u.post("/storage/tabs", &json!([{"id": "short", "payload": "x", "ttl": 1}, {"id": "long", "payload": "y", "ttl": 3600}])).expect(200);
        assert_eq!(u.get_json("/info/collection_counts")["tabs"], 2);
        // The protocol is about time here: wait past the one-second ttl.
        std::thread::sleep(std::time::Duration::from_millis(1300));
        u.get("/storage/tabs/short").expect(404);
        assert_eq!(ids_of(&u.get_json("/storage/tabs")), vec!["long".to_string()]);
        assert_eq!(u.get_json("/info/collection_counts")["tabs"], 1);
        assert_eq!(u.get_json("/info/collection_usage")["tabs"].as_f64(), Some(1.0 / 1024.0));
    }

    fn ids_with_slash_travel_percent_encoded(b: Backend) {
        let u = User::new(shared(b));
        u.put("/storage/bookmarks/a%2Fb", &json!({"payload": "slash"})).expect(200);
        assert_eq!(ids_of(&u.get_json("/storage/bookmarks")), vec!["a/b".to_string()]);
        assert_eq!(u.get_json("/storage/bookmarks/a%2Fb")["id"], "a/b");
        u.delete("/storage/bookmarks/a%2Fb").expect(200);
    }

    fn quota_refuses_writes_once_reached(b: Backend) {
        let server = TestServer::start(b, &[
            ("WEFT_QUOTA_ENABLED", "true"),
            ("WEFT_QUOTA_ENFORCE", "true"),
            ("WEFT_LIMITS_MAX_QUOTA_LIMIT", "4096"),
        ]);
        let u = User::new(&server);
        // The check happens before the write: this one takes the user over the limit.
        u.put("/storage/bookmarks/big", &json!({"payload": "x".repeat(5000)})).expect(200);
        rejects_unchanged(&u, "bookmarks", 403, Some("14"), || {
            u.put("/storage/bookmarks/more", &json!({"payload": "y"}))
        });
        rejects_unchanged(&u, "bookmarks", 403, Some("14"), || {
            u.post("/storage/history", &json!([{"id": "h", "payload": "y"}]))
        });
        rejects_unchanged(&u, "bookmarks", 403, Some("14"), || {
            u.post("/storage/bookmarks?batch=true", &json!([{"id": "h", "payload": "y"}]))
        });
        // Deleting is always possible and frees the quota.
        u.delete("/storage/bookmarks/big").expect(200);
        u.put("/storage/bookmarks/more", &json!({"payload": "y"})).expect(200);
        // Other users are unaffected.
        User::new(&server).put("/storage/bookmarks/x", &json!({"payload": "z"})).expect(200);
    }

    fn quota_not_enforced_only_counts(b: Backend) {
        let server = TestServer::start(b, &[
            ("WEFT_QUOTA_ENABLED", "true"),
            ("WEFT_QUOTA_ENFORCE", "false"),
            ("WEFT_LIMITS_MAX_QUOTA_LIMIT", "4096"),
        ]);
        let u = User::new(&server);
        u.put("/storage/bookmarks/big", &json!({"payload": "x".repeat(5000)})).expect(200);
        u.put("/storage/bookmarks/more", &json!({"payload": "y"})).expect(200);
        assert_eq!(u.get_json("/info/collection_counts")["bookmarks"], 2);
    }
}
