// Weft's sign-in page (local-accounts.md §3–§4). Everything secret happens here, in the
// browser, with WebCrypto: the password is stretched (onepw quick stretch), only authPW is
// sent; the wrapped key is fetched and unwrapped into kB, from which kSync and the key id are
// derived and encrypted to Firefox's ephemeral key (keys_jwe). The server never sees kB.
// Then the page hands the session and an OAuth code to Firefox over its WebChannel. The
// helpers it shares with the account page are in common.js.
"use strict";

const OLDSYNC = "https://identity.mozilla.com/apps/oldsync";
const FIREFOX_CLIENT_ID = "5882386c6d801776";

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

// ---- the page ----
const params = new URLSearchParams(location.search);
const oauth = params.get("context") === "oauth_webchannel_v1" && params.get("keys_jwk") && params.get("code_challenge");
let mode = "signin";

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

// The sign-in page's words for an invalid code: an invite, or a reset link.
function explainSignIn(err) {
  if (err.errno === 1001) {
    return mode === "reset" ? "This reset link is invalid, used or expired." : "This invite is invalid, already used or expired.";
  }
  return explain(err);
}

// The OAuth flow the sign-in completes: the one in the URL when Firefox's "Sign in to sync"
// opened the page; else (an invite or reset link opened in a tab, or this page typed in) one
// Firefox begins on request (`fxaccounts:oauth_flow_begin`, as FxA's own pages do), so a link
// ends in a signed-in Firefox too. Null outside Firefox, or at an origin it does not listen to.
async function oauthFlow() {
  if (oauth) return Object.fromEntries(params);
  const flow = await channel("fxaccounts:oauth_flow_begin", { scopes: [OLDSYNC, "profile"] }, 5000);
  return flow && flow.keys_jwk && flow.code_challenge ? flow : null;
}

async function connectFirefox(email, unwrapBKey, session, flow) {
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
  const keysJwe = await buildKeysJwe(flow.keys_jwk,
    JSON.stringify({ [OLDSYNC]: { kid, k: b64url(kSync), kty: "oct", scope: OLDSYNC } }));
  const link = await channel("fxaccounts:can_link_account", { email, uid: session.uid }, 120000);
  if (link && link.ok === false) throw new Error("Firefox declined to link this account.");
  const code = await api("POST", "/v1/oauth/authorization", {
    client_id: flow.client_id || FIREFOX_CLIENT_ID,
    state: flow.state,
    scope: flow.scope || `${OLDSYNC} profile`,
    access_type: flow.access_type || "offline",
    response_type: "code",
    code_challenge: flow.code_challenge,
    code_challenge_method: flow.code_challenge_method || "S256",
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
  const email = normalizeEmail($("email").value);
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
    show("Connecting Firefox…");
    const flow = await oauthFlow();
    if (!flow) {
      show(`Your account is ready. ${originMismatch() || "In Firefox, choose “Sign in to sync” and sign in with it."}`, "ok");
      return;
    }
    await connectFirefox(email, unwrapBKey, session, flow);
    show("Signed in. Firefox now syncs with this server; you can close this tab.", "ok");
    document.body.dataset.weftSignedIn = "true";
  } catch (err) {
    show(explainSignIn(err), "error");
  } finally {
    $("submit").disabled = false;
  }
}

// Firefox listens to this origin's WebChannel only once it has read this server's
// configuration, which it does at its first "Sign in to sync": an invite link opened in a
// fresh profile gets no answer, and the account could be made but not handed to Firefox. So
// the page says so before anything is typed: "Sign in to sync" opens this page with the invite
// filled in (it waits in localStorage), and there one submit creates the account and signs
// Firefox in. Where Firefox answers, the submit here does both (oauthFlow).
async function offerFirefoxSignIn() {
  const status = await channel("fxaccounts:fxa_status", { service: "sync", context: "web", isPairing: false }, 3000);
  document.body.dataset.weftFirefox = status ? "listening" : "not-listening";
  if (status || originMismatch()) return;
  $("firefox-hint").textContent = "To create your account and sign this Firefox in to sync in one go, choose " +
    "“Sign in to sync” in Firefox's menu now: this invite is filled in there. (In another browser, create it here.)";
  $("firefox-hint").hidden = false;
}

// The vectors test runs these in the test browser (tests/firefox/).
window.WeftOnepw = Object.freeze({ deriveCredentials, tokenKeys, unbundle, syncKeys, buildKeysJwe, hex, unhex, b64url });

document.addEventListener("DOMContentLoaded", () => {
  // An invite link is opened in a tab of its own, while Firefox opens the sign-in in another:
  // the code waits in localStorage, but for a day at most and only until an account is made.
  const invite = params.get("invite");
  if (invite) {
    localStorage.setItem("weft-invite",
      JSON.stringify({ code: invite, email: params.get("email") || "", until: Date.now() + INVITE_KEPT_MS }));
  }
  let pending = null;
  try {
    const kept = JSON.parse(localStorage.getItem("weft-invite"));
    if (kept && kept.until > Date.now()) pending = kept;
  } catch (_) { /* an older plain value: dropped below */ }
  if (!pending) localStorage.removeItem("weft-invite");
  if (params.get("reset")) {
    setMode("reset");
    $("email").value = params.get("email") || "";
  } else if (pending) {
    $("invite").value = pending.code;
    setMode("create");
    $("email").value = params.get("email") || pending.email || "";
  } else {
    setMode("signin");
  }
  $("toggle").addEventListener("click", (e) => { e.preventDefault(); setMode(mode === "create" ? "signin" : "create"); });
  $("form").addEventListener("submit", submit);
  checkOrigin().then(() => (mode === "create" && !oauth ? offerFirefoxSignIn() : null));
});
