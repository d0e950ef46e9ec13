// Veil's wallet formats in the browser (docs/specs/wallet.md), byte for byte the same as
// src/veil/client/wallet.py (the key file), src/veil/crypto/passphrase.py (argon2id + AES-256-GCM),
// src/veil/ledger/address.py, amount.py and tx.py (canonical-CBOR transfers signed with Ed25519):
// a key file made here opens with `veil wallet import`, and a transaction signed here is the one
// `veil wallet send` would sign. WebCrypto for SHA-256, AES-256-GCM and Ed25519; argon2id (which
// WebCrypto lacks) from the vendored @noble/hashes. Nothing in this module talks to the network.

import { argon2idAsync } from "./vendor/noble-hashes/argon2.js";
import { VeilError, b32decode, b32encode, cborDecode, cborEncode, concat, equal, taggedHash } from "./veil-format.js";

const enc = new TextEncoder();
const subtle = crypto.subtle;

export const LABELS = {
  walletAad: enc.encode("veil/wallet/v1"),
  address: enc.encode("veil/address/v1"),
  addressChecksum: enc.encode("veil/address-checksum/v1"),
  txSig: enc.encode("veil/tx-sig/v1"),
  txId: enc.encode("veil/tx-id/v1"),
};

// -- passphrase seal: "VLPW" | 1 | t u32 | m_kib u32 | p u8 | salt 16 | nonce 12 | AES-GCM(...) ----------
export const PW = { magic: enc.encode("VLPW"), version: 1, saltSize: 16, nonceSize: 12, fixed: 14 };
PW.headerSize = PW.fixed + PW.saltSize + PW.nonceSize;
// The CLI's defaults (OWASP's argon2id recommendation) and the bounds every reader enforces.
export const COST = { t: 3, m: 64 * 1024, p: 1 };
const MAX_T = 16, MAX_M = 256 * 1024, MAX_P = 8, MAX_WORK = 16 * 64 * 1024, MAX_SECRET = 1 << 20;

export function costInBounds(t, m, p) {
  return t >= 1 && t <= MAX_T && p >= 1 && p <= MAX_P && 8 * p <= m && m <= MAX_M && t * m <= MAX_WORK;
}

const wrongPassphrase = () => new VeilError("wrongpass", "wrong passphrase, or the wallet file is damaged");

async function derive(passphrase, salt, t, m, p, onProgress) {
  const key = await argon2idAsync(enc.encode(passphrase), salt, { t, m, p, dkLen: 32, maxmem: (MAX_M + 1024) * 1024, onProgress });
  return subtle.importKey("raw", key, "AES-GCM", false, ["encrypt", "decrypt"]);
}

/** Encrypt `secret` under `passphrase`; `context` must be given again to open. `opts.salt`/`opts.nonce` for vectors only. */
export async function seal(passphrase, secret, context, opts = {}) {
  const { t, m, p } = { ...COST, ...(opts.cost || {}) };
  if (!costInBounds(t, m, p)) throw new Error("argon2 cost parameters out of range");
  if (secret.length > MAX_SECRET) throw new Error("secret too large");
  const salt = opts.salt || crypto.getRandomValues(new Uint8Array(PW.saltSize));
  const nonce = opts.nonce || crypto.getRandomValues(new Uint8Array(PW.nonceSize));
  const fixed = new Uint8Array(PW.fixed);
  const dv = new DataView(fixed.buffer);
  fixed.set(PW.magic, 0); fixed[4] = PW.version; dv.setUint32(5, t); dv.setUint32(9, m); fixed[13] = p;
  const header = concat(fixed, salt, nonce);
  const key = await derive(passphrase, salt, t, m, p, opts.onProgress);
  const sealed = await subtle.encrypt({ name: "AES-GCM", iv: nonce, additionalData: concat(context, header) }, key, secret);
  return concat(header, new Uint8Array(sealed));
}

/** What `seal` made (and passphrase.py's seal): the header is checked, costs bounded, before argon2 runs. */
export async function openSealed(passphrase, blob, context, onProgress) {
  if (blob.length < PW.headerSize + 16 || blob.length > PW.headerSize + 16 + MAX_SECRET) {
    throw new VeilError("integrity", "not a passphrase-sealed object (bad size)");
  }
  if (!equal(blob.subarray(0, 4), PW.magic)) throw new VeilError("integrity", "not a passphrase-sealed object (bad magic)");
  if (blob[4] !== PW.version) throw new VeilError("integrity", `passphrase-sealed object version ${blob[4]} is not supported`);
  const dv = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const t = dv.getUint32(5), m = dv.getUint32(9), p = blob[13];
  if (!costInBounds(t, m, p)) {
    throw new VeilError("integrity", `this file asks for argon2 costs out of range (t=${t}, m=${m} KiB, p=${p}): refusing to run it`);
  }
  const salt = blob.subarray(PW.fixed, PW.fixed + PW.saltSize);
  const nonce = blob.subarray(PW.fixed + PW.saltSize, PW.headerSize);
  const key = await derive(passphrase, salt, t, m, p, onProgress);
  try {
    const aad = concat(context, blob.subarray(0, PW.headerSize));
    return new Uint8Array(await subtle.decrypt({ name: "AES-GCM", iv: nonce, additionalData: aad }, key, blob.subarray(PW.headerSize)));
  } catch {
    throw wrongPassphrase();
  }
}

