// Weft's account page (issue 21): what Firefox's "Manage account" (/settings), "Manage devices"
// (/settings/clients) and "Connect another device" (/connect_another_device) open. The session
// is the browser's, handed over through the WebChannel (fxa_status), or one made by signing in
// here. As on the sign-in page, passwords are stretched here and never sent; a password change
// unwraps kB with the old password and wraps the same kB with the new one (onepw), so synced
// data stays readable. Helpers (onepw, Hawk, the WebChannel, the origin check): common.js.
"use strict";

// The account shown: {email, uid, sessionToken, keys (Hawk credentials), fromBrowser}.
let account = null;

const TYPE_NAMES = { desktop: "Computer", mobile: "Phone", tablet: "Tablet", vr: "VR headset", tv: "TV" };

function lastSeen(ms) {
  if (!ms) return "never seen";
  const minutes = Math.round((Date.now() - ms) / 60000);
  if (minutes < 2) return "active now";
  if (minutes < 120) return `last seen ${minutes} minutes ago`;
  return `last seen ${new Date(ms).toLocaleString()}`;
}

async function useSession(email, uid, sessionToken, fromBrowser) {
  account = { email, uid, sessionToken, keys: await tokenKeys(sessionToken, "sessionToken"), fromBrowser };
  $("email").textContent = email;
  $("signin").hidden = true;
  $("account").hidden = false;
  await listDevices();
  document.body.dataset.weftAccount = "ready";
}

async function listDevices() {
  const devices = await api("GET", "/v1/account/devices", undefined, account.keys);
  const list = $("devices");
  list.replaceChildren();
  if (!devices.length) {
    const li = document.createElement("li");
    li.textContent = "No device has registered yet.";
    list.append(li);
  }
  for (const device of devices) {
    const li = document.createElement("li");
    li.className = "device";
    li.dataset.deviceId = device.id;
    const name = document.createElement("span");
    name.className = "device-name";
    name.textContent = device.name || "Unnamed device";
    const about = document.createElement("span");
    about.className = "hint";
    about.textContent = ` ${TYPE_NAMES[device.type] || device.type} · ${device.isCurrentDevice ? "this device" : lastSeen(device.lastAccessTime)}`;
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = "Sign out";
    button.addEventListener("click", () => signOutDevice(device, button));
    li.append(name, about, button);
    list.append(li);
  }
}

async function signOutDevice(device, button) {
  button.disabled = true;
  try {
    await api("POST", "/v1/account/device/destroy", { id: device.id }, account.keys);
    if (device.isCurrentDevice) {
      if (account.fromBrowser) await channel("fxaccounts:logout", { uid: account.uid }, 2000);
      show("This device is signed out.", "ok");
      $("account").hidden = true;
      return;
    }
    show(`${device.name || "The device"} is signed out.`, "ok");
    await listDevices();
  } catch (err) {
    show(explain(err), "error");
    button.disabled = false;
  }
}

// The stretch an account uses (v1 email-salted, or v2 with its clientSalt), as at sign-in.
async function credentialsFor(email, password) {
  const { clientSalt } = await api("POST", "/v1/account/credentials/status", { email });
  return deriveCredentials(email, password, clientSalt);
}

