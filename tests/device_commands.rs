//! Send Tab on local accounts (issue 25): FxA's device-command protocol over real HTTP with
//! real Hawk, on SQLite, MariaDB and PostgreSQL. A device leaves a command for another device
//! of its account; the target fetches it with FxA's shapes, its payload exactly as sent and
//! stored as sent (ciphertext the server never reads); commands expire and go with their
//! device; another account's device, an unregistered command and an oversize payload are
//! refused and change nothing; the per-account limit holds.

#[macro_use]
mod common;

use common::accounts::*;
use serde_json::{json, Value};

const SEND_TAB: &str = "https://identity.mozilla.com/cmd/open-uri";

/// A signed-in device: its session token and the device id it registered.
struct Device {
    session: String,
    id: String,
}

fn sign_in(a: &Accounts, email: &str, password: &str, name: &str, commands: Value) -> Device {
    let login = a.login(email, password);
    assert_eq!(login.status, 200, "{}", login.body);
    let session = login.body["sessionToken"].as_str().unwrap().to_string();
    let body = json!({"name": name, "type": "desktop", "availableCommands": commands});
    let device = a.signed("POST", "/v1/account/device", &session, "sessionToken", Some(&body));
    assert_eq!(device.status, 200, "{}", device.body);
    Device { session, id: device.body["id"].as_str().unwrap().to_string() }
}

fn account(a: &Accounts, email: &str, password: &str) {
    let created = a.create(email, password, &a.invite(&[]));
    assert_eq!(created.status, 200, "{}", created.body);
}

/// What Firefox's Send Tab sends: `{encrypted}`, a JWE for the target's keys.
fn tab_payload(marker: &str) -> Value {
    json!({"encrypted": format!("eyJhbGciOiJSU0EtT0FFUC0yNTYifQ.{marker}.ciphertext-{marker}.tag")})
}

fn invoke(
    a: &Accounts,
    from: &Device,
    target: &str,
    command: &str,
    payload: &Value,
    ttl: Option<i64>,
) -> Answer {
    let mut body = json!({"target": target, "command": command, "payload": payload});
    if let Some(ttl) = ttl {
        body["ttl"] = json!(ttl);
    }
    a.signed("POST", "/v1/account/devices/invoke_command", &from.session, "sessionToken", Some(&body))
}

