// The web wallet page (/wallet). The key is made here (crypto.getRandomValues), kept in this
// origin's localStorage only as the encrypted key file (the CLI's format), and unlocked into a
// non-extractable WebCrypto key in this page's memory. Requests carry only the public address
// (reads) and signed transactions (sends): never the seed, the passphrase or the key file.

import { VeilError } from "./veil-format.js";
import * as vw from "./veil-wallet.js";
import { $, el, human, saveBlob, showMessage } from "./common.js";

const STORE = "veil.wallet.v1";
const POLL_MS = 4000;
const NONCE_RETRIES = 4;
const TITLES = {
  wrongpass: "Wrong passphrase",
  notwallet: "Not a wallet key file",
  garbled: "Check what you typed",
  refused: "Not possible",
  expired: "This request has expired",
  integrity: "The key file is damaged",
  insufficient_funds: "Not enough money",
};

let info = null;       // /api/wallet/info: chain id, minimum fee
let file = null;       // the encrypted key file (Uint8Array)
let publicKey = null;
let addressText = "";
let signer = null;     // set while unlocked
let account = null;
let timer = null;

/** A call to the gateway's wallet API; an error reply becomes a VeilError whose kind is the gateway's code. */
async function call(path, init = {}) {
  let r;
  try {
    r = await fetch(path, { cache: "no-store", credentials: "omit", referrerPolicy: "no-referrer", ...init });
  } catch {
    throw new VeilError("unavailable", "the gateway could not be reached; check your connection and try again");
  }
  if (r.ok) return r;
  let reply = {};
  try { reply = await r.json(); } catch { /* not JSON */ }
  const err = new VeilError(reply.error || "unavailable", reply.message || `the gateway answered ${r.status}`);
  err.status = r.status;
  throw err;
}

function fromBase64Text(b64) { return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)); }

function status(id, text, error = false) {
  const s = $(id);
  s.textContent = text;
  s.className = error ? "status error" : "status";
}

function fail(err) {
  showMessage(err, TITLES);
  document.body.dataset.error = err.kind || "error";
}

function clearMessage() { $("message").hidden = true; delete document.body.dataset.error; }

// -- the stored key file --------------------------------------------------------------------
function loadStored() {
  const b64 = localStorage.getItem(STORE);
  if (!b64) return null;
  try { return vw.parseWalletFile(fromBase64Text(b64)) && fromBase64Text(b64); } catch { return null; }
}

async function adopt(raw) {
  const parsed = vw.parseWalletFile(raw);
  file = raw;
  publicKey = parsed.publicKey;
  addressText = await vw.encodeAddress(await vw.addressOf(publicKey));
}

function store(raw) {
  let s = "";
  for (const b of raw) s += String.fromCharCode(b);
  localStorage.setItem(STORE, btoa(s));
}

// -- setup: create or import ------------------------------------------------------------------
function setupView() {
  $("wallet-view").hidden = true;
  $("setup-view").hidden = false;
  $("create-form").onsubmit = async (e) => {
    e.preventDefault();
    clearMessage();
    const p1 = $("create-pass").value, p2 = $("create-pass2").value;
    if (!p1) return fail(new VeilError("refused", "choose a passphrase: it encrypts the key in this browser and in the key file"));
    if (p1 !== p2) return fail(new VeilError("refused", "the two passphrases differ"));
    $("create").disabled = true;
    status("setup-status", "Making your key and encrypting it (this takes a few seconds)…");
    try {
      const seed = crypto.getRandomValues(new Uint8Array(32));
      const made = await vw.makeWalletFile(p1, seed);
      seed.fill(0);
      store(made.file);
      await adopt(made.file);
      signer = made.signer;
      $("create-pass").value = $("create-pass2").value = "";
      status("setup-status", "");
      walletView();
    } catch (err) {
      status("setup-status", "");
      fail(err);
    } finally {
      $("create").disabled = false;
    }
  };
  $("import-form").onsubmit = async (e) => {
    e.preventDefault();
    clearMessage();
    const f = $("import-file").files[0];
    if (!f) return fail(new VeilError("refused", "choose the key file to import"));
    if (f.size > vw.WALLET.maxFile) return fail(new VeilError("notwallet", "this file is too large to be a Veil wallet key file"));
    $("import").disabled = true;
    status("setup-status", "Checking the passphrase…");
    try {
      const raw = new Uint8Array(await f.arrayBuffer());
      vw.parseWalletFile(raw);
      const opened = await vw.openWalletFile($("import-pass").value, raw);
      store(raw);
      await adopt(raw);
      signer = opened.signer;
      $("import-pass").value = "";
      status("setup-status", "");
      walletView();
    } catch (err) {
      status("setup-status", "");
      fail(err);
    } finally {
      $("import").disabled = false;
    }
  };
}