async function changePassword(event) {
  event.preventDefault();
  const old = $("old-password").value, next = $("new-password").value;
  if (next.length < 8) return show("Use at least 8 characters for the new password.", "error");
  if (next !== $("new-password2").value) return show("The new passwords differ.", "error");
  busy(event.target, true);
  try {
    show("Checking your current password…");
    const email = account.email;
    const before = await credentialsFor(email, old);
    const started = await api("POST", "/v1/password/change/start", { email, oldAuthPW: hex(before.authPW) });
    const keyFetch = await tokenKeys(started.keyFetchToken, "keyFetchToken");
    const { bundle } = await api("GET", "/v1/account/keys", undefined, keyFetch);
    const { wrapKb } = await unbundle(keyFetch.keyRequestKey, bundle);
    const kB = xor(wrapKb, before.unwrapBKey);
    show("Wrapping your key with the new password…");
    const clientSalt = NS + "quickStretchV2:" + hex(crypto.getRandomValues(new Uint8Array(16)));
    const after = await deriveCredentials(email, next, clientSalt);
    const changeKeys = await tokenKeys(started.passwordChangeToken, "passwordChangeToken");
    const session = await api("POST", "/v1/password/change/finish",
      { authPW: hex(after.authPW), wrapKb: hex(xor(kB, after.unwrapBKey)), clientSalt }, changeKeys);
    // Every other session is gone; this browser keeps its sign-in with the new session.
    if (account.fromBrowser) {
      await channel("fxaccounts:change_password",
        { email, uid: session.uid, sessionToken: session.sessionToken, verified: true }, 5000);
    }
    await useSession(email, session.uid, session.sessionToken, account.fromBrowser);
    event.target.reset();
    show("Password changed. Other devices sign in again with the new password; your data stays.", "ok");
    document.body.dataset.weftPasswordChanged = "true";
  } catch (err) {
    show(explain(err), "error");
  } finally {
    busy(event.target, false);
  }
}

async function deleteAccount(event) {
  event.preventDefault();
  busy(event.target, true);
  try {
    show("Checking your password…");
    const { authPW } = await credentialsFor(account.email, $("delete-password").value);
    await api("POST", "/v1/account/destroy", { email: account.email, authPW: hex(authPW) });
    if (account.fromBrowser) await channel("fxaccounts:delete", { uid: account.uid }, 2000);
    $("account").hidden = true;
    show("Your account is deleted. Its synced data is removed from this server after its grace period.", "ok");
    document.body.dataset.weftAccount = "deleted";
  } catch (err) {
    show(explain(err), "error");
  } finally {
    busy(event.target, false);
  }
}

async function signIn(event) {
  event.preventDefault();
  const email = normalizeEmail($("signin-email").value);
  busy(event.target, true);
  try {
    show("Checking your password…");
    const { authPW } = await credentialsFor(email, $("signin-password").value);
    const session = await api("POST", "/v1/account/login", { email, authPW: hex(authPW) });
    show("");
    await useSession(email, session.uid, session.sessionToken, false);
  } catch (err) {
    show(explain(err), "error");
  } finally {
    busy(event.target, false);
  }
}

function busy(form, on) {
  for (const button of form.querySelectorAll("button")) button.disabled = on;
}

function showConnect() {
  const origin = serverOrigin || location.origin;
  const prefs = [`identity.fxaccounts.autoconfig.uri = ${origin}`];
  if (origin.startsWith("http:")) prefs.push("identity.fxaccounts.allowHttp = true");
  $("connect-prefs").textContent = prefs.join("\n");
  $("connect-origin").textContent = origin;
  $("connect").hidden = false;
}

// The browser's session when it is signed in to this server's account; else the form.
async function start() {
  await checkOrigin();
  if (location.pathname.startsWith("/connect_another_device")) return showConnect();
  if (location.pathname.startsWith("/settings/clients")) $("change").hidden = $("delete").hidden = true;
  const status = await channel("fxaccounts:fxa_status", { service: "sync", context: "web", isPairing: false }, 3000);
  const user = status && status.signedInUser;
  if (user && user.sessionToken) {
    try {
      await useSession(user.email, user.uid, user.sessionToken, true);
      return;
    } catch (err) {
      // A revoked session (signed out elsewhere, password changed): sign in again below.
      if (err.errno !== 110) show(explain(err), "error");
    }
  }
  $("signin").hidden = false;
  $("signin-email").value = (user && user.email) || new URLSearchParams(location.search).get("email") || "";
}

document.addEventListener("DOMContentLoaded", () => {
  $("signin").addEventListener("submit", signIn);
  $("change").addEventListener("submit", changePassword);
  $("delete").addEventListener("submit", deleteAccount);
  start().catch((err) => show(explain(err), "error"));
});
