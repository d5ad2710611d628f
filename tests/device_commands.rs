//! Send Tab on local accounts (issue 25): FxA's device-command protocol over real HTTP with
//! real Hawk, on SQLite, MariaDB and PostgreSQL. A device leaves a command for another device
//! of its account; the target fetches it with FxA's shapes, its payload exactly as sent and
//! stored as sent (ciphertext the server never reads); commands expire and go with their
//! device; another account's device, an unregistered command and an oversize payload are
//! refused and change nothing; the per-account limit holds. With a push subscription, the
//! target gets FxA's push from a push service on a loopback port, which the test decrypts with
//! the device's own keys; a slow push service or an expired subscription loses no command, and
//! an endpoint the server may not contact is never contacted.

#[macro_use]
mod common;

use common::accounts::*;
use common::push_service::{PushKeys, PushService};
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

/// A device subscribed to `push` at `endpoint` (a path), as Firefox registers one with push on.
fn sign_in_with_push(
    a: &Accounts,
    email: &str,
    password: &str,
    name: &str,
    push: &PushService,
    endpoint: &str,
) -> (Device, PushKeys) {
    let device = sign_in(a, email, password, name, json!({SEND_TAB: "keys"}));
    let keys = PushKeys::generate();
    subscribe(a, &device, &format!("{}{endpoint}", push.url), &keys);
    (device, keys)
}

fn subscribe(a: &Accounts, device: &Device, callback: &str, keys: &PushKeys) {
    let body = json!({"id": device.id, "pushCallback": callback, "pushPublicKey": keys.public_key(), "pushAuthKey": keys.auth_key()});
    let answer = a.signed("POST", "/v1/account/device", &device.session, "sessionToken", Some(&body));
    assert_eq!(answer.status, 200, "{}", answer.body);
}

/// `weft_accounts_push_total{outcome}` from the server's `/metrics`.
fn pushes(a: &Accounts, outcome: &str) -> i64 {
    let url = a
        .server
        .log_tail()
        .lines()
        .find_map(|l| l.strip_prefix("weft: metrics on ").map(str::to_string))
        .expect("the server was started with metrics");
    let text = a.http.get(url).send().and_then(|r| r.text()).expect("scrape /metrics");
    let series = format!("weft_accounts_push_total{{outcome=\"{outcome}\"}} ");
    text.lines().find_map(|l| l.strip_prefix(&series)).map_or(0, |v| v.trim().parse().expect("a count"))
}

fn device_listed(a: &Accounts, by: &Device, id: &str) -> Value {
    let list = a.signed("GET", "/v1/account/devices", &by.session, "sessionToken", None);
    list.body
        .as_array()
        .and_then(|l| l.iter().find(|d| d["id"] == id))
        .cloned()
        .expect("the device is listed")
}

