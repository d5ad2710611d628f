//! Reading collections and items (storage-api.md §3.1 output form, §6.7, §6.11): missing
//! collections, ids vs full output, BSO key order and two-decimal timestamps, `ids`/`newer`/
//! `older` filters, the three sort orders with their tie-breakers, `limit`/`offset` paging
//! (including many items sharing one timestamp), X-Weave-Records, application/newlines output
//! and Accept negotiation (406), ignored query components, and conditional GETs.

#[macro_use]
mod common;

use common::*;
use serde_json::{json, Value};

/// Two POSTs: `a*` items share T1, `b*` items share T2 > T1; sortindexes collide on purpose.
fn two_generations(u: &User, coll: &str) -> (i64, i64) {
    let t1 = u
        .post(
            &format!("/storage/{coll}"),
            &json!([
                {"id": "a1", "payload": "p", "sortindex": 10},
                {"id": "a3", "payload": "p", "sortindex": 10},
                {"id": "a2", "payload": "p"},
            ]),
        )
        .expect(200)
        .ts_header("X-Last-Modified");
    let t2 = u
        .post(
            &format!("/storage/{coll}"),
            &json!([
                {"id": "b2", "payload": "p", "sortindex": 10},
                {"id": "b1", "payload": "p", "sortindex": 20},
                {"id": "b3", "payload": "p", "sortindex": -5},
            ]),
        )
        .expect(200)
        .ts_header("X-Last-Modified");
    assert!(t2 > t1);
    (t1, t2)
}