fn fetch(a: &Accounts, device: &Device, query: &str) -> Answer {
    let answer = a.signed(
        "GET",
        &format!("/v1/account/device/commands{query}"),
        &device.session,
        "sessionToken",
        None,
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer
}

fn stored(a: &Accounts, device: &Device) -> i64 {
    a.server
        .query_i64(&format!("SELECT COUNT(*) FROM account_device_commands WHERE device_id = '{}'", device.id))
}

backend_tests! {
    fn a_tab_goes_from_one_device_to_another(b: Backend) {
        let a = Accounts::start(b, &[]);
        let (email, password) = ("alice@example.org", "alice's password");
        account(&a, email, password);
        let send_tab = json!({SEND_TAB: "{\"kid\":\"k\",\"keys\":\"opaque\"}"});
        let laptop = sign_in(&a, email, password, "Laptop", send_tab.clone());
        let phone = sign_in(&a, email, password, "Desktop at home", send_tab);

        // The device list Firefox builds its menu from, with FxA's members.
        let list = a.signed("GET", "/v1/account/devices", &laptop.session, "sessionToken", None);
        let devices = list.body.as_array().unwrap();
        assert_eq!(devices.len(), 2, "{}", list.body);
        let other = devices.iter().find(|d| d["id"] == phone.id.as_str()).unwrap();
        assert_eq!(other["isCurrentDevice"], false);
        assert_eq!(other["pushEndpointExpired"], false);
        assert!(other["lastAccessTime"].as_i64().is_some_and(|t| t > 1_600_000_000_000), "{other}");
        assert!(other["availableCommands"][SEND_TAB].is_string(), "{other}");

        // Nothing waits yet.
        let empty = fetch(&a, &phone, "?index=0");
        assert_eq!((empty.body["last"].as_bool(), empty.body["messages"].as_array().map(Vec::len)), (Some(true), Some(0)));

        let payload = tab_payload("first");
        let sent = invoke(&a, &laptop, &phone.id, SEND_TAB, &payload, None);
        assert_eq!(sent.status, 200, "{}", sent.body);
        assert_eq!(sent.body["enqueued"], true);

        let got = fetch(&a, &phone, "?index=0&limit=100");
        let messages = got.body["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 1, "{}", got.body);
        let index = messages[0]["index"].as_i64().unwrap();
        assert_eq!(got.body["index"].as_i64(), Some(index));
        assert_eq!(got.body["last"], true);
        assert_eq!(messages[0]["data"], json!({"command": SEND_TAB, "payload": payload, "sender": laptop.id}));
        // Stored as sent: the server keeps the sender's ciphertext, nothing else of the tab.
        let row = a.server.query_sql(&format!("SELECT payload FROM account_device_commands WHERE device_id = '{}'", phone.id));
        assert_eq!(serde_json::from_str::<Value>(&row).unwrap(), payload);
        // The sender has nothing waiting; the target has nothing after the index it handled.
        assert_eq!(fetch(&a, &laptop, "").body["messages"], json!([]));
        assert_eq!(fetch(&a, &phone, &format!("?index={}", index + 1)).body["messages"], json!([]));

        // Indexes increase; `limit` pages with `last`.
        for marker in ["second", "third", "fourth"] {
            assert_eq!(invoke(&a, &laptop, &phone.id, SEND_TAB, &tab_payload(marker), Some(3600)).status, 200);
        }
        let page = fetch(&a, &phone, &format!("?index={}&limit=2", index + 1));
        let page_messages = page.body["messages"].as_array().unwrap();
        assert_eq!((page_messages.len(), page.body["last"].as_bool()), (2, Some(false)), "{}", page.body);
        assert_eq!(page_messages[0]["data"]["payload"], tab_payload("second"));
        let next = page.body["index"].as_i64().unwrap();
        assert!(next > index && page_messages[0]["index"].as_i64().unwrap() > index);
        let rest = fetch(&a, &phone, &format!("?index={}", next + 1));
        assert_eq!(rest.body["messages"].as_array().map(Vec::len), Some(1), "{}", rest.body);
        assert_eq!((rest.body["last"].as_bool(), &rest.body["messages"][0]["data"]["payload"]), (Some(true), &tab_payload("fourth")));

        // A command expires after its ttl (seconds).
        assert_eq!(invoke(&a, &laptop, &phone.id, SEND_TAB, &tab_payload("short"), Some(1)).status, 200);
        std::thread::sleep(std::time::Duration::from_millis(1200));
        let after = fetch(&a, &phone, "?index=0");
        assert_eq!(after.body["messages"].as_array().map(Vec::len), Some(4), "the expired one is not served: {}", after.body);

        // `notify` is accepted as FxA accepts it.
        let notify = json!({"to": "all", "excluded": [laptop.id], "payload": {"version": 1, "command": "sync:collection_changed", "data": {"collections": ["tabs"]}}, "TTL": 0});
        let answer = a.signed("POST", "/v1/account/devices/notify", &laptop.session, "sessionToken", Some(&notify));
        assert_eq!((answer.status, &answer.body), (200, &json!({})));
        refused(&a.signed("POST", "/v1/account/devices/notify", &laptop.session, "sessionToken", Some(&json!({"payload": {}}))), 400, 107);

        // The commands go with their device: the target signs out.
        assert!(stored(&a, &phone) >= 4);
        assert_eq!(a.signed("POST", "/v1/session/destroy", &phone.session, "sessionToken", Some(&json!({}))).status, 200);
        assert_eq!(stored(&a, &phone), 0, "a signed-out device's commands are deleted");
    }

    fn refused_commands_change_nothing(b: Backend) {
        let a = Accounts::start(b, &[("WEFT_ACCOUNTS_RATE_LIMIT_PER_SESSION", "1000")]);
        let password = "a shared password";
        account(&a, "carol@example.org", password);
        account(&a, "mallory@example.org", password);
        let send_tab = json!({SEND_TAB: "keys"});
        let carol = sign_in(&a, "carol@example.org", password, "Carol's laptop", send_tab.clone());
        let carol_phone = sign_in(&a, "carol@example.org", password, "Carol's phone", send_tab.clone());
        let no_commands = sign_in(&a, "carol@example.org", password, "Old Firefox", json!({}));
        let mallory = sign_in(&a, "mallory@example.org", password, "Mallory", send_tab);
        let payload = tab_payload("secret");

        // Another account's device is unknown to the caller, both ways.
        refused(&invoke(&a, &mallory, &carol_phone.id, SEND_TAB, &payload, None), 400, 123);
        refused(&invoke(&a, &carol, &mallory.id, SEND_TAB, &payload, None), 400, 123);
        refused(&invoke(&a, &carol, "0123456789abcdef0123456789abcdef", SEND_TAB, &payload, None), 400, 123);
        // Only a command the target registered.
        refused(&invoke(&a, &carol, &no_commands.id, SEND_TAB, &payload, None), 400, 157);
        refused(&invoke(&a, &carol, &carol_phone.id, "https://identity.mozilla.com/cmd/close-uri/v1", &payload, None), 400, 157);
        // A bounded payload, an object, a non-negative ttl.
        let big = json!({"encrypted": "A".repeat(33 * 1024)});
        refused(&invoke(&a, &carol, &carol_phone.id, SEND_TAB, &big, None), 400, 107);
        refused(&invoke(&a, &carol, &carol_phone.id, SEND_TAB, &json!("a string"), None), 400, 107);
        refused(&invoke(&a, &carol, &carol_phone.id, SEND_TAB, &payload, Some(-1)), 400, 107);
        // Without a device of its own, a session has no commands to fetch.
        let bare = a.login("carol@example.org", password).body["sessionToken"].as_str().unwrap().to_string();
        refused(&a.signed("GET", "/v1/account/device/commands", &bare, "sessionToken", None), 400, 123);
        for device in [&carol, &carol_phone, &no_commands, &mallory] {
            assert_eq!(stored(&a, device), 0, "a refused command stores nothing");
        }
        assert_eq!(fetch(&a, &carol_phone, "").body["messages"], json!([]));

        // The per-account limit: 100 commands per window, then 429 + Retry-After, for every
        // device of the account; another account is not affected.
        for i in 0..100 {
            let answer = invoke(&a, &carol, &carol_phone.id, SEND_TAB, &tab_payload(&i.to_string()), None);
            assert_eq!(answer.status, 200, "command {i}: {}", answer.body);
        }
        let limited = invoke(&a, &carol_phone, &carol.id, SEND_TAB, &payload, None);
        refused(&limited, 429, 114);
        assert!(limited.retry_after.is_some());
        assert_eq!(stored(&a, &carol), 0);
        assert_eq!(stored(&a, &carol_phone), 100);
        let mallory_phone = sign_in(&a, "mallory@example.org", password, "Mallory's phone", json!({SEND_TAB: "keys"}));
        assert_eq!(invoke(&a, &mallory, &mallory_phone.id, SEND_TAB, &payload, None).status, 200);

        // Deleting the account deletes what waits for its devices.
        a.admin(&["delete", "carol@example.org"]);
        assert_eq!(stored(&a, &carol_phone), 0);
    }
}
