//! Every row of storage-api.md §10.3 (condition → status and weave error code), each checked
//! with the bad-input protocol: known data is stored first, the bad request is refused with the
//! exact status and body, and everything the user can observe is byte-for-byte unchanged.
//! Rows covered elsewhere with the same protocol: batch-id rows in storage_batches.rs, quota in
//! storage_writes.rs, authentication in auth.rs. Conflicts (503) cannot be provoked on demand;
//! concurrency.rs checks that any 503 carries Retry-After.

#[macro_use]
mod common;

use common::*;
use serde_json::json;

backend_tests! {
    fn invalid_query_parameters_are_400_0(b: Backend) {
        let u = seeded_user(shared(b), "bookmarks");
        let too_many: Vec<String> = (0..101).map(|i| format!("id{i}")).collect();
        let long = "x".repeat(65);
        let queries = [
            "newer=abc", "newer=-1", "newer=NaN", "newer=1e999999",
            "older=abc", "older=-5",
            "limit=-1", "limit=1.5", "limit=abc", "limit=99999999999999",
            "sort=random", "sort=NEWEST", "offset=garbage", "offset=-3",
            &format!("ids={}", too_many.join(",")),
            &format!("ids=ok,{long}"),
            "ids=ok,tab%09id", "ids=caf%C3%A9",
        ];
        for q in queries {
            rejects_unchanged(&u, "bookmarks", 400, Some("0"), || u.get(&format!("/storage/bookmarks?{q}")));
        }
        // The same id-list rules protect DELETE, where a wrong acceptance would destroy data.
        for q in [format!("ids={}", too_many.join(",")), format!("ids=known-a,{long}"), "ids=known-a,tab%09id".to_string()] {
            rejects_unchanged(&u, "bookmarks", 400, Some("0"), || u.delete(&format!("/storage/bookmarks?{q}")));
        }
    }

    fn precondition_header_errors_are_400_0(b: Backend) {
        let u = seeded_user(shared(b), "bookmarks");
        let lm = u.get("/storage/bookmarks").must_header("X-Last-Modified");
        let write = |h: &[(&str, &str)]| {
            let mut r = u.req("PUT", "/storage/bookmarks/known-a").json(&json!({"payload": "x"}));
            for (k, v) in h {
                r = r.header(k, v);
            }
            r.send()
        };
        rejects_unchanged(&u, "bookmarks", 400, Some("0"), || write(&[("X-If-Modified-Since", &lm), ("X-If-Unmodified-Since", &lm)]));
        for bad in ["abc", "-1", "NaN", "1.2.3", "inf"] {
            rejects_unchanged(&u, "bookmarks", 400, Some("0"), || write(&[("X-If-Unmodified-Since", bad)]));
            rejects_unchanged(&u, "bookmarks", 400, Some("0"), || {
                u.req("POST", "/storage/bookmarks").json(&json!([{"id": "n", "payload": "x"}])).header("X-If-Unmodified-Since", bad).send()
            });
            rejects_unchanged(&u, "bookmarks", 400, Some("0"), || {
                u.req("GET", "/storage/bookmarks").header("X-If-Modified-Since", bad).send()
            });
        }
        rejects_unchanged(&u, "bookmarks", 400, Some("0"), || {
            u.req("DELETE", "/storage/bookmarks").header("X-If-Modified-Since", "0").header("X-If-Unmodified-Since", &lm).send()
        });
    }

    fn invalid_put_bodies_are_400_8(b: Backend) {
        let u = seeded_user(shared(b), "bookmarks");
        let bodies = [
            "{", "", "[]", "\"text\"", "42", "null",
            r#"{"payload": "x", "unknown": 1}"#,
            r#"{"sortindex": "12"}"#, r#"{"sortindex": 2.6}"#, r#"{"sortindex": 1000000000}"#,
            r#"{"ttl": -1}"#, r#"{"ttl": "4"}"#, r#"{"ttl": 1000000000}"#,
            r#"{"payload": 42}"#, r#"{"id": "", "payload": "x"}"#, r#"{"id": 42, "payload": "x"}"#,
        ];
        for body in bodies {
            rejects_unchanged(&u, "bookmarks", 400, Some("8"), || {
                u.req("PUT", "/storage/bookmarks/known-a").body(Some("application/json"), body).send()
            });
        }
        rejects_unchanged(&u, "bookmarks", 400, Some("8"), || {
            u.req("PUT", "/storage/bookmarks/known-a").body(Some("application/newlines"), "{\"payload\":\"x\"}").send()
        });
    }

    fn oversized_payload_on_put_is_400_8(b: Backend) {
        // SMALL_LIMITS: max_record_payload_bytes = 1000.
        let u = seeded_user(shared_small(b), "bookmarks");
        rejects_unchanged(&u, "bookmarks", 400, Some("8"), || {
            u.put("/storage/bookmarks/known-a", &json!({"payload": "x".repeat(1001)}))
        });
        u.put("/storage/bookmarks/exact", &json!({"payload": "x".repeat(1000)})).expect(200);
    }

    fn post_bodies_that_are_not_lists_are_400_8(b: Backend) {
        let u = seeded_user(shared(b), "bookmarks");
        for body in ["{}", r#"{"id": "a", "payload": "x"}"#, "\"x\"", "42", "[", "", "null", "[{\"id\":\"a\"}"] {
            rejects_unchanged(&u, "bookmarks", 400, Some("8"), || {
                u.req("POST", "/storage/bookmarks").body(Some("application/json"), body).send()
            });
        }
    }

    fn post_elements_without_usable_ids_are_400_8(b: Backend) {
        let u = seeded_user(shared(b), "bookmarks");
        let bodies = [
            json!([{"id": "fine", "payload": "x"}, 1]),
            json!([{"id": "fine", "payload": "x"}, "x"]),
            json!([[]]),
            json!([null]),
            json!([{"id": "fine", "payload": "x"}, {"payload": "no id"}]),
            json!([{"id": 42, "payload": "x"}]),
            json!([{"id": null, "payload": "x"}]),
            json!([{"id": "dup", "payload": "1"}, {"id": "fine", "payload": "x"}, {"id": "dup", "payload": "2"}]),
        ];
        for body in bodies {
            rejects_unchanged(&u, "bookmarks", 400, Some("8"), || u.post("/storage/bookmarks", &body));
            rejects_unchanged(&u, "bookmarks", 400, Some("8"), || u.post("/storage/bookmarks?batch=true", &body));
        }
    }

    fn known_bad_crypto_iv_is_400_8(b: Backend) {
        let u = seeded_user(shared(b), "crypto");
        let bad = r#"{"ciphertext":"abc","IV": "AAAAAAAAAAAAAAAAAAAAAA==","hmac":"x"}"#;
        rejects_unchanged(&u, "crypto", 400, Some("8"), || u.put("/storage/crypto/keys", &json!({"payload": bad})));
        rejects_unchanged(&u, "crypto", 400, Some("8"), || {
            u.post("/storage/crypto", &json!([{"id": "fine", "payload": "ok"}, {"id": "keys", "payload": bad}]))
        });
        rejects_unchanged(&u, "crypto", 400, Some("8"), || {
            u.post("/storage/crypto?batch=true&commit=true", &json!([{"id": "keys", "payload": bad}]))
        });
    }

    fn weave_size_headers_over_limit_are_400_17(b: Backend) {
        let u = seeded_user(shared(b), "bookmarks");
        let cases = [
            ("X-Weave-Records", "101"),
            ("X-Weave-Bytes", "2621441"),
            ("X-Weave-Total-Records", "10001"),
            ("X-Weave-Total-Bytes", "262144001"),
        ];
        for (header, value) in cases {
            rejects_unchanged(&u, "bookmarks", 400, Some("17"), || {
                u.req("POST", "/storage/bookmarks").json(&json!([{"id": "n", "payload": "x"}])).header(header, value).send()
            });
        }
        // Limits are inclusive.
        u.req("POST", "/storage/bookmarks").json(&json!([{"id": "n", "payload": "x"}]))
            .header("X-Weave-Records", "100").header("X-Weave-Bytes", "2621440").send().expect(200);
    }

    fn weave_size_headers_not_integers_are_400_0(b: Backend) {
        let u = seeded_user(shared(b), "bookmarks");
        for header in ["X-Weave-Records", "X-Weave-Bytes", "X-Weave-Total-Records", "X-Weave-Total-Bytes"] {
            for value in ["abc", "-1", "1.5", "0x10"] {
                rejects_unchanged(&u, "bookmarks", 400, Some("0"), || {
                    u.req("POST", "/storage/bookmarks").json(&json!([{"id": "n", "payload": "x"}])).header(header, value).send()
                });
            }
        }
    }

    fn request_body_over_max_request_bytes_is_413_17(b: Backend) {
        // SMALL_LIMITS: max_request_bytes = 5096.
        let u = seeded_user(shared_small(b), "bookmarks");
        let big = "x".repeat(6000);
        rejects_unchanged(&u, "bookmarks", 413, Some("17"), || {
            u.put("/storage/bookmarks/known-a", &json!({"payload": big}))
        });
        rejects_unchanged(&u, "bookmarks", 413, Some("17"), || {
            u.post("/storage/bookmarks", &json!([{"id": "known-a", "payload": big}]))
        });
    }

    fn unsupported_content_type_is_415(b: Backend) {
        let u = seeded_user(shared(b), "bookmarks");
        for ct in ["application/xml", "text/html", "multipart/form-data; boundary=x", "application/octet-stream"] {
            rejects_unchanged(&u, "bookmarks", 415, Some("0"), || {
                u.req("PUT", "/storage/bookmarks/known-a").body(Some(ct), r#"{"payload":"x"}"#).send()
            });
            rejects_unchanged(&u, "bookmarks", 415, Some("0"), || {
                u.req("POST", "/storage/bookmarks").body(Some(ct), r#"[{"id":"known-a","payload":"x"}]"#).send()
            });
        }
    }

    fn unacceptable_accept_is_406_0(b: Backend) {
        let u = seeded_user(shared(b), "bookmarks");
        rejects_unchanged(&u, "bookmarks", 406, Some("0"), || {
            u.req("GET", "/storage/bookmarks?full=1").header("Accept", "x/yy").send()
        });
    }

    fn invalid_collection_names_and_ids_in_paths(b: Backend) {
        let u = seeded_user(shared(b), "bookmarks");
        let long_coll = "c".repeat(33);
        for coll in [long_coll.as_str(), "bad!name", "b%20c"] {
            rejects_unchanged(&u, "bookmarks", 404, Some("0"), || u.put(&format!("/storage/{coll}/x"), &json!({"payload": "x"})));
            rejects_unchanged(&u, "bookmarks", 404, Some("0"), || u.post(&format!("/storage/{coll}"), &json!([])));
        }
        let long_id = "i".repeat(65);
        rejects_unchanged(&u, "bookmarks", 404, Some("0"), || u.put(&format!("/storage/bookmarks/{long_id}"), &json!({"payload": "x"})));
        // A raw id that matches the route but decodes to a control character.
        rejects_unchanged(&u, "bookmarks", 400, Some("0"), || u.put("/storage/bookmarks/tab%09id", &json!({"payload": "x"})));
    }

    fn error_responses_are_json_with_timestamp(b: Backend) {
        let u = seeded_user(shared(b), "bookmarks");
        let responses = [
            u.get("/storage/bookmarks?limit=-1"),
            u.req("PUT", "/storage/bookmarks/a").body(Some("application/json"), "{").send(),
            u.req("PUT", "/storage/bookmarks/a").body(Some("text/html"), "{}").send(),
            u.get("/storage/bookmarks/missing"),
        ];
        for r in responses {
            assert!(r.status >= 400, "{}", r.what);
            assert!(r.must_header("Content-Type").starts_with("application/json"), "{}", r.what);
            assert!(r.body.trim().parse::<i64>().is_ok(), "{}: body {:?} is a bare integer", r.what, r.body);
            parse_ts(&r.must_header("X-Weave-Timestamp"));
        }
    }
}