const METRICS: [(&str, &str); 2] = [("WEFT_METRICS_ENABLED", "true"), ("WEFT_METRICS_LISTEN", "127.0.0.1:0")];

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

    fn a_sent_tab_is_pushed_and_never_lost_to_push(b: Backend) {
        let push = PushService::start();
        let mut env = vec![("WEFT_ACCOUNTS_PUSH_ALLOW_LOOPBACK", "true"), ("WEFT_ACCOUNTS_PUSH_TIMEOUT_SECONDS", "1")];
        env.extend(METRICS);
        let a = Accounts::start(b, &env);
        let (email, password) = ("dana@example.org", "dana's password");
        account(&a, email, password);
        let laptop = sign_in(&a, email, password, "Laptop", json!({SEND_TAB: "keys"}));
        let (phone, phone_keys) = sign_in_with_push(&a, email, password, "Phone", &push, "/ok/phone");

        // The send is answered once stored; the push follows: FxA's command_received, for the
        // phone's keys only, naming the index to fetch from.
        let payload = tab_payload("pushed");
        let sent = invoke(&a, &laptop, &phone.id, SEND_TAB, &payload, None);
        assert_eq!((sent.status, &sent.body), (200, &json!({"enqueued": true, "notified": true})));
        let received = push.wait_for("/ok/phone", 1);
        assert_eq!(received[0].header("content-encoding"), Some("aes128gcm"));
        // No ttl sent (as Firefox): the command's 28 days.
        assert_eq!(received[0].header("ttl"), Some("2419200"));
        let message = phone_keys.decrypt(&received[0]);
        let stored = fetch(&a, &phone, "?index=0");
        let index = stored.body["messages"][0]["index"].as_i64().expect("the stored command");
        let url = format!("{ORIGIN}/v1/account/device/commands?index={index}&limit=1");
        assert_eq!(
            message,
            json!({"version": 1, "command": "fxaccounts:command_received",
                   "data": {"command": SEND_TAB, "index": index, "sender": laptop.id, "url": url}})
        );
        // What the push names is what Firefox then fetches.
        let named = fetch(&a, &phone, &format!("?index={index}&limit=1"));
        assert_eq!(named.body["messages"][0]["data"]["payload"], payload);
        assert!(std::str::from_utf8(&received[0].body).map_or(true, |text| !text.contains("pushed")));

        // `devices/notify` pushes the caller's payload to the devices it names, with its TTL.
        let collection_changed = json!({"version": 1, "command": "sync:collection_changed", "data": {"collections": ["tabs"]}});
        let notify = json!({"to": "all", "excluded": [laptop.id], "payload": collection_changed, "TTL": 0});
        let answer = a.signed("POST", "/v1/account/devices/notify", &laptop.session, "sessionToken", Some(&notify));
        assert_eq!((answer.status, &answer.body), (200, &json!({})));
        let received = push.wait_for("/ok/phone", 2);
        assert_eq!(received[1].header("ttl"), Some("0"));
        assert_eq!(phone_keys.decrypt(&received[1]), collection_changed);
        let too_big = json!({"to": [phone.id], "payload": {"command": "x", "data": "A".repeat(4000)}});
        refused(&a.signed("POST", "/v1/account/devices/notify", &laptop.session, "sessionToken", Some(&too_big)), 400, 107);

        // A push service that never answers: the send is answered all the same, the push times
        // out, and the command waits for the device's poll.
        let (tablet, _) = sign_in_with_push(&a, email, password, "Tablet", &push, "/slow/tablet");
        let sent = invoke(&a, &laptop, &tablet.id, SEND_TAB, &tab_payload("slow"), None);
        assert_eq!((sent.status, &sent.body["enqueued"]), (200, &json!(true)));
        assert_eq!(fetch(&a, &tablet, "?index=0").body["messages"][0]["data"]["payload"], tab_payload("slow"));
        push.wait_for("/slow/tablet", 1);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while pushes(&a, "timeout") < 1 {
            assert!(std::time::Instant::now() < deadline, "the slow push never timed out");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }

        // A push service saying the subscription is gone (410): the device is listed with
        // `pushEndpointExpired` (Firefox then subscribes again and polls); its command stays.
        let (desktop, desktop_keys) = sign_in_with_push(&a, email, password, "Desktop", &push, "/gone/desktop");
        assert_eq!(device_listed(&a, &laptop, &desktop.id)["pushEndpointExpired"], false);
        assert_eq!(invoke(&a, &laptop, &desktop.id, SEND_TAB, &tab_payload("gone"), None).status, 200);
        push.wait_for("/gone/desktop", 1);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while device_listed(&a, &laptop, &desktop.id)["pushEndpointExpired"] != true {
            assert!(std::time::Instant::now() < deadline, "the expired endpoint was never marked");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert_eq!(fetch(&a, &desktop, "?index=0").body["messages"][0]["data"]["payload"], tab_payload("gone"));
        // An expired subscription is not pushed to again; a new one is.
        assert_eq!(invoke(&a, &laptop, &desktop.id, SEND_TAB, &tab_payload("again"), None).body["notified"], false);
        subscribe(&a, &desktop, &format!("{}/ok/desktop", push.url), &desktop_keys);
        assert_eq!(device_listed(&a, &laptop, &desktop.id)["pushEndpointExpired"], false);
        assert_eq!(invoke(&a, &laptop, &desktop.id, SEND_TAB, &tab_payload("renewed"), None).body["notified"], true);
        assert_eq!(desktop_keys.decrypt(&push.wait_for("/ok/desktop", 1)[0])["command"], "fxaccounts:command_received");
        assert_eq!(push.received("/gone/desktop").len(), 1);
        assert_eq!((pushes(&a, "expired"), pushes(&a, "refused")), (1, 0));
    }
}