fn strings(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

backend_tests! {
    fn missing_collection_reads_as_empty_list(b: Backend) {
        let u = User::new(shared(b));
        let r = u.get("/storage/bookmarks").expect(200);
        assert_eq!(r.json(), json!([]));
        assert_eq!(r.must_header("X-Last-Modified"), "0.00");
        assert_eq!(r.must_header("X-Weave-Records"), "0");
        assert_eq!(u.get_json("/storage/bookmarks?full=1"), json!([]));
    }

    fn ids_by_default_full_objects_with_any_full_value(b: Backend) {
        let u = seeded_user(shared(b), "bookmarks");
        let ids = u.get_json("/storage/bookmarks");
        assert!(ids.as_array().unwrap().iter().all(Value::is_string), "{ids}");
        assert_eq!(ids.as_array().unwrap().len(), 3);
        for q in ["?full", "?full=", "?full=1", "?full=true", "?full=0"] {
            let v = u.get_json(&format!("/storage/bookmarks{q}"));
            assert!(v.as_array().unwrap().iter().all(Value::is_object), "{q}: {v}");
            assert_eq!(v.as_array().unwrap().len(), 3);
        }
    }

    fn bso_output_shape_and_key_order(b: Backend) {
        let u = User::new(shared(b));
        let t = u.post("/storage/bookmarks", &json!([
            {"id": "with", "payload": "p1", "sortindex": 140, "ttl": 3600},
            {"id": "without", "payload": "p2"},
        ])).expect(200).ts_header("X-Last-Modified");
        let r = u.get("/storage/bookmarks/with").expect(200);
        assert_eq!(r.ts_header("X-Last-Modified"), t);
        let text = &r.body;
        let pos = |k: &str| text.find(&format!("\"{k}\"")).unwrap_or_else(|| panic!("{k} missing in {text}"));
        assert!(pos("id") < pos("modified") && pos("modified") < pos("payload") && pos("payload") < pos("sortindex"), "{text}");
        assert!(!text.contains("ttl"), "ttl is write-only: {text}");
        assert_eq!(raw_numbers_after(text, "modified"), vec![fmt_ts(t)]);
        assert_eq!(r.json(), json!({"id": "with", "modified": r.json()["modified"], "payload": "p1", "sortindex": 140}));
        let without = u.get_json("/storage/bookmarks/without");
        assert!(without.get("sortindex").is_none(), "{without}");
        assert_eq!(without.as_object().unwrap().len(), 3);
        let full = u.get("/storage/bookmarks?full=1").expect(200);
        for raw in raw_numbers_after(&full.body, "modified") {
            assert_eq!(raw, fmt_ts(t), "{}", full.body);
        }
    }

    fn single_item_reads(b: Backend) {
        let u = seeded_user(shared(b), "bookmarks");
        let item = u.get_json("/storage/bookmarks/known-c");
        assert_eq!(item["payload"], "charlié €");
        assert_eq!(item["sortindex"], -3);
        u.get("/storage/bookmarks/nope").expect_error(404, "0");
        u.get("/storage/nocollection/known-a").expect_error(404, "0");
        // Only the collection route negotiates; an item is always JSON.
        let r = u.req("GET", "/storage/bookmarks/known-a").header("Accept", "application/newlines").send().expect(200);
        assert!(r.must_header("Content-Type").starts_with("application/json"));
        assert_eq!(r.json()["id"], "known-a");
    }

    fn ids_filter_trims_drops_empties_and_ignores_missing(b: Backend) {
        let u = seeded_user(shared(b), "bookmarks");
        let got = ids_of(&u.get_json("/storage/bookmarks?ids=known-a,%20known-c%20,,missing,&sort=oldest"));
        let mut sorted = got.clone();
        sorted.sort();
        assert_eq!(sorted, strings(&["known-a", "known-c"]));
        let encoded = ids_of(&u.get_json("/storage/bookmarks?ids=known-a%2Cknown-b"));
        assert_eq!(encoded.len(), 2);
        let hundred: Vec<String> = (0..99).map(|i| format!("x{i}")).chain(["known-b".to_string()]).collect();
        let v = u.get_json(&format!("/storage/bookmarks?ids={}", hundred.join(",")));
        assert_eq!(ids_of(&v), strings(&["known-b"]));
    }

    fn newer_and_older_are_strict(b: Backend) {
        let u = User::new(shared(b));
        let (t1, t2) = two_generations(&u, "history");
        let ids = |q: &str| {
            let mut v = ids_of(&u.get_json(&format!("/storage/history?{q}")));
            v.sort();
            v
        };
        assert_eq!(ids(&format!("newer={}", fmt_ts(t1))), strings(&["b1", "b2", "b3"]));
        assert_eq!(ids(&format!("older={}", fmt_ts(t2))), strings(&["a1", "a2", "a3"]));
        assert!(ids(&format!("newer={}", fmt_ts(t2))).is_empty());
        assert!(ids(&format!("older={}", fmt_ts(t1))).is_empty());
        assert_eq!(ids(&format!("newer={}&older={}", fmt_ts(t1 - 10), fmt_ts(t2))), strings(&["a1", "a2", "a3"]));
        // The shortest float spelling of a server timestamp maps back to the same tick (§4.5).
        let short = fmt_ts(t1).trim_end_matches('0').trim_end_matches('.').to_string();
        assert_eq!(ids(&format!("newer={short}")), strings(&["b1", "b2", "b3"]));
        assert_eq!(ids("newer=0"), ids(""));
    }

    fn sort_orders_are_total_with_id_tie_breakers(b: Backend) {
        let u = User::new(shared(b));
        two_generations(&u, "history");
        let read = |q: &str| ids_of(&u.get_json(&format!("/storage/history?{q}")));
        let newest = strings(&["b3", "b2", "b1", "a3", "a2", "a1"]);
        let oldest = strings(&["a1", "a2", "a3", "b1", "b2", "b3"]);
        // sortindex DESC, id DESC, NULL last.
        let index = strings(&["b1", "b2", "a3", "a1", "b3", "a2"]);
        for full in ["", "&full=1"] {
            assert_eq!(read(&format!("sort=newest{full}")), newest);
            assert_eq!(read(&format!("sort=oldest{full}")), oldest);
            assert_eq!(read(&format!("sort=index{full}")), index);
            // Default order is newest, for ids-only and full reads alike.
            assert_eq!(read(full.trim_start_matches('&')), newest);
        }
    }

    fn paging_with_equal_timestamps_matches_unlimited_read(b: Backend) {
        let u = User::new(shared(b));
        // One POST: all 23 items share one `modified`; sortindexes repeat to force ties.
        let body: Vec<Value> = (0..23)
            .map(|i| json!({"id": format!("r{:02}", (i * 7) % 23), "payload": "p", "sortindex": i % 4}))
            .collect();
        u.post("/storage/history", &Value::Array(body)).expect(200);
        for sort in ["sort=newest", "sort=oldest", "sort=index", ""] {
            for full in ["", "full=1"] {
                let q = [sort, full].iter().filter(|s| !s.is_empty()).cloned().collect::<Vec<_>>().join("&");
                let all = u.get_json(&format!("/storage/history?{q}"));
                let all = all.as_array().unwrap().clone();
                assert_eq!(all.len(), 23);
                for limit in [1, 4, 10, 23] {
                    let (paged, pages) = read_paged(&u, "history", &q, limit, 30);
                    assert_eq!(ids_of(&Value::Array(paged)), ids_of(&Value::Array(all.clone())), "{q} limit={limit}");
                    assert_eq!(pages, 23usize.div_ceil(limit).max(1), "{q} limit={limit}: pages");
                }
            }
        }
    }

    fn paging_across_timestamps_and_with_newer(b: Backend) {
        let u = User::new(shared(b));
        let mut stamps = vec![];
        for gen in 0..4 {
            let r = u.post("/storage/history", &records(&format!("g{gen}-"), 5)).expect(200);
            stamps.push(r.ts_header("X-Last-Modified"));
        }
        for q in ["sort=newest".to_string(), "sort=oldest".to_string(), format!("sort=oldest&newer={}", fmt_ts(stamps[0])), format!("sort=newest&older={}", fmt_ts(stamps[3]))] {
            let all = ids_of(&u.get_json(&format!("/storage/history?{q}")));
            for limit in [2, 3, 5, 7] {
                let (paged, _) = read_paged(&u, "history", &q, limit, 30);
                assert_eq!(ids_of(&Value::Array(paged)), all, "{q} limit={limit}");
            }
        }
    }

    fn percent_encoded_offset_token_is_accepted(b: Backend) {
        let u = User::new(shared(b));
        u.post("/storage/history", &records("r", 6)).expect(200);
        let first = u.get("/storage/history?sort=oldest&limit=2").expect(200);
        let token = first.must_header("X-Weave-Next-Offset");
        let encoded: String = token.bytes().map(|c| format!("%{c:02X}")).collect();
        let verbatim = u.get_json(&format!("/storage/history?sort=oldest&limit=2&offset={token}"));
        let decoded = u.get_json(&format!("/storage/history?sort=oldest&limit=2&offset={encoded}"));
        assert_eq!(verbatim, decoded);
        assert_eq!(ids_of(&verbatim), strings(&["r002", "r003"]));
    }

    fn limit_zero_returns_nothing(b: Backend) {
        let u = seeded_user(shared(b), "bookmarks");
        let r = u.get("/storage/bookmarks?limit=0").expect(200);
        assert_eq!(r.json(), json!([]));
        assert_eq!(r.must_header("X-Weave-Records"), "0");
    }

    fn limit_larger_than_collection_has_no_next_offset(b: Backend) {
        let u = seeded_user(shared(b), "bookmarks");
        let r = u.get("/storage/bookmarks?limit=3").expect(200);
        assert_eq!(r.json().as_array().unwrap().len(), 3);
        assert!(r.header("X-Weave-Next-Offset").is_none());
        let r = u.get("/storage/bookmarks?limit=2").expect(200);
        assert_eq!(r.must_header("X-Weave-Records"), "2");
        assert!(r.header("X-Weave-Next-Offset").is_some());
    }

    fn newlines_output_one_json_text_per_line(b: Backend) {
        let u = seeded_user(shared(b), "bookmarks");
        let json_ids = u.get_json("/storage/bookmarks?full=1");
        let r = u.req("GET", "/storage/bookmarks?full=1").header("Accept", "application/newlines").send().expect(200);
        assert!(r.must_header("Content-Type").starts_with("application/newlines"));
        assert_eq!(r.must_header("X-Weave-Records"), "3");
        assert!(r.body.ends_with('\n'), "{:?}", r.body);
        let lines: Vec<Value> = r.body.trim_end_matches('\n').split('\n').map(|l| serde_json::from_str(l).expect("JSON line")).collect();
        assert_eq!(Value::Array(lines), json_ids);
        let ids = u.req("GET", "/storage/bookmarks").header("Accept", "application/newlines").send().expect(200);
        assert_eq!(ids.body.lines().count(), 3);
        assert!(ids.body.lines().all(|l| l.starts_with('"')), "{:?}", ids.body);
        // An empty collection in newlines form is an empty body.
        let empty = u.req("GET", "/storage/empty").header("Accept", "application/newlines").send().expect(200);
        assert_eq!(empty.body, "");
    }

    fn accept_negotiation(b: Backend) {
        let u = seeded_user(shared(b), "bookmarks");
        let kind = |accept: &str| {
            let r = u.req("GET", "/storage/bookmarks").header("Accept", accept).send().expect(200);
            r.must_header("Content-Type")
        };
        assert!(kind("*/*").starts_with("application/json"));
        assert!(kind("application/json").starts_with("application/json"));
        assert!(kind("application/newlines").starts_with("application/newlines"));
        assert!(kind("application/newlines;q=0.5, application/json").starts_with("application/json"));
        assert!(kind("application/json;q=0.1, application/newlines").starts_with("application/newlines"));
        assert!(kind("text/html, */*;q=0.1").starts_with("application/json"));
        u.req("GET", "/storage/bookmarks").header("Accept", "x/yy").send().expect_error(406, "0");
        u.req("GET", "/storage/bookmarks").header("Accept", "text/html, image/png").send().expect_error(406, "0");
    }

    fn unknown_and_empty_query_components_are_ignored(b: Backend) {
        let u = seeded_user(shared(b), "bookmarks");
        let base = u.get("/storage/bookmarks?sort=oldest&limit=2").expect(200).body;
        for q in ["?&sort=oldest&limit=2", "?sort=oldest&limit=2&", "?sort=oldest&&limit=2&whatever=1&v=9"] {
            assert_eq!(u.get(&format!("/storage/bookmarks{q}")).expect(200).body, base, "{q}");
        }
        let all = u.get("/storage/bookmarks").expect(200).body;
        assert_eq!(u.get("/storage/bookmarks?").expect(200).body, all);
    }

    fn conditional_get_on_collection_and_item(b: Backend) {
        let u = User::new(shared(b));
        let t1 = u.put("/storage/bookmarks/a", &json!({"payload": "1"})).expect(200).ts_header("X-Last-Modified");
        let t2 = u.put("/storage/bookmarks/b", &json!({"payload": "2"})).expect(200).ts_header("X-Last-Modified");
        let r = u.req("GET", "/storage/bookmarks").header("X-If-Modified-Since", &fmt_ts(t2)).send().expect(304);
        assert_eq!(r.body, "");
        assert_eq!(r.ts_header("X-Last-Modified"), t2);
        u.req("GET", "/storage/bookmarks").header("X-If-Modified-Since", &fmt_ts(t1)).send().expect(200);
        // Item-level resources compare the item's own timestamp.
        let r = u.req("GET", "/storage/bookmarks/a").header("X-If-Modified-Since", &fmt_ts(t1)).send().expect(304);
        assert_eq!(r.ts_header("X-Last-Modified"), t1);
        u.req("GET", "/storage/bookmarks/a").header("X-If-Unmodified-Since", &fmt_ts(t1)).send().expect(200);
        u.req("GET", "/storage/bookmarks").header("X-If-Unmodified-Since", &fmt_ts(t1)).send().expect(412);
        // A missing collection has timestamp 0.
        u.req("GET", "/storage/none").header("X-If-Modified-Since", "0").send().expect(304);
    }

    fn collection_names_are_case_sensitive_and_any_valid_name_works(b: Backend) {
        let u = User::new(shared(b));
        u.put("/storage/Bookmarks/x", &json!({"payload": "upper"})).expect(200);
        u.put("/storage/extension-storage/x", &json!({"payload": "ext"})).expect(200);
        let long = "a.b_c-D".repeat(4) + "1234";
        assert_eq!(long.len(), 32);
        u.put(&format!("/storage/{long}/x"), &json!({"payload": "long"})).expect(200);
        assert_eq!(u.get_json("/storage/bookmarks"), json!([]));
        assert_eq!(u.get_json("/storage/Bookmarks/x")["payload"], "upper");
        let info = u.get_json("/info/collections");
        assert_eq!(info.as_object().unwrap().len(), 3, "{info}");
    }
}