// -- the wallet ---------------------------------------------------------------------------------
function showLock() {
  $("lock-state").textContent = signer ? "Unlocked in this page (until you lock it or leave)" : "Locked: your passphrase unlocks it to send";
  $("send-pass").hidden = $("send-pass-label").hidden = !!signer;
  $("req-pass").hidden = $("req-pass-label").hidden = !!signer;
  $("lock").hidden = !signer;
  document.body.dataset.unlocked = signer ? "1" : "0";
}

async function unlock(passphrase) {
  if (signer) return signer;
  status("send-status", "Unlocking the key…");
  const opened = await vw.openWalletFile(passphrase, file);
  signer = opened.signer;
  $("send-pass").value = "";
  showLock();
  return signer;
}

async function refresh() {
  try {
    if (!info) info = await (await call("/api/wallet/info")).json();
    account = await (await call(`/api/wallet/account/${addressText}`)).json();
    const bal = BigInt(account.balance);
    $("balance").textContent = `${vw.formatAmount(bal)} ${vw.SYMBOL}`;
    $("balance").dataset.units = bal.toString();
    const left = BigInt(account.allowance_left), total = BigInt(account.allowance);
    const renews = new Date(account.epoch_ends * 1000).toLocaleString("en", { dateStyle: "medium", timeStyle: "short" });
    $("allowance").textContent = `${human(Number(left))} of ${human(Number(total))} left, renews ${renews}`;
    $("allowance").dataset.left = left.toString();
    $("allowance").dataset.renews = String(account.epoch_ends);
    const hist = await (await call(`/api/wallet/history/${addressText}?limit=50`)).json();
    showHistory(hist.txs);
    document.body.dataset.ready = "1";
  } catch (err) {
    fail(err);
  }
}

function showHistory(txs) {
  const rows = txs.map((t) => {
    const amt = BigInt(t.amount);
    // Only a transfer moves this balance by its amount; other kinds show theirs unsigned.
    const sign = t.kind !== "transfer" ? "" : t.direction === "out" ? "−" : t.direction === "in" ? "+" : "";
    let what;
    if (t.kind === "transfer") {
      what = t.direction === "in" ? `Received from ${t.from}` : t.direction === "out" ? `Sent to ${t.to}` : "To yourself";
    } else if (t.kind === "stake") {
      what = t.direction === "in" ? `Staked for this account by ${t.from} (it raises the free allowance)` : t.to ? `Staked for ${t.to}` : "Staked";
    } else {
      const words = t.kind.replaceAll("_", " ");
      what = words[0].toUpperCase() + words.slice(1);
    }
    const whatCell = el("td", { class: "what" }, el("span", {}, what));
    if (t.memo) whatCell.append(el("div", { class: "memo" }, `Memo: ${t.memo}`));
    if (t.invoice) whatCell.append(el("div", { class: "memo" }, `Invoice ${t.invoice}`));
    return el("tr", { "data-id": t.id, "data-direction": t.direction, "data-amount": amt.toString(), "data-kind": t.kind },
      el("td", {}, t.height === null ? "pending" : String(t.height)), whatCell,
      el("td", { class: "amount" }, amt ? `${sign}${vw.formatAmount(amt)}` : "–"));
  });
  $("history").querySelector("tbody").replaceChildren(...rows);
  $("history-empty").hidden = rows.length > 0;
}

