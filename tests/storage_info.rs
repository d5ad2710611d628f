//! The `info/*` routes and whole-storage deletion (storage-api.md §6.1–§6.6): info/collections
//! (timestamps, records header, empty collections), info/quota, info/collection_usage,
//! info/collection_counts, info/configuration (defaults and configured limits), DELETE
//! /1.5/{uid} and DELETE /storage, conditional headers on storage-level resources, health and
//! unknown routes.

#[macro_use]
mod common;

use common::*;
use serde_json::json;

backend_tests! {
    fn info_collections_of_new_user_is_empty(b: Backend) {
        let u = User::new(shared(b));
        let r = u.get("/info/collections").expect(200);
        assert_eq!(r.json(), json!({}));
        assert_eq!(r.must_header("X-Last-Modified"), "0.00");
        assert_eq!(r.must_header("X-Weave-Records"), "0");
        assert!(r.must_header("Content-Type").starts_with("application/json"));
    }

    fn info_collections_maps_names_to_write_timestamps(b: Backend) {
        let u = User::new(shared(b));
        let t1 = u.put("/storage/bookmarks/a", &json!({"payload": "x"})).expect(200).ts_header("X-Last-Modified");
        let t2 = u.post("/storage/meta", &json!([{"id": "global", "payload": "{}"}])).expect(200).ts_header("X-Last-Modified");
        // Every write is later than everything the user has (§4.4 as PROTO phrases it), so two
        // collections written back to back never share a tick.
        assert!(t2 > t1);
        let r = u.get("/info/collections").expect(200);
        let v = r.json();
        assert_eq!(json_ts(&v["bookmarks"]), t1);
        assert_eq!(json_ts(&v["meta"]), t2);
        assert_eq!(v.as_object().unwrap().len(), 2);
        assert_eq!(r.must_header("X-Weave-Records"), "2");
        // Storage last-modified is the greatest collection timestamp.
        assert_eq!(r.ts_header("X-Last-Modified"), t2);
        for raw in raw_numbers_after(&r.body, "bookmarks").iter().chain(&raw_numbers_after(&r.body, "meta")) {
            assert!(is_two_decimal(raw), "{raw} in {}", r.body);
        }
    }

    fn info_collections_keeps_emptied_collections(b: Backend) {
        let u = seeded_user(shared(b), "forms");
        let t = u.delete("/storage/forms?ids=known-a,known-b,known-c").expect(200).ts_header("X-Last-Modified");
        assert_eq!(u.get_json("/storage/forms"), json!([]));
        let v = u.get_json("/info/collections");
        assert_eq!(json_ts(&v["forms"]), t);
    }

    fn info_collections_ignores_unknown_query_parameters(b: Backend) {
        let u = seeded_user(shared(b), "tabs");
        let plain = u.get("/info/collections").expect(200).body;
        assert_eq!(u.get("/info/collections?v=1.2.3").expect(200).body, plain);
    }

    fn info_quota_reports_used_kilobytes_and_null(b: Backend) {
        let u = User::new(shared(b));
        let v = u.get_json("/info/quota");
        assert_eq!(v.as_array().map(Vec::len), Some(2), "{v}");
        assert_eq!(v[0].as_f64(), Some(0.0));
        assert!(v[1].is_null());
        // 1536 bytes of ASCII plus 512 two-byte characters = 2560 bytes = 2.5 KB.
        let payload = format!("{}{}", "x".repeat(1536), "é".repeat(512));
        u.put("/storage/history/h1", &json!({"payload": payload})).expect(200);
        let v = u.get_json("/info/quota");
        assert_eq!(v[0].as_f64(), Some(2.5));
    }

    fn info_collection_usage_in_kilobytes_per_collection(b: Backend) {
        let u = User::new(shared(b));
        u.post("/storage/history", &json!([{"id": "a", "payload": "x".repeat(1024)}, {"id": "b", "payload": "y".repeat(512)}])).expect(200);
        u.put("/storage/prefs/p", &json!({"payload": "z".repeat(256)})).expect(200);
        // A collection whose only item expired at once has no live bytes: absent.
        u.put("/storage/tabs/t", &json!({"payload": "gone", "ttl": 0})).expect(200);
        let r = u.get("/info/collection_usage").expect(200);
        let v = r.json();
        assert_eq!(v["history"].as_f64(), Some(1.5));
        assert_eq!(v["prefs"].as_f64(), Some(0.25));
        assert!(v.get("tabs").is_none(), "{v}");
        assert_eq!(r.must_header("X-Weave-Records"), "2");
    }

    fn info_collection_counts_counts_live_items(b: Backend) {
        let u = User::new(shared(b));
        u.post("/storage/bookmarks", &records("bm", 4)).expect(200);
        u.put("/storage/bookmarks/expired", &json!({"payload": "x", "ttl": 0})).expect(200);
        u.put("/storage/clients/c", &json!({"payload": "x"})).expect(200);
        u.delete("/storage/clients/c").expect(200);
        let r = u.get("/info/collection_counts").expect(200);
        assert_eq!(r.json(), json!({"bookmarks": 4}));
        assert_eq!(r.must_header("X-Weave-Records"), "1");
    }

    fn info_configuration_advertises_ref_defaults(b: Backend) {
        let u = User::new(shared(b));
        let r = u.get("/info/configuration").expect(200);
        assert_eq!(r.must_header("X-Last-Modified"), "0.00");
        assert!(r.must_header("Content-Type").starts_with("application/json"));
        assert_eq!(
            r.json(),
            json!({"max_post_bytes": 2621440, "max_post_records": 100, "max_record_payload_bytes": 2621440,
                   "max_request_bytes": 2625536, "max_total_bytes": 262144000, "max_total_records": 10000,
                   "max_quota_limit": 2097152000})
        );
    }

    fn info_configuration_reflects_configured_limits(b: Backend) {
        let server = TestServer::start(b, &[
            ("WEFT_LIMITS_MAX_POST_RECORDS", "7"),
            ("WEFT_LIMITS_MAX_POST_BYTES", "5000"),
            ("WEFT_LIMITS_MAX_RECORD_PAYLOAD_BYTES", "5000"),
            ("WEFT_LIMITS_MAX_REQUEST_BYTES", "9096"),
            ("WEFT_LIMITS_MAX_TOTAL_RECORDS", "70"),
            ("WEFT_LIMITS_MAX_TOTAL_BYTES", "50000"),
            ("WEFT_LIMITS_MAX_QUOTA_LIMIT", "123456"),
        ]);
        let v = User::new(&server).get_json("/info/configuration");
        assert_eq!(
            v,
            json!({"max_post_bytes": 5000, "max_post_records": 7, "max_record_payload_bytes": 5000,
                   "max_request_bytes": 9096, "max_total_bytes": 50000, "max_total_records": 70,
                   "max_quota_limit": 123456})
        );
    }

    fn delete_storage_removes_everything(b: Backend) {
        let u = seeded_user(shared(b), "bookmarks");
        seed(&u, "history");
        let r = u.req("DELETE", "/storage").header("X-Confirm-Delete", "1").send().expect(200);
        assert_eq!(r.json(), json!(null));
        let info = u.get("/info/collections").expect(200);
        assert_eq!(info.json(), json!({}));
        assert_eq!(info.must_header("X-Last-Modified"), "0.00");
        assert_eq!(u.get_json("/storage/bookmarks"), json!([]));
        assert_eq!(u.get_json("/info/collection_counts"), json!({}));
        assert_eq!(u.get_json("/info/quota")[0].as_f64(), Some(0.0));
    }

    fn delete_user_root_is_the_same_as_delete_storage(b: Backend) {
        let server = shared(b);
        let u = seeded_user(server, "bookmarks");
        let other = seeded_user(server, "bookmarks");
        let before_other = snapshot(&other, "bookmarks");
        u.delete("").expect(200);
        let info = u.get("/info/collections").expect(200);
        assert_eq!(info.json(), json!({}));
        assert_eq!(info.must_header("X-Last-Modified"), "0.00");
        // Another user's data is untouched.
        assert_eq!(snapshot(&other, "bookmarks"), before_other);
    }

    fn storage_level_preconditions_on_info_routes(b: Backend) {
        let u = seeded_user(shared(b), "bookmarks");
        let info = u.get("/info/collections").expect(200);
        let lm = info.must_header("X-Last-Modified");
        for route in ["/info/collections", "/info/quota", "/info/collection_usage", "/info/collection_counts"] {
            let r = u.req("GET", route).header("X-If-Modified-Since", &lm).send().expect(304);
            assert_eq!(r.body, "");
            assert_eq!(r.must_header("X-Last-Modified"), lm);
            parse_ts(&r.must_header("X-Weave-Timestamp"));
            let earlier = fmt_ts(parse_ts(&lm) - 10);
            let r = u.req("GET", route).header("X-If-Unmodified-Since", &earlier).send().expect(412);
            assert_eq!(r.body, "");
            assert_eq!(r.must_header("X-Last-Modified"), lm);
            u.req("GET", route).header("X-If-Unmodified-Since", &lm).send().expect(200);
            u.req("GET", route).header("X-If-Modified-Since", &earlier).send().expect(200);
        }
    }

    fn delete_storage_precondition_failure_deletes_nothing(b: Backend) {
        let u = seeded_user(shared(b), "bookmarks");
        let lm = u.get("/info/collections").ts_header("X-Last-Modified");
        rejects_unchanged(&u, "bookmarks", 412, Some(""), || {
            u.req("DELETE", "/storage").header("X-If-Unmodified-Since", &fmt_ts(lm - 10)).send()
        });
    }

    fn health_and_unknown_routes(b: Backend) {
        let server = shared(b);
        let u = User::new(server);
        u.raw("GET", "/__lbheartbeat__").unauthenticated().send().expect(200);
        let r = u.req("GET", "/no/such/route").send().expect_error(404, "0");
        assert!(r.must_header("Content-Type").starts_with("application/json"));
        u.raw("GET", "/1.1/123/info/collections").send().expect_error(404, "0");
        // A uid of more than 10 digits does not match the route.
        u.raw("GET", "/1.5/12345678901/info/collections").send().expect_error(404, "0");
    }

    fn unsupported_methods_on_routes_are_405(b: Backend) {
        let u = User::new(shared(b));
        u.req("PUT", "/info/quota").json(&json!({})).send().expect(405);
        u.req("POST", "/info/collections").json(&json!([])).send().expect(405);
        u.req("GET", "/storage").send().expect(405);
        u.req("PATCH", "/storage/bookmarks").json(&json!([])).send().expect(405);
    }
}