/// The pushCallback is the client's: with the default settings the server contacts no endpoint
/// but Mozilla's push service, so a client cannot aim it at loopback, the local network or a
/// metadata address. The send itself succeeds (the command waits for the poll).
#[test]
fn push_endpoints_the_server_may_not_contact_are_never_contacted() {
    let push = PushService::start();
    let a = Accounts::start(common::Backend::Sqlite, &METRICS);
    let (email, password) = ("erin@example.org", "erin's password");
    account(&a, email, password);
    let laptop = sign_in(&a, email, password, "Laptop", json!({SEND_TAB: "keys"}));
    let targets = [
        format!("{}/ok/loopback", push.url),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        "https://10.0.0.1/wpush/v1/x".to_string(),
        "https://updates.push.services.mozilla.com.attacker.example/wpush/v1/x".to_string(),
        "http://updates.push.services.mozilla.com/wpush/v1/x".to_string(),
    ];
    for (i, callback) in targets.iter().enumerate() {
        let device = sign_in(&a, email, password, &format!("Target {i}"), json!({SEND_TAB: "keys"}));
        subscribe(&a, &device, callback, &PushKeys::generate());
        let sent = invoke(&a, &laptop, &device.id, SEND_TAB, &tab_payload("kept"), None);
        assert_eq!(
            (sent.status, &sent.body),
            (200, &json!({"enqueued": true, "notified": false})),
            "{callback}"
        );
        assert_eq!(
            fetch(&a, &device, "?index=0").body["messages"][0]["data"]["payload"],
            tab_payload("kept")
        );
    }
    // Refused before anything was queued: counted at once, nothing sent.
    assert_eq!(pushes(&a, "refused"), targets.len() as i64);
    assert_eq!((pushes(&a, "delivered"), pushes(&a, "failed"), pushes(&a, "timeout")), (0, 0, 0));
    assert!(push.received("/").is_empty());
}

/// The queue is bounded: with room for one push waiting and one being sent, a push service
/// that holds every push makes further pushes be dropped (counted), never waited for, and every
/// command is stored all the same.
#[test]
fn a_full_push_queue_drops_pushes_not_commands() {
    let push = PushService::start();
    let mut env = vec![
        ("WEFT_ACCOUNTS_PUSH_ALLOW_LOOPBACK", "true"),
        ("WEFT_ACCOUNTS_PUSH_QUEUE_LIMIT", "1"),
        ("WEFT_ACCOUNTS_PUSH_MAX_IN_FLIGHT", "1"),
    ];
    env.extend(METRICS);
    let a = Accounts::start(common::Backend::Sqlite, &env);
    let (email, password) = ("fay@example.org", "fay's password");
    account(&a, email, password);
    let laptop = sign_in(&a, email, password, "Laptop", json!({SEND_TAB: "keys"}));
    let (tablet, _) = sign_in_with_push(&a, email, password, "Tablet", &push, "/slow/tablet");
    // The push service holds each push for SLOW_SECONDS: one is sent, one waits for the slot,
    // one waits in the queue; the sends here end well before the first push does.
    let sends = 6;
    let notified: Vec<bool> = (0..sends)
        .map(|i| {
            let sent = invoke(&a, &laptop, &tablet.id, SEND_TAB, &tab_payload(&i.to_string()), None);
            assert_eq!((sent.status, &sent.body["enqueued"]), (200, &json!(true)), "{}", sent.body);
            sent.body["notified"].as_bool().expect("notified")
        })
        .collect();
    let dropped = notified.iter().filter(|n| !**n).count();
    assert!(dropped >= sends - 3, "at most three pushes fit: {notified:?}");
    assert_eq!(pushes(&a, "dropped"), dropped as i64);
    let waiting = fetch(&a, &tablet, "?index=0");
    assert_eq!(waiting.body["messages"].as_array().map(Vec::len), Some(sends), "{}", waiting.body);
}
