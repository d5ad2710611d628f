// Weft's sign-in page (local-accounts.md §3–§4). Everything secret happens here, in the
// browser, with WebCrypto: the password is stretched (onepw quick stretch), only authPW is
// sent; the wrapped key is fetched and unwrapped into kB, from which kSync and the key id are
// derived and encrypted to Firefox's ephemeral key (keys_jwe). The server never sees kB.
// Then the page hands the session and an OAuth code to Firefox over its WebChannel.
"use strict";

const NS = "identity.mozilla.com/picl/v1/";
const OLDSYNC = "https://identity.mozilla.com/apps/oldsync";
const FIREFOX_CLIENT_ID = "5882386c6d801776";
const enc = new TextEncoder();
const subtle = crypto.subtle;

// ---- bytes ----
const hex = (buf) => Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, "0")).join("");
const unhex = (s) => Uint8Array.from(s.match(/../g) || [], (h) => parseInt(h, 16));
const b64 = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf)));
const b64url = (buf) => b64(buf).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
const b64urlText = (s) => b64url(enc.encode(s));
const fromB64url = (s) => {
  s = s.replace(/-/g, "+").replace(/_/g, "/");
  while (s.length % 4) s += "=";
  return Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
};
const xor = (a, b) => a.map((x, i) => x ^ b[i]);
const concat = (...parts) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
};
const u32 = (n) => new Uint8Array([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);

// ---- onepw (local-accounts.md §4) ----
async function hkdf(ikm, info, length) {
  const key = await subtle.importKey("raw", ikm, "HKDF", false, ["deriveBits"]);
  const params = { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info: enc.encode(NS + info) };
  return new Uint8Array(await subtle.deriveBits(params, key, length * 8));
}

// Version 1 (email-salted, 1000 rounds) without clientSalt; version 2 (FxA's 650,000 rounds,
// salted with clientSalt = NS + "quickStretchV2:" + 32 hex) with it. New accounts get v2.
async function quickStretch(email, password, clientSalt) {
  const key = await subtle.importKey("raw", enc.encode(password), "PBKDF2", false, ["deriveBits"]);
  const salt = clientSalt ? enc.encode(clientSalt) : enc.encode(NS + "quickStretch:" + email);
  const params = { name: "PBKDF2", hash: "SHA-256", salt, iterations: clientSalt ? 650000 : 1000 };
  return new Uint8Array(await subtle.deriveBits(params, key, 256));
}

async function deriveCredentials(email, password, clientSalt) {
  const stretched = await quickStretch(email, password, clientSalt);
  return {
    quickStretchedPW: stretched,
    authPW: await hkdf(stretched, "authPW", 32),
    unwrapBKey: await hkdf(stretched, "unwrapBkey", 32),
  };
}

async function tokenKeys(tokenHex, kind) {
  const out = await hkdf(unhex(tokenHex), kind, 96);
  return { id: hex(out.slice(0, 32)), hmacKey: out.slice(32, 64), keyRequestKey: out.slice(64) };
}

async function unbundle(keyRequestKey, bundleHex) {
  const keys = await hkdf(keyRequestKey, "account/keys", 96);
  const bundle = unhex(bundleHex);
  const ciphertext = bundle.slice(0, 64);
  const macKey = await subtle.importKey("raw", keys.slice(0, 32), { name: "HMAC", hash: "SHA-256" }, false, ["verify"]);
  if (!(await subtle.verify("HMAC", macKey, bundle.slice(64), ciphertext))) {
    throw new Error("The key bundle does not verify.");
  }
  const plain = xor(ciphertext, keys.slice(32));
  return { kA: plain.slice(0, 32), wrapKb: plain.slice(32) };
}

async function syncKeys(kB) {
  return {
    kSync: await hkdf(kB, "oldsync", 64),
    kXCS: new Uint8Array(await subtle.digest("SHA-256", kB)).slice(0, 16),
  };
}

// keys_jwe: ECDH-ES with Firefox's P-256 key, RFC 7518 Concat KDF, A256GCM (§4).
async function buildKeysJwe(keysJwk, plaintext) {
  const peerJwk = JSON.parse(new TextDecoder().decode(fromB64url(keysJwk)));
  const peer = await subtle.importKey("jwk", { kty: "EC", crv: "P-256", x: peerJwk.x, y: peerJwk.y },
    { name: "ECDH", namedCurve: "P-256" }, false, []);
  const mine = await subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, true, ["deriveBits"]);
  const z = new Uint8Array(await subtle.deriveBits({ name: "ECDH", public: peer }, mine.privateKey, 256));
  const algId = enc.encode("A256GCM");
  const otherInfo = concat(u32(algId.length), algId, u32(0), u32(0), u32(256));
  const cek = new Uint8Array(await subtle.digest("SHA-256", concat(u32(1), z, otherInfo)));
  const epk = await subtle.exportKey("jwk", mine.publicKey);
  const header = b64urlText(JSON.stringify({ alg: "ECDH-ES", enc: "A256GCM", epk: { kty: epk.kty, crv: epk.crv, x: epk.x, y: epk.y } }));
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const key = await subtle.importKey("raw", cek, "AES-GCM", false, ["encrypt"]);
  const sealed = new Uint8Array(await subtle.encrypt(
    { name: "AES-GCM", iv, additionalData: enc.encode(header), tagLength: 128 }, key, enc.encode(plaintext)));
  return [header, "", b64url(iv), b64url(sealed.slice(0, -16)), b64url(sealed.slice(-16))].join(".");
}