/** Sign a transfer with the next nonce and relay it (re-signed on a nonce race); the gateway's answer. */
async function transfer(to, amount, memo, extra = {}) {
  if (!info) info = await (await call("/api/wallet/info")).json();
  for (let attempt = 0; ; attempt++) {
    const acct = await (await call(`/api/wallet/account/${addressText}`)).json();
    const body = vw.transferBody({ chain: info.chain, publicKey, nonce: BigInt(acct.nonce), fee: BigInt(info.min_fee), to, amount, memo, extra });
    const tx = await vw.signTx(signer, body);
    try {
      return await (await call("/api/wallet/tx", { method: "POST", headers: { "Content-Type": "application/octet-stream" }, body: tx.raw })).json();
    } catch (err) {
      if (!(err.kind === "bad_nonce" && attempt < NONCE_RETRIES)) throw err;
    }
  }
}

async function send(e) {
  e.preventDefault();
  clearMessage();
  $("send").disabled = true;
  try {
    const to = await vw.decodeAddress($("send-to").value);
    const amount = vw.parseAmount($("send-amount").value);
    if (amount <= 0n) throw new VeilError("garbled", "the amount must be more than 0");
    const memo = $("send-memo").value || null;
    if (!signer && !$("send-pass").value) throw new VeilError("wrongpass", "enter your passphrase to unlock the key");
    await unlock($("send-pass").value);
    status("send-status", "Signing and sending…");
    const answer = await transfer(to, amount, memo);
    status("send-status", `Sent ${vw.formatAmount(amount)} ${vw.SYMBOL} in block ${answer.height} (transaction ${answer.id.slice(0, 16)}…).`);
    document.body.dataset.sent = answer.id;
    $("send-amount").value = $("send-memo").value = "";
    await refresh();
  } catch (err) {
    status("send-status", "");
    fail(err);
  } finally {
    $("send").disabled = false;
  }
}

// -- payment requests (veil:pay URIs: a link's fragment, or pasted) ------------------------------
let request = null;

async function openRequest(text) {
  clearMessage();
  request = await vw.parsePaymentUri(text);
  const expires = new Date(Number(request.expires) * 1000);
  $("req-amount").textContent = `${vw.formatAmount(request.amount)} ${vw.SYMBOL}`;
  $("req-to").textContent = await vw.encodeAddress(request.payee);
  $("req-memo").textContent = request.memo ?? "–";
  $("req-id").textContent = request.invoiceText;
  $("req-expires").textContent = expires.toLocaleString("en", { dateStyle: "medium", timeStyle: "medium" });
  const over = BigInt(Math.floor(Date.now() / 1000)) > request.expires;
  $("req-pay").disabled = over;
  delete $("pay-request").dataset.paid;
  status("req-status", over ? "This request has expired: ask the payee for a new one. Nothing will be paid." : "", over);
  $("pay-request").hidden = false;
  $("pay-request").dataset.invoice = request.invoiceText;
  $("pay-request").dataset.expired = over ? "1" : "0";
  showLock();
  $("pay-request").scrollIntoView({ block: "nearest" });
}

async function payRequest(e) {
  e.preventDefault();
  clearMessage();
  if (!request) return;
  $("req-pay").disabled = true;
  try {
    if (BigInt(Math.floor(Date.now() / 1000)) > request.expires) throw new VeilError("expired", "this payment request has expired: ask the payee for a new one");
    if (!signer && !$("req-pass").value) throw new VeilError("wrongpass", "enter your passphrase to unlock the key");
    if (!signer) { await unlock($("req-pass").value); $("req-pass").value = ""; }
    status("req-status", "Signing and paying…");
    const answer = await transfer(request.payee, request.amount, request.memo, { invoice: request.invoice });
    status("req-status", `Paid ${vw.formatAmount(request.amount)} ${vw.SYMBOL} for invoice ${request.invoiceText} in block ${answer.height}.`);
    document.body.dataset.paid = request.invoiceText;
    document.body.dataset.sent = answer.id;
    $("pay-request").dataset.paid = "1";  // the Pay button stays off: paying twice is an overpayment
    await refresh();
  } catch (err) {
    status("req-status", "");
    fail(err);
    $("req-pay").disabled = false;
  }
}

function pendingRequest() {
  // The fragment is the URI as written (`/wallet#veil:pay?…`), or the whole URI percent-encoded once.
  let h = location.hash.slice(1);
  if (/^veil%3a/i.test(h)) { try { h = decodeURIComponent(h); } catch { return null; } }
  return h.startsWith(vw.PAY.prefix) ? h : null;
}

