//! Every numbered item of storage-api.md §13 ("edge cases a careful implementation must get
//! right"), one or more tests per item named `edge_NN_…`. Where §13 describes a REF quirk
//! and §14 recommends otherwise, the test follows §14 and says so.

#[macro_use]
mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

fn sorted_ids(u: &User, coll: &str) -> Vec<String> {
    let mut ids = ids_of(&u.get_json(&format!("/storage/{coll}")));
    ids.sort();
    ids
}

fn strings(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

const IOS_OLD: &str = "Firefox-iOS-Sync/18.0b1 (iPhone; iPhone OS 16.0) (Firefox)";

backend_tests! {
    fn edge_01_nonexistent_collection(b: Backend) {
        let u = seeded_user(shared(b), "history");
        let storage_ts = u.get("/info/collections").ts_header("X-Last-Modified");
        assert_eq!(u.get_json("/storage/nothing"), json!([]));
        // DELETE without ids: 200 with the unchanged storage timestamp, nothing created.
        let r = u.delete("/storage/nothing").expect(200);
        assert_eq!(json_ts(&r.json()), storage_ts);
        assert!(u.get_json("/info/collections").get("nothing").is_none());
        assert_eq!(u.get("/info/collections").ts_header("X-Last-Modified"), storage_ts);
        u.get("/storage/nothing/x").expect_error(404, "0");
        u.delete("/storage/nothing/x").expect_error(404, "0");
        // DELETE with ids touches: the (empty) collection now exists with T.
        let r = u.delete("/storage/touched?ids=a,b").expect(200);
        let t = json_ts(&r.json());
        assert_eq!(r.ts_header("X-Last-Modified"), t);
        assert_eq!(json_ts(&u.get_json("/info/collections")["touched"]), t);
        u.put("/storage/created/x", &json!({"payload": "p"})).expect(200);
        u.post("/storage/posted", &json!([{"id": "y", "payload": "p"}])).expect(200);
        let info = u.get_json("/info/collections");
        assert!(info.get("created").is_some() && info.get("posted").is_some(), "{info}");
    }

    fn edge_02_empty_post_bumps_timestamp_and_creates(b: Backend) {
        let u = seeded_user(shared(b), "history");
        let before = u.get("/storage/history").ts_header("X-Last-Modified");
        let r = u.post("/storage/history", &json!([])).expect(200);
        let t = r.ts_header("X-Last-Modified");
        assert!(t > before);
        assert_eq!(json_ts(&r.json()["modified"]), t);
        assert_eq!(r.json()["success"], json!([]));
        let r = u.post("/storage/fresh", &json!([{"id": "bad", "payload": 1}])).expect(200);
        let t2 = r.ts_header("X-Last-Modified");
        assert_eq!(json_ts(&r.json()["modified"]), t2);
        let info = u.get_json("/info/collections");
        assert_eq!(json_ts(&info["history"]), t);
        assert_eq!(json_ts(&info["fresh"]), t2);
        assert_eq!(u.get_json("/storage/fresh"), json!([]));
    }

    fn edge_03_ttl_only_updates_keep_modified(b: Backend) {
        let u = seeded_user(shared(b), "history");
        let item_ts = json_ts(&u.get_json("/storage/history/known-a")["modified"]);
        let r = u.post("/storage/history", &json!([{"id": "known-a", "ttl": 3600}, {"id": "brand-new", "ttl": 3600}])).expect(200);
        let t = r.ts_header("X-Last-Modified");
        assert_eq!(json_ts(&u.get_json("/storage/history/known-a")["modified"]), item_ts);
        let new = u.get_json("/storage/history/brand-new");
        assert_eq!((new["payload"].as_str(), json_ts(&new["modified"])), (Some(""), t));
        assert_eq!(json_ts(&u.get_json("/info/collections")["history"]), t);
        // PUT behaves the same.
        u.put("/storage/history/known-b", &json!({"ttl": 60})).expect(200);
        let b_item = u.get_json("/storage/history/known-b");
        assert_eq!(json_ts(&b_item["modified"]), item_ts);
        assert_eq!(b_item["payload"], "bravo");
        // In a batch commit even ttl-only items get the commit T.
        let id = create_batch(&u, "history", &json!([{"id": "known-c", "ttl": 3600}]));
        let tc = commit_batch(&u, "history", &id, &json!([])).ts_header("X-Last-Modified");
        let c_item = u.get_json("/storage/history/known-c");
        assert_eq!(json_ts(&c_item["modified"]), tc);
        assert_eq!(c_item["payload"], "charlié €");
    }

    fn edge_04_batch_ttl_counts_from_commit(b: Backend) {
        let u = User::new(shared(b));
        let id = create_batch(&u, "tabs", &json!([{"id": "t", "payload": "x", "ttl": 2}]));
        // The protocol is about time: stage, wait, commit, and check after the staging-based
        // expiry would have passed but before the commit-based one.
        std::thread::sleep(Duration::from_millis(1500));
        commit_batch(&u, "tabs", &id, &json!([]));
        std::thread::sleep(Duration::from_millis(1000));
        assert_eq!(u.get_json("/storage/tabs/t")["payload"], "x");
        std::thread::sleep(Duration::from_millis(1500));
        u.get("/storage/tabs/t").expect(404);
    }

    fn edge_05_ttl_zero_hides_and_null_ttl_is_absent(b: Backend) {
        let u = seeded_user(shared(b), "history");
        u.put("/storage/history/known-a", &json!({"ttl": 0})).expect(200);
        u.get("/storage/history/known-a").expect(404);
        assert_eq!(sorted_ids(&u, "history"), strings(&["known-b", "known-c"]));
        // ttl: null keeps the current expiry (here: none) instead of resetting anything.
        u.put("/storage/history/known-b", &json!({"ttl": null, "payload": "still"})).expect(200);
        assert_eq!(u.get_json("/storage/history/known-b")["payload"], "still");
        u.put("/storage/history/short", &json!({"payload": "x", "ttl": 1})).expect(200);
        u.put("/storage/history/short", &json!({"payload": "y", "ttl": null})).expect(200);
        std::thread::sleep(Duration::from_millis(1300));
        u.get("/storage/history/short").expect(404);
    }

    fn edge_06_expired_rows_are_absent_everywhere(b: Backend) {
        let u = seeded_user(shared(b), "history");
        u.put("/storage/history/known-a", &json!({"ttl": 0})).expect(200);
        assert_eq!(u.get_json("/info/collection_counts")["history"], 2);
        u.delete("/storage/history/known-a").expect_error(404, "0");
        // §14: preconditions treat the expired row as absent, so create-only succeeds…
        u.req("PUT", "/storage/history/known-a").json(&json!({"sortindex": 1}))
            .header("X-If-Unmodified-Since", "0").send().expect(200);
        // …and a partial write does not revive the old payload.
        let item = u.get_json("/storage/history/known-a");
        assert_eq!((item["payload"].as_str(), item["sortindex"].as_i64()), (Some(""), Some(1)));
        let usage = u.get_json("/info/collection_usage")["history"].as_f64().unwrap();
        let expected = ("bravo".len() + "charlié €".len()) as f64 / 1024.0;
        assert!((usage - expected).abs() < 1e-9, "usage {usage} vs {expected}");
    }

    fn edge_07_bso_id_newline_rejected(b: Backend) {
        let u = seeded_user(shared(b), "history");
        let v = u.post("/storage/history", &json!([{"id": "A\n", "payload": "x"}, {"id": "ok", "payload": "y"}])).expect(200).json();
        assert!(v["failed"].get("A\n").is_some(), "{v}");
        assert_eq!(v["success"], json!(["ok"]));
        let r = u.put("/storage/history/A%0A", &json!({"payload": "x"}));
        assert!(matches!(r.status, 400 | 404), "{}: {}", r.what, r.status);
        u.get("/storage/history/A").expect(404);
        // In `ids` surrounding whitespace is trimmed (`A\n` → `A`), so test an inner newline.
        rejects_unchanged(&u, "history", 400, Some("0"), || u.get("/storage/history?ids=A%0AB"));
    }

    fn edge_08_id_charset_includes_space_only(b: Backend) {
        let u = User::new(shared(b));
        u.put("/storage/history/a%20b", &json!({"payload": "space"})).expect(200);
        assert_eq!(u.get_json("/storage/history/a%20b")["id"], "a b");
        let v = u.post("/storage/history", &json!([{"id": "c d", "payload": "1"}, {"id": "t\tb", "payload": "2"}, {"id": "é", "payload": "3"}, {"id": "\u{7f}", "payload": "4"}])).expect(200).json();
        assert_eq!(v["success"], json!(["c d"]));
        assert_eq!(v["failed"].as_object().unwrap().len(), 3, "{v}");
        assert_eq!(sorted_ids(&u, "history"), strings(&["a b", "c d"]));
    }

    fn edge_09_ids_list_parsing(b: Backend) {
        let u = User::new(shared(b));
        u.post("/storage/history", &records("t", 3)).expect(200);
        let got = ids_of(&u.get_json("/storage/history?ids=t000%2Ct001&sort=oldest"));
        assert_eq!(got, strings(&["t000", "t001"]));
        let got = ids_of(&u.get_json("/storage/history?ids=%20t002%20,,t000,&sort=oldest"));
        assert_eq!(got, strings(&["t000", "t002"]));
        let hundred: Vec<String> = (0..100).map(|i| format!("t{i:03}")).collect();
        assert_eq!(u.get_json(&format!("/storage/history?ids={}", hundred.join(","))).as_array().unwrap().len(), 3);
        let more: Vec<String> = (0..101).map(|i| format!("t{i:03}")).collect();
        u.get(&format!("/storage/history?ids={}", more.join(","))).expect_error(400, "0");
        u.delete(&format!("/storage/history?ids={}", hundred.join(","))).expect(200);
        assert_eq!(u.get_json("/storage/history"), json!([]));
    }

    fn edge_10_missing_ids_are_absent_or_ignored(b: Backend) {
        let u = seeded_user(shared(b), "history");
        assert_eq!(ids_of(&u.get_json("/storage/history?ids=nope,known-b,zip")), strings(&["known-b"]));
        u.delete("/storage/history?ids=nope,zip").expect(200);
        assert_eq!(u.get_json("/info/collection_counts")["history"], 3);
    }

    fn edge_11_newer_and_older_are_strict(b: Backend) {
        let u = User::new(shared(b));
        let t1 = u.put("/storage/history/one", &json!({"payload": "1"})).expect(200).ts_header("X-Last-Modified");
        let t2 = u.put("/storage/history/two", &json!({"payload": "2"})).expect(200).ts_header("X-Last-Modified");
        let t3 = u.put("/storage/history/three", &json!({"payload": "3"})).expect(200).ts_header("X-Last-Modified");
        let read = |q: String| ids_of(&u.get_json(&format!("/storage/history?sort=oldest&{q}")));
        assert_eq!(read(format!("newer={}", fmt_ts(t1))), strings(&["two", "three"]));
        assert_eq!(read(format!("older={}", fmt_ts(t3))), strings(&["one", "two"]));
        assert_eq!(read(format!("newer={}&older={}", fmt_ts(t1), fmt_ts(t3))), strings(&["two"]));
        assert!(read(format!("newer={}&older={}", fmt_ts(t2), fmt_ts(t3))).is_empty());
        // The shortest float spelling (`…4` for `…40`) denotes the same tick (§4.5).
        let short = fmt_ts(t1).trim_end_matches('0').trim_end_matches('.').to_string();
        assert_eq!(read(format!("newer={short}")), strings(&["two", "three"]));
    }

    fn edge_12_equal_timestamp_paging_of_a_batch_commit(b: Backend) {
        let u = User::new(shared(b));
        // 250 items committed in one batch all share one T; page like a second device does.
        let id = create_batch(&u, "bookmarks", &records("a", 100));
        append_batch(&u, "bookmarks", &id, &records("b", 100));
        let t = commit_batch(&u, "bookmarks", &id, &records("c", 50)).ts_header("X-Last-Modified");
        let lm = fmt_ts(t);
        let mut seen = vec![];
        let mut offset: Option<String> = None;
        for _ in 0..10 {
            let q = match &offset {
                Some(o) => format!("full=1&sort=oldest&limit=100&offset={o}"),
                None => "full=1&sort=oldest&limit=100".to_string(),
            };
            let r = u.req("GET", &format!("/storage/bookmarks?{q}")).header("X-If-Unmodified-Since", &lm).send().expect(200);
            seen.extend(ids_of(&r.json()));
            offset = r.header("X-Weave-Next-Offset");
            if offset.is_none() {
                break;
            }
        }
        assert!(offset.is_none(), "paging did not finish");
        let mut expected: Vec<String> = ["a", "b"].iter().flat_map(|p| (0..100).map(move |i| format!("{p}{i:03}"))).chain((0..50).map(|i| format!("c{i:03}"))).collect();
        expected.sort();
        assert_eq!(seen, expected, "oldest order ties by id ascending, no repeats or gaps");
    }

    fn edge_13_unlimited_get_returns_everything_or_pages(b: Backend) {
        let u = User::new(shared(b));
        let total = 10_050;
        for chunk in 0..(total / 100 + 1) {
            let body: Vec<Value> = (chunk * 100..((chunk + 1) * 100).min(total)).map(|i| json!({"id": format!("i{i:05}")})).collect();
            if !body.is_empty() {
                u.post("/storage/history", &Value::Array(body)).expect(200);
            }
        }
        let mut all = vec![];
        let mut next: Option<String> = None;
        for _ in 0..5 {
            let rel = match &next {
                Some(o) => format!("/storage/history?offset={o}"),
                None => "/storage/history".to_string(),
            };
            let r = u.get(&rel).expect(200);
            all.extend(ids_of(&r.json()));
            next = r.header("X-Weave-Next-Offset");
            if next.is_none() {
                break;
            }
        }
        assert!(next.is_none());
        all.sort();
        all.dedup();
        assert_eq!(all.len(), total);
    }

    fn edge_14_commit_body_wins_over_staged(b: Backend) {
        let u = User::new(shared(b));
        let id = create_batch(&u, "forms", &json!([{"id": "x", "payload": "staged", "sortindex": 1}, {"id": "y", "payload": "staged-y"}]));
        commit_batch(&u, "forms", &id, &json!([{"id": "x", "payload": "commit"}]));
        let x = u.get_json("/storage/forms/x");
        // The commit body overwrites the payload; the staged sortindex still applies.
        assert_eq!((x["payload"].as_str(), x["sortindex"].as_i64()), (Some("commit"), Some(1)));
        assert_eq!(u.get_json("/storage/forms/y")["payload"], "staged-y");
    }

    fn edge_15_batch_ids_are_scoped_and_not_resurrected(b: Backend) {
        let server = shared(b);
        let u = User::new(server);
        let other = User::new(server);
        let a = create_batch(&u, "forms", &json!([{"id": "forms-item", "payload": "f"}]));
        let h = create_batch(&u, "history", &json!([{"id": "history-item", "payload": "h"}]));
        let o = create_batch(&other, "forms", &json!([{"id": "other-item", "payload": "o"}]));
        commit_batch(&u, "forms", &a, &json!([]));
        commit_batch(&u, "history", &h, &json!([]));
        commit_batch(&other, "forms", &o, &json!([]));
        assert_eq!(sorted_ids(&u, "forms"), strings(&["forms-item"]));
        assert_eq!(sorted_ids(&u, "history"), strings(&["history-item"]));
        assert_eq!(sorted_ids(&other, "forms"), strings(&["other-item"]));
        // New batches right after commits never carry old staged rows, even if an id repeats.
        for _ in 0..5 {
            let n = create_batch(&u, "forms", &json!([]));
            commit_batch(&u, "forms", &n, &json!([]));
        }
        u.delete("/storage/forms").expect(200);
        let n = create_batch(&u, "forms", &json!([]));
        commit_batch(&u, "forms", &n, &json!([]));
        assert_eq!(u.get_json("/storage/forms"), json!([]));
    }

    fn edge_16_202_for_staging_200_for_commit(b: Backend) {
        let u = User::new(shared(b));
        let r = u.post("/storage/forms?batch=true", &json!([{"id": "a", "payload": "1"}])).expect(202);
        let id = r.json()["batch"].as_str().unwrap().to_string();
        let r = u.post(&format!("/storage/forms?batch={id}"), &json!([])).expect(202);
        assert_eq!(r.json()["batch"], id.as_str());
        let r = u.post(&format!("/storage/forms?batch={id}&commit=true"), &json!([])).expect(200);
        assert!(r.json().get("batch").is_none());
        let r = u.post("/storage/forms?batch=true&commit=true", &json!([])).expect(200);
        assert!(r.json().get("batch").is_none());
    }

    fn edge_17_batch_last_modified_unchanged_until_commit(b: Backend) {
        let u = User::new(shared(b));
        let r = u.post("/storage/forms?batch=true", &json!([{"id": "a", "payload": "1"}])).expect(202);
        assert_eq!(r.must_header("X-Last-Modified"), "0.00");
        let id = r.json()["batch"].as_str().unwrap().to_string();
        let t0 = u.put("/storage/forms/z", &json!({"payload": "z"})).expect(200).ts_header("X-Last-Modified");
        let r = u.post(&format!("/storage/forms?batch={id}"), &json!([{"id": "b", "payload": "2"}])).expect(202);
        assert_eq!(r.ts_header("X-Last-Modified"), t0);
        let r = commit_batch(&u, "forms", &id, &json!([]));
        let t = r.ts_header("X-Last-Modified");
        assert!(t > t0);
        assert_eq!(json_ts(&r.json()["modified"]), t);
    }

    fn edge_18_newline_and_json_body_edge_forms(b: Backend) {
        let u = seeded_user(shared(b), "forms");
        let nl = |body: &str| u.req("POST", "/storage/forms").body(Some("application/newlines"), body.to_string()).send();
        let before = u.get("/storage/forms").ts_header("X-Last-Modified");
        let r = nl("").expect(200);
        assert_eq!(r.json()["success"], json!([]));
        assert!(r.ts_header("X-Last-Modified") > before);
        for bad in ["\n", "{}", "[]", "{\"id\":\"a\",\"payload\":\"x\"}\n\n{\"id\":\"b\"}"] {
            rejects_unchanged(&u, "forms", 400, Some("8"), || nl(bad));
        }
        u.req("POST", "/storage/forms").body(Some("application/json"), "[]").send().expect(200);
        for bad in ["{}", ""] {
            rejects_unchanged(&u, "forms", 400, Some("8"), || u.req("POST", "/storage/forms").body(Some("application/json"), bad).send());
        }
    }

    fn edge_19_duplicate_ids_reject_the_whole_post(b: Backend) {
        let u = seeded_user(shared(b), "forms");
        rejects_unchanged(&u, "forms", 400, Some("8"), || {
            u.post("/storage/forms", &json!([{"id": "new", "payload": "1"}, {"id": "known-a", "payload": "2"}, {"id": "new", "payload": "3"}]))
        });
        // Contrast: an invalid item only fails itself.
        let v = u.post("/storage/forms", &json!([{"id": "new", "payload": "1"}, {"id": "bad", "ttl": -1}])).expect(200).json();
        assert_eq!(v["success"], json!(["new"]));
    }

    fn edge_20_modified_and_collection_keys_ignored(b: Backend) {
        let u = User::new(shared(b));
        let r = u.post("/storage/forms", &json!([{"id": "a", "payload": "x", "modified": 12.34, "collection": "elsewhere"}, {"id": "b", "payload": "y", "bogus": true}])).expect(200);
        let t = r.ts_header("X-Last-Modified");
        let v = r.json();
        assert_eq!(v["success"], json!(["a"]));
        assert!(v["failed"]["b"].is_string());
        assert_eq!(json_ts(&u.get_json("/storage/forms/a")["modified"]), t);
        assert!(u.get_json("/info/collections").get("elsewhere").is_none());
        u.put("/storage/forms/c", &json!({"payload": "z", "modified": 1.0, "collection": "x"})).expect(200);
        u.put("/storage/forms/d", &json!({"payload": "z", "bogus": 1})).expect_error(400, "8");
    }

    fn edge_21_bad_iv_check_only_in_crypto(b: Backend) {
        let u = seeded_user(shared(b), "crypto");
        let bad = r#"{"IV":"AAAAAAAAAAAAAAAAAAAAAA==","ciphertext":"x"}"#;
        let spaced = r#"{"IV":   "AAAAAAAAAAAAAAAAAAAAAA==","ciphertext":"x"}"#;
        rejects_unchanged(&u, "crypto", 400, Some("8"), || u.post("/storage/crypto", &json!([{"id": "ok", "payload": "fine"}, {"id": "k", "payload": spaced}])));
        u.put("/storage/bookmarks/k", &json!({"payload": bad})).expect(200);
        u.post("/storage/clients", &json!([{"id": "k", "payload": bad}])).expect(200);
        u.put("/storage/crypto/keys", &json!({"payload": r#"{"IV":"AAAAAAAAAAAAAAAAAAAAAB==","ciphertext":"x"}"#})).expect(200);
    }

    fn edge_22_retry_reasons_and_running_byte_sum(b: Backend) {
        // SMALL_LIMITS: 5 records and 1000 payload bytes per POST, 1000 per record.
        let u = User::new(shared_small(b));
        let v = u.post("/storage/history", &json!([
            {"id": "a", "payload": "x".repeat(400)},
            {"id": "b", "payload": "x".repeat(400)},
            {"id": "c", "payload": "x".repeat(300)},
            {"id": "d", "payload": "x"},
            {"id": "e", "payload": "x".repeat(1001)},
        ])).expect(200).json();
        assert_eq!(v["success"], json!(["a", "b"]));
        for id in ["c", "d", "e"] {
            assert_eq!(v["failed"][id], "retry bytes", "{v}");
        }
        let v = u.post("/storage/tabs", &records("r", 7)).expect(200).json();
        assert_eq!(v["success"].as_array().unwrap().len(), 5);
        assert_eq!(v["failed"], json!({"r005": "retry bso", "r006": "retry bso"}));
        assert_eq!(u.get_json("/info/collection_counts"), json!({"history": 2, "tabs": 5}));
    }

    fn edge_23_info_precondition_uses_tombstone(b: Backend) {
        let u = seeded_user(shared(b), "history");
        seed(&u, "forms");
        let t = json_ts(&u.delete("/storage/forms").expect(200).json());
        let info = u.get("/info/collections").expect(200);
        assert_eq!(info.ts_header("X-Last-Modified"), t);
        let remaining = info.json();
        assert!(json_ts(&remaining["history"]) < t, "{remaining}");
        u.req("GET", "/info/collections").header("X-If-Modified-Since", &fmt_ts(t)).send().expect(304);
        u.req("GET", "/info/collections").header("X-If-Modified-Since", &fmt_ts(t - 10)).send().expect(200);
        u.req("GET", "/info/quota").header("X-If-Unmodified-Since", &fmt_ts(t - 10)).send().expect(412);
    }

    fn edge_24_unmodified_since_on_get_guards_paging(b: Backend) {
        let u = User::new(shared(b));
        u.post("/storage/history", &records("r", 6)).expect(200);
        let first = u.get("/storage/history?limit=3&sort=oldest").expect(200);
        let lm = first.must_header("X-Last-Modified");
        let offset = first.must_header("X-Weave-Next-Offset");
        u.put("/storage/history/intruder", &json!({"payload": "x"})).expect(200);
        let r = u.req("GET", &format!("/storage/history?limit=3&sort=oldest&offset={offset}")).header("X-If-Unmodified-Since", &lm).send().expect(412);
        assert_eq!(r.body, "");
        assert!(r.ts_header("X-Last-Modified") > parse_ts(&lm));
    }

    fn edge_25_both_precondition_headers_are_400(b: Backend) {
        let u = seeded_user(shared(b), "history");
        let lm = u.get("/storage/history").must_header("X-Last-Modified");
        let far = fmt_ts(parse_ts(&lm) + 100_000);
        // Either header alone would let the request through; together they are refused.
        rejects_unchanged(&u, "history", 400, Some("0"), || {
            u.req("PUT", "/storage/history/known-a").json(&json!({"payload": "x"}))
                .header("X-If-Unmodified-Since", &far).header("X-If-Modified-Since", "0").send()
        });
        u.req("GET", "/storage/history").header("X-If-Unmodified-Since", &far).header("X-If-Modified-Since", "0").send().expect_error(400, "0");
    }

    fn edge_26_ios_dev_and_current_user_agents_are_served(b: Backend) {
        // The rejection of old iOS clients is optional (§14); never rejecting anything else is not.
        let u = User::new(shared(b));
        for ua in [
            "Firefox-iOS-Sync/dev (iPhone; iPhone OS 16.0) (Firefox)",
            "Firefox-iOS-Sync/0.1b1 (iPhone; iPhone OS 16.0) (Firefox)",
            "Firefox-iOS-Sync/120.0b1 (iPhone; iPhone OS 17.0) (Firefox)",
            "Firefox/153.0 (Linux x86_64) FxSync/1.153.0.desktop",
        ] {
            u.req("GET", "/info/collections").header("User-Agent", ua).send().expect(200);
        }
        let r = u.req("GET", "/info/collections").header("User-Agent", IOS_OLD).send();
        assert!(r.status == 200 || (r.status == 503 && r.body.trim() == "0"), "{}: {} {:?}", r.what, r.status, r.body);
    }

    fn edge_27_uid_in_path_must_match_token(b: Backend) {
        let server = shared(b);
        let u = User::new(server);
        let other = random_uid();
        u.raw("GET", &format!("/1.5/{other}/info/collections")).send().expect_error(400, "0");
        u.raw("DELETE", &format!("/1.5/{other}")).send().expect_error(400, "0");
    }

    fn edge_28_expired_token_only_opens_info_collections(b: Backend) {
        let server = shared(b);
        let owner = seeded_user(server, "history");
        let mut spec = TokenSpec::new(server);
        spec.uid = owner.uid;
        spec.expires = common::hawk::now_secs() - 60;
        let expired = User::with_token(server, &spec);
        assert_eq!(expired.get("/info/collections").expect(200).body, owner.get("/info/collections").body);
        rejects_unchanged(&owner, "history", 401, Some("0"), || expired.delete("/storage"));
        rejects_unchanged(&owner, "history", 401, Some("0"), || expired.post("/storage/history", &json!([])));
        expired.get("/info/configuration");
    }

    fn edge_29_same_tick_writes_never_share_a_timestamp(b: Backend) {
        let u = User::new(shared(b));
        let mut last = 0;
        for i in 0..40 {
            let r = u.put(&format!("/storage/tabs/t{i}"), &json!({"payload": "x"}));
            if r.status == 503 {
                // A genuine conflict must look like REF's.
                assert_eq!(r.must_header("Retry-After"), "10");
                assert_eq!(r.body.trim(), "0");
                continue;
            }
            let t = r.expect(200).ts_header("X-Last-Modified");
            assert!(t > last, "write {i} got {t}, not after {last}");
            last = t;
        }
        let stamps: Vec<i64> = u.get_json("/storage/tabs?full=1").as_array().unwrap().iter().map(|i| json_ts(&i["modified"])).collect();
        let mut unique = stamps.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), stamps.len());
    }

    fn edge_30_timestamps_keep_two_decimals(b: Backend) {
        let u = User::new(shared(b));
        // Write until a T ending in 0 (e.g. `….50`) appears; one in ten does.
        let mut found = false;
        for i in 0..200 {
            let r = u.put(&format!("/storage/tabs/t{i}"), &json!({"payload": "x"})).expect(200);
            let text = r.must_header("X-Last-Modified");
            assert_eq!(r.body.trim(), text);
            if text.ends_with('0') {
                let item = u.get(&format!("/storage/tabs/t{i}")).expect(200);
                assert_eq!(raw_numbers_after(&item.body, "modified"), vec![text.clone()]);
                let info = u.get("/info/collections").expect(200);
                assert_eq!(raw_numbers_after(&info.body, "tabs"), vec![text.clone()]);
                let post = u.post("/storage/forms", &json!([])).expect(200);
                for raw in raw_numbers_after(&post.body, "modified") {
                    assert!(is_two_decimal(&raw), "{raw}");
                }
                found = true;
                break;
            }
        }
        assert!(found, "no timestamp ending in 0 within 200 writes");
    }

    fn edge_31_weave_timestamp_on_every_response(b: Backend) {
        let u = seeded_user(shared(b), "history");
        let lm = u.get("/storage/history").must_header("X-Last-Modified");
        let before = common::hawk::now_secs() * 1000 - 1000;
        let responses = [
            u.req("GET", "/storage/history").header("X-If-Modified-Since", &lm).send().expect(304),
            u.req("GET", "/storage/history").unauthenticated().send().expect(401),
            u.get("/storage/history/missing").expect(404),
            u.req("GET", "/storage/history").header("X-If-Unmodified-Since", "1.00").send().expect(412),
            u.get("/storage/history?limit=x").expect(400),
            u.get("/storage/history").expect(200),
        ];
        for r in responses {
            let ts = r.ts_header("X-Weave-Timestamp");
            assert!(ts >= before, "{}: X-Weave-Timestamp {ts} predates the request", r.what);
            if let Some(lm) = r.header("X-Last-Modified") {
                assert!(ts >= parse_ts(&lm), "{}: X-Weave-Timestamp before X-Last-Modified", r.what);
            }
        }
    }

    fn edge_32_missing_content_type_is_415(b: Backend) {
        let u = seeded_user(shared(b), "history");
        rejects_unchanged(&u, "history", 415, Some("0"), || u.req("PUT", "/storage/history/known-a").body(None, r#"{"payload":"x"}"#).send());
        rejects_unchanged(&u, "history", 415, Some("0"), || u.req("POST", "/storage/history").body(None, r#"[{"id":"a","payload":"x"}]"#).send());
    }

    fn edge_33_payload_size_is_utf8_bytes(b: Backend) {
        // SMALL_LIMITS: 1000 bytes per record. 400 three-byte characters = 1200 bytes.
        let u = seeded_user(shared_small(b), "history");
        let wide = "€".repeat(400);
        rejects_unchanged(&u, "history", 400, Some("8"), || u.put("/storage/history/known-a", &json!({"payload": wide})));
        let v = u.post("/storage/history", &json!([{"id": "w", "payload": wide}])).expect(200).json();
        assert_eq!(v["failed"]["w"], "retry bytes");
        u.put("/storage/history/fits", &json!({"payload": "€".repeat(333)})).expect(200);
        let usage = u.get_json("/info/collection_usage")["history"].as_f64().unwrap();
        let expected = ("alpha".len() + "bravo".len() + "charlié €".len() + 999) as f64 / 1024.0;
        assert!((usage - expected).abs() < 1e-9, "{usage} vs {expected}");
    }

    fn edge_34_negative_values(b: Backend) {
        let u = seeded_user(shared(b), "history");
        u.put("/storage/history/neg", &json!({"payload": "x", "sortindex": -42})).expect(200);
        assert_eq!(u.get_json("/storage/history/neg")["sortindex"], -42);
        for q in ["limit=-1", "newer=-1", "older=-0.5"] {
            rejects_unchanged(&u, "history", 400, Some("0"), || u.get(&format!("/storage/history?{q}")));
        }
        rejects_unchanged(&u, "history", 400, Some("8"), || u.put("/storage/history/known-a", &json!({"ttl": -1})));
        rejects_unchanged(&u, "history", 400, Some("0"), || u.req("GET", "/storage/history").header("X-If-Modified-Since", "-1").send());
    }

    fn edge_35_delete_missing_item_404_missing_ids_200(b: Backend) {
        let u = seeded_user(shared(b), "history");
        rejects_unchanged(&u, "history", 404, Some("0"), || u.delete("/storage/history/missing"));
        u.delete("/storage/history?ids=missing1,missing2").expect(200);
        assert_eq!(u.get_json("/info/collection_counts")["history"], 3);
    }

    fn edge_36_delete_storage_resets_then_fresh_timestamp(b: Backend) {
        let u = seeded_user(shared(b), "history");
        let old = u.get("/info/collections").ts_header("X-Last-Modified");
        u.delete("/storage").expect(200);
        assert_eq!(u.get("/info/collections").must_header("X-Last-Modified"), "0.00");
        assert_eq!(u.get("/storage/history").must_header("X-Last-Modified"), "0.00");
        let t = u.put("/storage/history/again", &json!({"payload": "x"})).expect(200).ts_header("X-Last-Modified");
        assert!(t > old);
        assert_eq!(u.get("/info/collections").ts_header("X-Last-Modified"), t);
        assert_eq!(u.get_json("/info/collection_counts"), json!({"history": 1}));
    }

    fn edge_37_batch_id_verbatim_or_percent_encoded(b: Backend) {
        let u = User::new(shared(b));
        let id = create_batch(&u, "forms", &json!([{"id": "a", "payload": "1"}]));
        let encoded: String = id.bytes().map(|c| if c.is_ascii_alphanumeric() { (c as char).to_string() } else { format!("%{c:02X}") }).collect();
        let v = u.post(&format!("/storage/forms?batch={encoded}"), &json!([{"id": "b", "payload": "2"}])).expect(202).json();
        // The id answered is the decoded one.
        assert_eq!(v["batch"], id.as_str());
        commit_batch(&u, "forms", &encoded, &json!([{"id": "c", "payload": "3"}]));
        assert_eq!(sorted_ids(&u, "forms"), strings(&["a", "b", "c"]));
        let id2 = create_batch(&u, "forms", &json!([{"id": "d", "payload": "4"}]));
        commit_batch(&u, "forms", &id2, &json!([]));
        assert_eq!(sorted_ids(&u, "forms").len(), 4);
    }

    fn edge_38_head_is_not_routed(b: Backend) {
        let u = seeded_user(shared(b), "history");
        assert_eq!(u.req("HEAD", "/storage/history").send().status, 405);
        assert_eq!(u.req("HEAD", "/info/collections").send().status, 405);
    }

    fn edge_39_cors_preflight_everywhere(b: Backend) {
        let u = User::new(shared(b));
        let targets = [u.path("/storage/bookmarks"), u.path("/__heartbeat__"), "/__lbheartbeat__".to_string(), u.path("/info/collections"), "/no/route".to_string()];
        for target in targets {
            for origin in ["https://example.com", "localhost"] {
                let r = u.raw("OPTIONS", &target).unauthenticated()
                    .header("Origin", origin)
                    .header("Access-Control-Request-Method", "POST")
                    .header("Access-Control-Request-Headers", "Authorization, Content-Type")
                    .send().expect(200);
                assert_eq!(r.must_header("Access-Control-Allow-Origin"), origin, "{}", r.what);
                let age: i64 = r.must_header("Access-Control-Max-Age").parse().expect("max-age integer");
                assert!(age > 0);
                let methods = r.must_header("Access-Control-Allow-Methods").to_ascii_uppercase();
                for m in ["GET", "POST", "PUT", "DELETE"] {
                    assert!(methods.contains(m), "{methods}");
                }
            }
        }
        // An actual request with Origin gets the echo and Vary.
        let r = u.req("GET", "/info/collections").header("Origin", "https://example.com").send().expect(200);
        assert_eq!(r.must_header("Access-Control-Allow-Origin"), "https://example.com");
        assert!(r.must_header("Vary").contains("Origin"));
    }

    fn edge_40_write_weave_timestamp_is_exactly_t(b: Backend) {
        let u = User::new(shared(b));
        let checks: Vec<Resp> = vec![
            u.put("/storage/forms/a", &json!({"payload": "1"})).expect(200),
            u.post("/storage/forms", &json!([{"id": "b", "payload": "2"}])).expect(200),
            u.delete("/storage/forms/a").expect(200),
            u.delete("/storage/forms?ids=b").expect(200),
        ];
        for r in checks {
            assert_eq!(r.must_header("X-Weave-Timestamp"), r.must_header("X-Last-Modified"), "{}", r.what);
        }
        let id = create_batch(&u, "forms", &json!([{"id": "c", "payload": "3"}]));
        let r = commit_batch(&u, "forms", &id, &json!([]));
        let t = r.must_header("X-Last-Modified");
        assert_eq!(r.must_header("X-Weave-Timestamp"), t);
        assert_eq!(raw_numbers_after(&u.get("/storage/forms/c").body, "modified"), vec![t]);
    }

    fn edge_41_batch_ids_and_offsets_are_query_safe(b: Backend) {
        let u = User::new(shared(b));
        u.post("/storage/history", &records("r", 30)).expect(200);
        for sort in ["", "&sort=newest", "&sort=oldest", "&sort=index"] {
            for full in ["", "&full=1"] {
                let r = u.get(&format!("/storage/history?limit=7{sort}{full}")).expect(200);
                let token = r.must_header("X-Weave-Next-Offset");
                assert!(is_query_safe(&token) && !token.contains('='), "{token:?}");
            }
        }
        // create_batch asserts the alphabet; many ids (each committed, as a client does) to catch
        // an occasional bad character.
        for _ in 0..20 {
            let id = create_batch(&u, "history", &json!([]));
            commit_batch(&u, "history", &id, &json!([]));
        }
    }

    fn edge_42_empty_batch_create_and_commit(b: Backend) {
        let u = User::new(shared(b));
        let id = create_batch(&u, "forms", &json!([]));
        append_batch(&u, "forms", &id, &json!([{"id": "staged", "payload": "s"}]));
        let r = commit_batch(&u, "forms", &id, &json!([]));
        assert_eq!(r.json()["success"], json!([]));
        assert_eq!(sorted_ids(&u, "forms"), strings(&["staged"]));
        // An empty batch committed empty still creates the collection with T.
        let id = create_batch(&u, "empty", &json!([]));
        let t = commit_batch(&u, "empty", &id, &json!([])).ts_header("X-Last-Modified");
        assert_eq!(json_ts(&u.get_json("/info/collections")["empty"]), t);
    }

    fn edge_43_back_to_back_writes_all_succeed(b: Backend) {
        // With the recommended one internal retry on a same-tick collision, a single client never
        // sees a spurious 503, including commits right after the previous commit.
        let u = User::new(shared(b));
        let mut last = 0;
        for i in 0..25 {
            let id = create_batch(&u, "history", &json!([{"id": format!("s{i}"), "payload": "x"}]));
            let t = commit_batch(&u, "history", &id, &json!([])).ts_header("X-Last-Modified");
            let t2 = u.post("/storage/history", &json!([{"id": format!("p{i}"), "payload": "y"}])).expect(200).ts_header("X-Last-Modified");
            assert!(t > last && t2 > t);
            last = t2;
        }
        assert_eq!(u.get_json("/info/collection_counts")["history"], 50);
    }

    fn edge_44_limits_advertised_with_relationships(b: Backend) {
        let v = User::new(shared(b)).get_json("/info/configuration");
        let n = |k: &str| v[k].as_u64().unwrap_or_else(|| panic!("{k} missing in {v}"));
        assert_eq!(n("max_record_payload_bytes"), n("max_post_bytes"));
        assert!(n("max_request_bytes") >= n("max_post_bytes") + 4096);
        assert!(n("max_total_records") >= n("max_post_records"));
        assert!(n("max_total_bytes") >= n("max_post_bytes"));
        // A full-size record, as a client sizes it from the advertised limits, is accepted.
        let u = User::new(shared(b));
        let payload = "p".repeat(n("max_record_payload_bytes") as usize);
        let v = u.post("/storage/history", &json!([{"id": "big", "payload": payload}])).expect(200).json();
        assert_eq!(v["success"], json!(["big"]));
        u.put("/storage/history/big2", &json!({"payload": payload})).expect(200);
    }
}