const INVITE_KEPT_MS = 24 * 3600 * 1000;

// ---- the account API, Hawk-signed where FxA signs ----
let clockSkew = 0;

async function hawkHeader(method, path, token, payload) {
  const url = new URL(path, location.origin);
  const ts = Math.floor(Date.now() / 1000) + clockSkew;
  const nonce = b64(crypto.getRandomValues(new Uint8Array(8)));
  const hash = payload === undefined ? "" :
    b64(await subtle.digest("SHA-256", enc.encode("hawk.1.payload\napplication/json\n" + payload + "\n")));
  const port = url.port || (url.protocol === "https:" ? "443" : "80");
  const normalized = `hawk.1.header\n${ts}\n${nonce}\n${method}\n${url.pathname}${url.search}\n${url.hostname}\n${port}\n${hash}\n\n`;
  const key = await subtle.importKey("raw", token.hmacKey, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = b64(await subtle.sign("HMAC", key, enc.encode(normalized)));
  return `Hawk id="${token.id}", ts="${ts}", nonce="${nonce}"` + (hash ? `, hash="${hash}"` : "") + `, mac="${mac}"`;
}

async function api(method, path, body, token) {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const headers = {};
  if (payload !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = await hawkHeader(method, path, token, payload);
  const resp = await fetch(path, { method, headers, body: payload, credentials: "omit", cache: "no-store" });
  const serverTime = Number(resp.headers.get("Timestamp"));
  if (serverTime) clockSkew = serverTime - Math.floor(Date.now() / 1000);
  const json = await resp.json().catch(() => ({}));
  if (!resp.ok) {
    throw Object.assign(new Error(json.message || resp.statusText), { errno: json.errno, retryAfter: json.retryAfter });
  }
  return json;
}

// ---- Firefox's WebChannel (§3): one command at a time, in order ----
const replies = new Map();
let messageSeq = 0;

window.addEventListener("WebChannelMessageToContent", (event) => {
  let detail = event.detail;
  if (typeof detail === "string") { try { detail = JSON.parse(detail); } catch { return; } }
  const message = detail && detail.id === "account_updates" ? detail.message : null;
  if (message && replies.has(message.messageId)) replies.get(message.messageId)(message.data || {});
});

// Sends a command; waits up to `waitMs` for the browser's reply (null if none came).
function channel(command, data, waitMs) {
  const messageId = `${Date.now()}-${++messageSeq}`;
  return new Promise((resolve) => {
    const timer = setTimeout(() => { replies.delete(messageId); resolve(null); }, waitMs);
    replies.set(messageId, (reply) => { clearTimeout(timer); replies.delete(messageId); resolve(reply); });
    const detail = JSON.stringify({ id: "account_updates", message: { command, data, messageId } });
    window.dispatchEvent(new CustomEvent("WebChannelMessageToChrome", { detail }));
  });
}

// ---- the page ----
const params = new URLSearchParams(location.search);
const oauth = params.get("context") === "oauth_webchannel_v1" && params.get("keys_jwk") && params.get("code_challenge");
const $ = (id) => document.getElementById(id);
let mode = "signin";

function show(text, kind) {
  const el = $("status");
  el.textContent = text;
  el.className = kind || "";
}

function setMode(next) {
  mode = next;
  const creating = mode === "create", resetting = mode === "reset";
  $("create-fields").hidden = !(creating || resetting);
  $("invite-label").hidden = !creating;
  $("title").textContent = creating ? "Create your account" : resetting ? "Choose a new password" : "Sign in";
  $("submit").textContent = creating ? "Create account" : resetting ? "Set new password" : "Sign in";
  $("toggle").textContent = creating ? "Already have an account? Sign in" : "Have an invite? Create an account";
  $("toggle").hidden = resetting;
  $("password").autocomplete = creating || resetting ? "new-password" : "current-password";
}

// The server's own origin (its public_url), which Firefox and every Hawk signature must use
// exactly; null until the discovery document answered.
let serverOrigin = null;

// Why a page opened at another origin than the server's cannot sign in, in words: Firefox only
// listens to the origin of its autoconfig pref, and the server checks signatures against its
// own host, port and scheme (local-accounts.md §2).
function originMismatch() {
  if (!serverOrigin || serverOrigin === location.origin) return null;
  const here = new URL(location.origin), there = new URL(serverOrigin);
  let why;
  if (here.protocol !== there.protocol) {
    why = `this page was opened over ${here.protocol.slice(0, -1)}, but the server is at ${there.protocol.slice(0, -1)}`;
  } else if (here.hostname !== there.hostname) {
    why = `Firefox treats “${here.hostname}” and “${there.hostname}” as two different sites, even when both are this machine`;
  } else {
    why = `the port differs (${here.port || "default"} here, ${there.port || "default"} on the server)`;
  }
  return `This page is open at ${location.origin}, but this server's address is ${serverOrigin}: ${why}, ` +
    `so signing in from here fails (“Invalid request signature”). In about:config set ` +
    `identity.fxaccounts.autoconfig.uri to exactly ${serverOrigin}, then choose “Sign in to sync” again.`;
}

async function checkOrigin() {
  try {
    const conf = await (await fetch("/.well-known/fxa-client-configuration", { credentials: "omit", cache: "no-store" })).json();
    serverOrigin = new URL(conf.auth_server_base_url).origin;
  } catch (_) { return; }
  const mismatch = originMismatch();
  if (mismatch) {
    const el = $("origin-warning");
    el.textContent = mismatch + " ";
    const link = document.createElement("a");
    link.href = serverOrigin + location.pathname + location.search;
    link.textContent = `Open this page at ${serverOrigin}`;
    el.append(link);
    el.hidden = false;
  }
}

function explain(err) {
  if (err.errno === 109 && originMismatch()) return originMismatch();
  switch (err.errno) {
    case 101: return "An account with this email already exists here. Sign in instead.";
    case 102: return "There is no account with this email on this server.";
    case 103: return "Wrong password.";
    case 114: return `Too many attempts. Try again in ${err.retryAfter || 60} seconds.`;
    case 1001: return mode === "reset" ? "This reset link is invalid, used or expired." : "This invite is invalid, already used or expired.";
    case 1002: return "This account is disabled.";
    case 201: return "The server is busy. Try again in a moment.";
    default: return err.message || "Something went wrong.";
  }
}

async function connectFirefox(email, unwrapBKey, session) {
  const fxaStatus = await channel("fxaccounts:fxa_status", { service: "sync", context: "oauth_webchannel_v1", isPairing: false }, 5000);
  if (!fxaStatus) {
    throw new Error(originMismatch() || "Firefox did not answer. Open this page from Firefox's “Sign in to sync” " +
      `with identity.fxaccounts.autoconfig.uri set to exactly ${serverOrigin || location.origin}.`);
  }
  show("Fetching your keys…");
  const keyFetch = await tokenKeys(session.keyFetchToken, "keyFetchToken");
  const { bundle } = await api("GET", "/v1/account/keys", undefined, keyFetch);
  const { wrapKb } = await unbundle(keyFetch.keyRequestKey, bundle);
  const kB = xor(wrapKb, unwrapBKey);
  const sessionKeys = await tokenKeys(session.sessionToken, "sessionToken");
  const scoped = await api("POST", "/v1/account/scoped-key-data", { client_id: FIREFOX_CLIENT_ID, scope: OLDSYNC }, sessionKeys);
  const { kSync, kXCS } = await syncKeys(kB);
  const kid = `${scoped[OLDSYNC].keyRotationTimestamp}-${b64url(kXCS)}`;
  const keysJwe = await buildKeysJwe(params.get("keys_jwk"),
    JSON.stringify({ [OLDSYNC]: { kid, k: b64url(kSync), kty: "oct", scope: OLDSYNC } }));
  const link = await channel("fxaccounts:can_link_account", { email, uid: session.uid }, 120000);
  if (link && link.ok === false) throw new Error("Firefox declined to link this account.");
  const code = await api("POST", "/v1/oauth/authorization", {
    client_id: params.get("client_id") || FIREFOX_CLIENT_ID,
    state: params.get("state"),
    scope: params.get("scope") || `${OLDSYNC} profile`,
    access_type: params.get("access_type") || "offline",
    response_type: "code",
    code_challenge: params.get("code_challenge"),
    code_challenge_method: params.get("code_challenge_method") || "S256",
    keys_jwe: keysJwe,
  }, sessionKeys);
  const engines = (fxaStatus.capabilities && fxaStatus.capabilities.engines) || [];
  await channel("fxaccounts:login", {
    email, uid: session.uid, sessionToken: session.sessionToken, verified: true,
    services: { sync: { offeredEngines: engines, declinedEngines: [] } },
  }, 2000);
  await channel("fxaccounts:oauth_login", { code: code.code, state: code.state, redirect: "urn:ietf:wg:oauth:2.0:oob", action: "signin" }, 2000);
}

async function submit(event) {
  event.preventDefault();
  // The server's one form of an email (lower-case, then NFC): the v1 stretch is salted with it.
  const email = $("email").value.trim().toLowerCase().normalize("NFC");
  const password = $("password").value;
  if (!email.includes("@") || !password) return show("Enter your email and password.", "error");
  if (mode !== "signin" && password.length < 8) return show("Use at least 8 characters.", "error");
  if (mode !== "signin" && password !== $("password2").value) return show("The passwords differ.", "error");
  $("submit").disabled = true;
  try {
    show("Checking your password…");
    // A new password gets the stronger version-2 stretch; a sign-in uses the account's.
    const clientSalt = mode === "signin"
      ? (await api("POST", "/v1/account/credentials/status", { email })).clientSalt
      : NS + "quickStretchV2:" + hex(crypto.getRandomValues(new Uint8Array(16)));
    const { authPW, unwrapBKey } = await deriveCredentials(email, password, clientSalt);
    let session;
    if (mode === "create") {
      session = await api("POST", "/v1/account/create?keys=true",
        { email, authPW: hex(authPW), clientSalt, invite: $("invite").value.trim() });
      localStorage.removeItem("weft-invite");
    } else if (mode === "reset") {
      session = await api("POST", "/v1/account/reset", { email, authPW: hex(authPW), clientSalt, code: params.get("reset") });
    } else {
      session = await api("POST", "/v1/account/login?keys=true", { email, authPW: hex(authPW) });
    }
    if (!oauth) {
      show("Your account is ready. In Firefox, choose “Sign in to sync” and sign in with it.", "ok");
      return;
    }
    await connectFirefox(email, unwrapBKey, session);
    show("Signed in. Firefox now syncs with this server; you can close this tab.", "ok");
    document.body.dataset.weftSignedIn = "true";
  } catch (err) {
    show(explain(err), "error");
  } finally {
    $("submit").disabled = false;
  }
}

// The vectors test runs these in the test browser (tests/firefox/).
window.WeftOnepw = Object.freeze({ deriveCredentials, tokenKeys, unbundle, syncKeys, buildKeysJwe, hex, unhex, b64url });

document.addEventListener("DOMContentLoaded", () => {
  // An invite link is opened in a tab of its own, while Firefox opens the sign-in in another:
  // the code waits in localStorage, but for a day at most and only until an account is made.
  const invite = params.get("invite");
  if (invite) localStorage.setItem("weft-invite", JSON.stringify({ code: invite, until: Date.now() + INVITE_KEPT_MS }));
  let pending = null;
  try {
    const kept = JSON.parse(localStorage.getItem("weft-invite"));
    if (kept && kept.until > Date.now()) pending = kept.code;
  } catch (_) { /* an older plain value: dropped below */ }
  if (!pending) localStorage.removeItem("weft-invite");
  if (params.get("reset")) {
    setMode("reset");
    $("email").value = params.get("email") || "";
  } else if (pending) {
    $("invite").value = pending;
    setMode("create");
    if (params.get("email")) $("email").value = params.get("email");
  } else {
    setMode("signin");
  }
  $("toggle").addEventListener("click", (e) => { e.preventDefault(); setMode(mode === "create" ? "signin" : "create"); });
  $("form").addEventListener("submit", submit);
  checkOrigin();
});