function walletView() {
  $("setup-view").hidden = true;
  $("wallet-view").hidden = false;
  $("address").textContent = addressText;
  document.body.dataset.address = addressText;
  showLock();
  $("send-form").onsubmit = send;
  $("req-form").onsubmit = payRequest;
  $("req-cancel").onclick = () => { request = null; $("pay-request").hidden = true; history.replaceState(null, "", location.pathname); };
  $("open-request-form").onsubmit = async (e) => {
    e.preventDefault();
    try { await openRequest($("request-uri").value); $("request-uri").value = ""; } catch (err) { fail(err); }
  };
  const pending = pendingRequest();
  if (pending) openRequest(pending).catch(fail);
  window.onhashchange = () => { const p = pendingRequest(); if (p) openRequest(p).catch(fail); };
  $("copy-address").onclick = async () => {
    try { await navigator.clipboard.writeText(addressText); $("copy-address").textContent = "Copied"; } catch { $("copy-address").textContent = "Select and copy"; }
  };
  $("lock").onclick = () => { signer = null; showLock(); };
  $("export").onclick = () => saveBlob(new Blob([file], { type: "application/octet-stream" }), `veil-wallet-${addressText.slice(0, 12)}`);
  $("forget").onclick = () => {
    if (!confirm("Remove this wallet from this browser? Without an exported key file (and its passphrase) the money in it is lost.")) return;
    localStorage.removeItem(STORE);
    file = publicKey = signer = null;
    clearInterval(timer);
    delete document.body.dataset.ready;
    setupView();
  };
  refresh();
  clearInterval(timer);
  timer = setInterval(() => { if (!document.hidden) refresh(); }, POLL_MS);
}

// -- checkout (/pay/<invoice>#veil:pay?…): the request, its QR code, a countdown, the ledger's status --
const STATUS_TEXT = { open: "Waiting for payment", paid: "Paid", underpaid: "Partly paid", overpaid: "Paid (more than asked)", expired: "Expired" };

async function checkout() {
  const uri = pendingRequest();
  if (!uri) throw new VeilError("garbled", "this checkout link has no payment request after its '#': ask the shop for the link again");
  const req = await vw.parsePaymentUri(uri);
  const pathId = decodeURIComponent(location.pathname.split("/").pop() || "").toLowerCase();
  if (pathId !== req.invoiceText) throw new VeilError("garbled", "this checkout link's invoice and its payment request differ: ask the shop for the link again");
  const box = $("checkout");
  $("co-amount").textContent = `${vw.formatAmount(req.amount)} ${vw.SYMBOL}`;
  $("co-memo").textContent = req.memo ?? "";
  $("co-to").textContent = await vw.encodeAddress(req.payee);
  $("co-id").textContent = req.invoiceText;
  $("co-qr").src = `/api/wallet/qr?uri=${encodeURIComponent(uri)}`;
  box.hidden = false;
  const tick = () => {
    const left = Number(req.expires) - Math.floor(Date.now() / 1000);
    if (left <= 0) { $("co-countdown").textContent = "expired"; return; }
    const h = Math.floor(left / 3600), m = Math.floor((left % 3600) / 60), sec = left % 60;
    $("co-countdown").textContent = `${h ? `${h} h ` : ""}${String(m).padStart(2, "0")} min ${String(sec).padStart(2, "0")} s`;
  };
  tick();
  setInterval(tick, 1000);
  const poll = async () => {
    try {
      const st = await (await call(`/api/wallet/invoice?uri=${encodeURIComponent(uri)}`)).json();
      $("co-status").textContent = STATUS_TEXT[st.status] || st.status;
      $("co-status").dataset.status = st.status;
      box.dataset.status = st.status;
      if (st.status !== "open" && st.status !== "underpaid") return;  // settled either way: stop asking
    } catch (err) {
      $("co-status").textContent = `Cannot tell right now (${err.message})`;
    }
    setTimeout(poll, 2000);
  };
  poll();
}

async function main() {
  if (document.body.dataset.mode === "checkout") await checkout();
  const raw = loadStored();
  if (raw) {
    await adopt(raw);
    walletView();
  } else {
    setupView();
  }
  document.body.dataset.loaded = "1";
}

main().catch(fail);
