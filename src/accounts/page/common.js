// Shared by Weft's account pages (the sign-in page, signin.js, and the account page,
// settings.js; local-accounts.md §3–§4): onepw with WebCrypto (the password is stretched here,
// only authPW is ever sent), FxA's Hawk for the account API, Firefox's WebChannel, and the
// check that the page is open at the server's own origin. Loaded before the page's script.
"use strict";

const NS = "identity.mozilla.com/picl/v1/";
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

// ---- the pages ----
const $ = (id) => document.getElementById(id);

function show(text, kind) {
  const el = $("status");
  el.textContent = text;
  el.className = kind || "";
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
    case 110: return "This session has ended (signed out, or the password changed). Sign in again.";
    case 114: return `Too many attempts. Try again in ${err.retryAfter || 60} seconds.`;
    case 123: return "That device is no longer signed in.";
    case 1001: return "This invite or link is invalid, already used or expired.";
    case 1002: return "This account is disabled.";
    case 201: return "The server is busy. Try again in a moment.";
    default: return err.message || "Something went wrong.";
  }
}

// The server's one form of an email (lower-case, then NFC): the v1 stretch is salted with it.
const normalizeEmail = (typed) => typed.trim().toLowerCase().normalize("NFC");