// -- Ed25519 (WebCrypto) ------------------------------------------------------------------------
// An Ed25519 private key in PKCS #8 is this prefix and the 32-byte seed (RFC 8410).
const PKCS8_ED25519 = Uint8Array.of(0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20);

function b64url(text) {
  const s = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

/** The account's signer from its seed: { key (a non-extractable CryptoKey), publicKey (32 bytes) }. */
export async function signerOf(seed) {
  let key, publicKey;
  try {
    const pkcs8 = concat(PKCS8_ED25519, seed);
    const probe = await subtle.importKey("pkcs8", pkcs8, { name: "Ed25519" }, true, ["sign"]);
    publicKey = b64url((await subtle.exportKey("jwk", probe)).x);
    key = await subtle.importKey("pkcs8", pkcs8, { name: "Ed25519" }, false, ["sign"]);
    pkcs8.fill(0);
  } catch {
    throw new VeilError("refused", "this browser cannot sign with Ed25519 (WebCrypto); use a current Chromium, Firefox or Safari, or the `veil wallet` command");
  }
  return { key, publicKey };
}

export async function ed25519Verify(publicKey, message, signature) {
  try {
    const key = await subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
    return await subtle.verify({ name: "Ed25519" }, key, signature, message);
  } catch {
    return false;
  }
}

// -- the key file: "VLWALLET" | 1 | public key 32 | seal(passphrase, cbor{seed, created}, "veil/wallet/v1" || pub) --
export const WALLET = { magic: enc.encode("VLWALLET"), version: 1, maxFile: 4096 };
WALLET.head = WALLET.magic.length + 1 + 32;

/** The public key and sealed part of a key file, checked (size, magic, version) without the passphrase. */
export function parseWalletFile(raw) {
  if (!(raw instanceof Uint8Array) || raw.length > WALLET.maxFile || raw.length < WALLET.head || !equal(raw.subarray(0, 8), WALLET.magic)) {
    throw new VeilError("notwallet", "this is not a Veil wallet key file");
  }
  if (raw[8] !== WALLET.version) throw new VeilError("notwallet", `wallet version ${raw[8]} is not supported`);
  return { publicKey: raw.slice(9, WALLET.head), sealed: raw.subarray(WALLET.head) };
}

/** A new key file for `seed` (32 bytes). `opts`: cost, created (unix seconds), salt, nonce (the last two for vectors). */
export async function makeWalletFile(passphrase, seed, opts = {}) {
  if (!passphrase) throw new VeilError("refused", "the passphrase must not be empty");
  const signer = await signerOf(seed);
  const created = opts.created ?? Math.floor(Date.now() / 1000);
  const plain = cborEncode({ seed, created });
  const sealed = await seal(passphrase, plain, concat(LABELS.walletAad, signer.publicKey), opts);
  plain.fill(0);
  return { file: concat(WALLET.magic, Uint8Array.of(WALLET.version), signer.publicKey, sealed), signer };
}

/** Open a key file: { signer, publicKey, created }; "wrongpass" on a wrong passphrase or damage. */
export async function openWalletFile(passphrase, raw, onProgress) {
  const { publicKey, sealed } = parseWalletFile(raw);
  const plain = await openSealed(passphrase, sealed, concat(LABELS.walletAad, publicKey), onProgress);
  let v;
  try { v = cborDecode(plain); } catch { throw new VeilError("integrity", "the wallet's contents are malformed"); }
  if (!equal(cborEncode(v), plain) || !(v.seed instanceof Uint8Array) || v.seed.length !== 32) {
    throw new VeilError("integrity", "the wallet's contents are malformed");
  }
  const signer = await signerOf(v.seed);
  v.seed.fill(0); plain.fill(0);
  if (!equal(signer.publicKey, publicKey)) throw new VeilError("integrity", "the wallet is damaged (its key does not match)");
  return { signer, publicKey, created: v.created };
}

// -- addresses: "vb1" + base32(H("veil/address/v1", pub) || H("veil/address-checksum/v1", addr)[0:4]) --
export const ADDRESS_PREFIX = "vb1";

export async function addressOf(publicKey) { return taggedHash(LABELS.address, publicKey); }

export async function encodeAddress(addr) {
  const check = (await taggedHash(LABELS.addressChecksum, addr)).subarray(0, 4);
  return ADDRESS_PREFIX + b32encode(concat(addr, check));
}

/** The 32 address bytes of a typed address; "garbled" with the reason (prefix, characters, length, checksum). */
export async function decodeAddress(text) {
  const s = String(text).trim().toLowerCase();
  const shown = JSON.stringify(String(text).slice(0, 80));
  if (!s.startsWith(ADDRESS_PREFIX)) throw new VeilError("garbled", `not a Veil address (it must start with ${ADDRESS_PREFIX}): ${shown}`);
  let raw;
  try { raw = b32decode(s.slice(ADDRESS_PREFIX.length)); } catch { throw new VeilError("garbled", `not a Veil address (bad characters): ${shown}`); }
  if (raw.length !== 36) throw new VeilError("garbled", `not a Veil address (wrong length): ${shown}`);
  const addr = raw.slice(0, 32);
  if ((await encodeAddress(addr)) !== s) throw new VeilError("garbled", `address checksum does not match (mistyped?): ${shown}`);
  return addr;
}

// -- amounts: BigInt of the smallest unit (10^9 per VEIL); never a float ------------------------
export const DECIMALS = 9, UNIT = 10n ** 9n, MAX_AMOUNT = 2n ** 63n - 1n, SYMBOL = "VEIL";

/** "12.5" -> 12500000000n, exactly as ledger/amount.py's parse_amount (signs, exponents, >9 places refused). */
export function parseAmount(text) {
  const bad = (why) => new VeilError("garbled", `${why}: ${JSON.stringify(String(text))}`);
  let s = String(text).trim().replaceAll("_", "");
  if (s.toUpperCase().endsWith(SYMBOL)) s = s.slice(0, -SYMBOL.length).trim();
  const dot = s.indexOf(".");
  const whole = dot < 0 ? s : s.slice(0, dot), frac = dot < 0 ? "" : s.slice(dot + 1);
  const digits = (x) => /^[0-9]*$/.test(x);
  if (!whole && !frac) throw bad("not an amount");
  if (!digits(whole) || !digits(frac)) throw bad("not an amount (digits and one '.' only)");
  if (dot >= 0 && !frac) throw bad("not an amount (nothing after the '.')");
  if (frac.length > DECIMALS) throw bad(`at most ${DECIMALS} decimal places`);
  if (whole.length > 20) throw bad("amount too large");
  const value = BigInt(whole || "0") * UNIT + BigInt((frac || "0").padEnd(DECIMALS, "0"));
  if (value > MAX_AMOUNT) throw bad("amount too large");
  return value;
}

/** 12500000000n -> "12.5", exact for every integer (ledger/amount.py's format_amount). */
export function formatAmount(value) {
  const v = BigInt(value);
  const sign = v < 0n ? "-" : "", a = v < 0n ? -v : v;
  const whole = a / UNIT, frac = a % UNIT;
  if (frac === 0n) return `${sign}${whole}`;
  return `${sign}${whole}.` + frac.toString().padStart(DECIMALS, "0").replace(/0+$/, "");
}

// -- transactions: ["veil-tx", 1, body, sig], sig = Ed25519(len(label) || label || body) ---------
export const TX = { magic: "veil-tx", version: 1, maxMemo: 256 };

/** The body map of a transfer; integers are BigInt. `extra` holds further optional fields (e.g. invoice). */
export function transferBody({ chain, publicKey, nonce, fee, to, amount, memo = null, extra = {} }) {
  if (memo !== null && [...memo].length > TX.maxMemo) throw new VeilError("refused", `the memo may have at most ${TX.maxMemo} characters`);
  const amt = BigInt(amount);
  if (amt <= 0n || amt > MAX_AMOUNT) throw new VeilError("refused", "the amount must be more than 0");
  const body = { chain, type: "transfer", pub: publicKey, nonce: BigInt(nonce), fee: BigInt(fee), to, amount: amt, ...extra };
  if (memo !== null && memo !== "") body.memo = memo;
  return body;
}

/** Sign a body with the account's signer: { raw (wire bytes), id (tx id), body (encoded body) }. */
export async function signTx(signer, bodyMap) {
  const body = cborEncode(bodyMap);
  const sig = new Uint8Array(await subtle.sign({ name: "Ed25519" }, signer.key, concat(Uint8Array.of(LABELS.txSig.length), LABELS.txSig, body)));
  const raw = cborEncode([TX.magic, TX.version, body, sig]);
  return { raw, body, id: await taggedHash(LABELS.txId, raw) };
}

// -- payment requests: veil:pay?v=1&to=…&amount=…[&memo=…]&inv=…&exp=…&c=… (ledger/invoice.py) ------
export const PAY = { prefix: "veil:pay?", version: 1, checkSize: 8, maxUri: 2048, idSize: 16,
                     keys: ["v", "to", "amount", "memo", "inv", "exp", "c"], maxExpiry: 2n ** 40n };
const PAY_LABEL = enc.encode("veil/pay-uri-checksum/v1");

async function payChecksum(r) {
  const fields = { v: PAY.version, to: r.payee, amount: r.amount, inv: r.invoice, exp: r.expires };
  if (r.memo !== null) fields.memo = r.memo;
  return (await taggedHash(PAY_LABEL, cborEncode(fields))).subarray(0, PAY.checkSize);
}

/** Python's quote(s, safe=""): encodeURIComponent plus !'()* */
function quote(s) { return encodeURIComponent(s).replace(/[!'()*]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase()); }

export async function paymentUri(r) {
  const memo = r.memo !== null ? `&memo=${quote(r.memo)}` : "";
  return `${PAY.prefix}v=${PAY.version}&to=${await encodeAddress(r.payee)}&amount=${r.amount}${memo}` +
    `&inv=${b32encode(r.invoice)}&exp=${r.expires}&c=${b32encode(await payChecksum(r))}`;
}

/** { payee, amount (BigInt), invoice (16 bytes), invoiceText, expires (BigInt, unix s), memo|null }; "garbled" on any fault. */
export async function parsePaymentUri(text) {
  const bad = (m) => new VeilError("garbled", `payment request: ${m}`);
  const s = String(text).trim();
  if (s.length > PAY.maxUri) throw bad(`${s.length} characters, over ${PAY.maxUri}`);
  if (!s.startsWith(PAY.prefix)) throw new VeilError("garbled", `not a Veil payment request (it must start with ${PAY.prefix})`);
  const got = new Map();
  for (const part of s.slice(PAY.prefix.length).split("&")) {
    const eq = part.indexOf("=");
    const key = eq < 0 ? part : part.slice(0, eq);
    if (eq < 0 || !PAY.keys.includes(key)) throw bad(`unknown part ${JSON.stringify(part.slice(0, 30))}`);
    if (got.has(key)) throw bad(`${JSON.stringify(key)} given twice`);
    got.set(key, part.slice(eq + 1));
  }
  if (got.get("v") !== String(PAY.version)) throw bad(`version ${JSON.stringify(got.get("v") ?? "?")} is not supported (this wallet reads v=${PAY.version})`);
  const missing = PAY.keys.filter((k) => k !== "memo" && !got.has(k));
  if (missing.length) throw bad(`missing ${missing.join(", ")} (was it cut short?)`);
  let payee;
  try { payee = await decodeAddress(got.get("to")); } catch (e) { throw bad(e.message); }
  const uint = (t, what, hi) => {
    if (!/^[0-9]{1,20}$/.test(t) || (t.length > 1 && t[0] === "0")) throw bad(`${what} is not a whole number`);
    const v = BigInt(t);
    if (v <= 0n || v > hi) throw bad(`${what} ${v} is out of range`);
    return v;
  };
  const amount = uint(got.get("amount"), "amount", MAX_AMOUNT);
  const expires = uint(got.get("exp"), "expiry", PAY.maxExpiry);
  let memo = null;
  if (got.has("memo")) {
    try { memo = decodeURIComponent(got.get("memo")); } catch { throw bad("memo is not UTF-8"); }
    if (quote(memo) !== got.get("memo")) throw bad("memo is not in its one percent-encoded spelling");
    if (!memo || [...memo].length > TX.maxMemo) throw bad(`memo must be 1..${TX.maxMemo} characters`);
  }
  let invoice, check;
  try { invoice = b32decode(got.get("inv")); check = b32decode(got.get("c")); } catch { throw bad("garbled invoice id or checksum"); }
  if (invoice.length !== PAY.idSize || check.length !== PAY.checkSize || b32encode(invoice) !== got.get("inv").toLowerCase() ||
      b32encode(check) !== got.get("c").toLowerCase()) {
    throw bad("garbled invoice id or checksum");
  }
  const req = { payee, amount, invoice, invoiceText: b32encode(invoice), expires, memo };
  if (!equal(await payChecksum(req), check)) throw bad("it was altered (its checksum does not match): ask the payee for it again");
  return req;
}
