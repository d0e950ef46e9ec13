// Veil folders in the browser (docs/specs/folders.md; docs/specs/gateway.md, "Folders in the browser").
// Byte for byte the same as src/veil/format/{mutable,folder_caps,folder_seal,folder,names,folder_ops}.py:
// signed slot records (Ed25519 in WebCrypto), sealed bodies (HKDF-SHA256 + AES-256-GCM), canonical-CBOR
// listings, entry names, and the merge rule of one Put. Nothing in this module talks to the network.

import * as vf from "./veil-format.js";

const enc = new TextEncoder();
const subtle = crypto.subtle;
const { VeilError, concat, equal, taggedHash } = vf;

const L = {
  slotId: enc.encode("veil/slot-id/v1"),
  slotSig: enc.encode("veil/slot-sig/v1"),
  slotRecord: enc.encode("veil/slot-record/v1"),
  readKey: enc.encode("veil/folder-read-key/v1"),
  verifyKey: enc.encode("veil/folder-verify-key/v1"),
  listingKey: enc.encode("veil/folder-listing-key/v1"),
  indexKey: enc.encode("veil/folder-index-key/v1"),
  listingAad: enc.encode("veil/folder-listing/v1"),
  indexAad: enc.encode("veil/folder-index/v1"),
  childWriteKey: enc.encode("veil/folder-child-write-key/v1"),
  childWriteAad: enc.encode("veil/folder-child-write/v1"),
};
const RECORD_MAGIC = enc.encode("VLMS");
const BODY_MAGIC = enc.encode("VLFD");
export const MAX_PARENTS = 12, MAX_CHAIN = 8, MAX_PAYLOAD = 256 * 1024, SIG_SIZE = 64;
export const MAX_RECORD = 51 + MAX_PARENTS * 40 + SIG_SIZE + MAX_PAYLOAD;
export const ROOT = 0, PAGE = 1, PAD = 256, MAX_INDEX = 128 * 1024, MAX_LISTING = 240 * 1024, MAX_ENTRIES = 8192;
export const MAX_NAME_BYTES = 255, MAX_MIME = 128, WCAP_SIZE = 80, WRITE_FRAGMENT = "w-";
const NONCE = new Uint8Array(12);
const SIG_PREFIX = concat(Uint8Array.of(L.slotSig.length), L.slotSig);
// An Ed25519 private key in PKCS #8 is this prefix and the 32-byte seed (RFC 8410).
const PKCS8_ED25519 = Uint8Array.of(0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20);

const integrity = (m) => new VeilError("integrity", m);

function u32(n) { const b = new Uint8Array(4); new DataView(b.buffer).setUint32(0, n); return b; }
function u64(n) { const b = new Uint8Array(8); new DataView(b.buffer).setBigUint64(0, BigInt(n)); return b; }
function cmpBytes(a, b) {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}
/** Unicode code point order (as Python compares str): the order of the UTF-8 encodings. */
export function cmpNames(a, b) { return cmpBytes(enc.encode(a), enc.encode(b)); }
function codePoints(s) { return [...s].length; }

// -- keys -------------------------------------------------------------------------------------
export async function hkdf(ikm, info, salt = new Uint8Array(0)) {
  const base = await subtle.importKey("raw", ikm, "HKDF", false, ["deriveBits"]);
  return new Uint8Array(await subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt, info }, base, 256));
}
async function aes(raw) { return subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt", "decrypt"]); }
async function seal(raw, plain, aad) {
  return new Uint8Array(await subtle.encrypt({ name: "AES-GCM", iv: NONCE, additionalData: aad }, await aes(raw), plain));
}
async function open(raw, sealed, aad, what) {
  try {
    return new Uint8Array(await subtle.decrypt({ name: "AES-GCM", iv: NONCE, additionalData: aad }, await aes(raw), sealed));
  } catch {
    throw new VeilError("wrongkey", what);
  }
}

export async function readKeyOf(seed) { return hkdf(seed, L.readKey); }
export async function verifyKeyOf(readKey) { return hkdf(readKey, L.verifyKey); }
export async function slotIdOf(publicKey) { return taggedHash(L.slotId, publicKey); }
export async function recordHash(raw) { return taggedHash(L.slotRecord, raw); }

/** Whether this browser's WebCrypto has Ed25519 (Chromium 137 and later do). */
export async function ed25519Available() {
  try {
    await subtle.importKey("pkcs8", concat(PKCS8_ED25519, new Uint8Array(32)), { name: "Ed25519" }, false, ["sign"]);
    return true;
  } catch {
    return false;
  }
}

function b64url(text) {
  const s = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

/** The folder's signing key from its write seed: { key (CryptoKey), publicKey (32 bytes) }. */
export async function signerOf(seed) {
  let key;
  try {
    key = await subtle.importKey("pkcs8", concat(PKCS8_ED25519, seed), { name: "Ed25519" }, true, ["sign"]);
  } catch {
    throw new VeilError("refused", "this browser cannot sign with Ed25519 (WebCrypto), so it cannot change folders; use a current Chromium, Firefox or Safari, or `veil put`");
  }
  const jwk = await subtle.exportKey("jwk", key);
  return { key, publicKey: b64url(jwk.x) };
}

async function ed25519Verify(publicKey, message, signature) {
  try {
    const key = await subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
    return await subtle.verify({ name: "Ed25519" }, key, signature, message);
  } catch {
    return false;
  }
}

// -- caps and links ---------------------------------------------------------------------------
export async function locatorOf(slot) { return vf.pack("dl1", slot); }

/** The path and fragment of a folder link: read (key part) or write (w- and the seed). */
export async function folderHref(slot, readKey, seed = null) {
  const frag = seed ? WRITE_FRAGMENT + await vf.pack("dw1", seed) : await vf.pack("dk1", readKey);
  return `/d/${await locatorOf(slot)}#${frag}`;
}

/** Parse a folder link's path part and fragment into keys; a write link also gives the signer. */
export async function parseFolderLink(locator, fragment) {
  const slot = (await vf.unpack("dl1", locator, 32, "this folder link")).slice();
  if (!fragment) throw new VeilError("nokey", "this folder link has no key: the part after '#' is missing");
  if (fragment.startsWith(WRITE_FRAGMENT)) {
    const seed = (await vf.unpack("dw1", fragment.slice(WRITE_FRAGMENT.length), 32, "the key in this link")).slice();
    const signer = await signerOf(seed);
    if (!equal(await slotIdOf(signer.publicKey), slot)) {
      throw new VeilError("wrongkey", "the key in this link does not belong to this folder");
    }
    const readKey = await readKeyOf(seed);
    return { slot, seed, signer, readKey, verifyKey: await verifyKeyOf(readKey), writable: true };
  }
  const readKey = (await vf.unpack("dk1", fragment, 32, "the key in this link")).slice();
  return { slot, seed: null, signer: null, readKey, verifyKey: await verifyKeyOf(readKey), writable: false };
}

export async function folderReadCap(readKey, slot) { return `veil:fr1:${await vf.pack("fr1", concat(readKey, slot))}`; }

export async function parseFolderReadCap(text) {
  if (typeof text !== "string" || !text.startsWith("veil:fr1:")) throw integrity("folder entry has a cap of the wrong kind");
  const raw = await vf.unpack("fr1", text.slice(9), 64, "a child folder's cap");
  return { readKey: raw.slice(0, 32), slot: raw.slice(32) };
}

export async function parseFileReadCap(text) {
  if (typeof text !== "string" || !text.startsWith("veil:r1:")) throw integrity("folder entry has a cap of the wrong kind");
  const raw = await vf.unpack("r1", text.slice(8), 64, "a file's cap");
  return { key: raw.slice(0, 32), mhash: raw.slice(32) };
}

/** A file cap's verify part (the path of its share link, what the gateway's file API takes). */
export async function fileVerifyPart(cap) {
  const { key, mhash } = await parseFileReadCap(cap);
  return vf.verifyPart(await vf.storageIndex(key), mhash);
}

async function childVerifyCap(kind, cap) {
  if (kind === "file") return `veil:v1:${await fileVerifyPart(cap)}`;
  const { readKey, slot } = await parseFolderReadCap(cap);
  return `veil:fv1:${await vf.pack("fv1", concat(await verifyKeyOf(readKey), slot))}`;
}

/** A child folder's write seed, sealed in its parent's entry (format/folder_seal.py). */
export async function openChildWriteSeed(parentSeed, parentSlot, childSlot, wcap) {
  if (!(wcap instanceof Uint8Array) || wcap.length !== WCAP_SIZE) throw integrity("sealed child write cap has the wrong length");
  const key = await hkdf(parentSeed, L.childWriteKey, wcap.subarray(0, 32));
  const seed = await open(key, wcap.subarray(32), concat(L.childWriteAad, parentSlot, childSlot), "the child folder's write key does not open");
  const signer = await signerOf(seed);
  if (!equal(await slotIdOf(signer.publicKey), childSlot)) throw integrity("sealed child write cap belongs to another folder");
  return seed;
}

// -- signed slot records (format/mutable.py) --------------------------------------------------
export function checkstringText(cs) { return cs ? `${cs.seq}-${vf.hex(cs.hash)}` : "0"; }

export function parseCheckstring(text) {
  if (text === "0") return null;
  const m = /^([0-9]{1,19})-([0-9a-f]{64})$/.exec(text || "");
  if (!m || Number(m[1]) < 1 || !Number.isSafeInteger(Number(m[1]))) throw integrity("bad checkstring");
  return { seq: Number(m[1]), hash: Uint8Array.from(m[2].match(/../g), (h) => parseInt(h, 16)) };
}

function sameCs(a, b) { return a.seq === b.seq && equal(a.hash, b.hash); }
export function hasCs(list, cs) { return list.some((x) => sameCs(x, cs)); }

/** Size, magic, version, lengths, sequence numbers, key-to-slot binding, then the signature. */
export async function parseRecord(raw, slot) {
  if (raw.length > MAX_RECORD) throw integrity("folder version is too large");
  if (raw.length < 47 || !equal(raw.subarray(0, 4), RECORD_MAGIC)) throw integrity("not a folder version (bad magic)");
  if (raw[4] !== 1) throw integrity(`folder version format ${raw[4]} is not supported`);
  const P = raw[45], C = raw[46];
  if (P > MAX_PARENTS || C > P) throw integrity("folder version has too many parents");
  const h = 51 + 40 * P;
  if (raw.length < h) throw integrity("folder version header is truncated");
  const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const n = dv.getUint32(h - 4);
  if (n > MAX_PAYLOAD || raw.length !== h + n + SIG_SIZE) throw integrity("folder version length does not match its header");
  const seq = dv.getBigUint64(37);
  if (seq < 1n || seq > BigInt(Number.MAX_SAFE_INTEGER)) throw integrity("folder version number out of range");
  const parents = [];
  for (let i = 0; i < P; i++) {
    const ps = dv.getBigUint64(47 + 40 * i);
    if (ps < 1n || ps >= seq) throw integrity("folder version names a parent that is not older");
    parents.push({ seq: Number(ps), hash: raw.slice(55 + 40 * i, 87 + 40 * i) });
  }
  const publicKey = raw.slice(5, 37);
  if (!equal(await slotIdOf(publicKey), slot)) throw integrity("the gateway sent a version of another folder");
  const body = raw.subarray(0, raw.length - SIG_SIZE), sig = raw.subarray(raw.length - SIG_SIZE);
  if (!await ed25519Verify(publicKey, concat(SIG_PREFIX, body), sig)) throw integrity("the folder's signature does not verify: it was forged or damaged");
  const hash = await recordHash(raw);
  return { publicKey, seq: Number(seq), parents, chainLen: C, chain: parents.slice(0, C), payload: raw.slice(h, h + n), raw, hash, cs: { seq: Number(seq), hash } };
}

export async function signRecord(signer, seq, payload, chain = [], merged = []) {
  const parents = [...chain, ...merged];
  if (parents.length > MAX_PARENTS || parents.some((p) => !(p.seq >= 1 && p.seq < seq))) throw new Error("bad parents");
  if (payload.length > MAX_PAYLOAD) throw new VeilError("refused", "the folder listing is too large for one version");
  const body = concat(RECORD_MAGIC, Uint8Array.of(1), signer.publicKey, u64(seq), Uint8Array.of(parents.length, chain.length),
    ...parents.map((p) => concat(u64(p.seq), p.hash)), u32(payload.length), payload);
  const sig = new Uint8Array(await subtle.sign({ name: "Ed25519" }, signer.key, concat(SIG_PREFIX, body)));
  const raw = concat(body, sig);
  return { raw, seq, cs: { seq, hash: await recordHash(raw) } };
}

// -- sealed bodies (format/folder_seal.py) ----------------------------------------------------
function pad(data) {
  const n = 4 + data.length;
  const out = new Uint8Array(n + ((PAD - (n % PAD)) % PAD));
  out.set(u32(data.length));
  out.set(data, 4);
  return out;
}

function unpad(data) {
  if (data.length < 4 || data.length % PAD) throw integrity("sealed folder body has bad padding");
  const n = new DataView(data.buffer, data.byteOffset).getUint32(0);
  if (4 + n > data.length || data.subarray(4 + n).some((b) => b !== 0)) throw integrity("sealed folder body has bad padding");
  return data.subarray(4, 4 + n);
}

const aad = (label, head, slot, seq) => concat(label, head, slot, u64(seq));

export async function deriveIndex(listing) {
  if (listing.pages) return listing.pages.map((p) => p.cap);
  const out = [];
  for (const e of listing.entries) out.push(await childVerifyCap(e.kind, e.cap));
  return out;
}

export function listingValue(listing) {
  if (listing.pages) return { pages: listing.pages.map((p) => ({ first: p.first, count: p.count, cap: p.cap })) };
  return { entries: listing.entries.map(entryValue) };
}

function entryValue(e) {
  const v = { name: e.name, kind: e.kind, cap: e.cap, size: e.size };
  if (e.mtime !== undefined && e.mtime !== null) v.mtime = e.mtime;
  if (e.mime !== undefined && e.mime !== null) v.mime = e.mime;
  if (e.wcap) v.wcap = e.wcap;
  return v;
}

export async function sealBody(readKey, slot, seq, listing, role = ROOT, salt = null) {
  if ((role === PAGE) !== (seq === 0)) throw new Error("a root is sealed with its sequence number, a page with 0");
  const s = salt || crypto.getRandomValues(new Uint8Array(32));
  const head = concat(BODY_MAGIC, Uint8Array.of(1, role), s);
  const verifyKey = await verifyKeyOf(readKey);
  const index = pad(vf.cborEncode(await deriveIndex(listing)));
  const sealedIndex = await seal(await hkdf(verifyKey, L.indexKey, s), index, aad(L.indexAad, head, slot, seq));
  const sealedListing = await seal(await hkdf(readKey, L.listingKey, s), pad(vf.cborEncode(listingValue(listing))),
    aad(L.listingAad, head, slot, seq));
  const out = concat(head, u32(sealedIndex.length), sealedIndex, sealedListing);
  if (out.length > MAX_PAYLOAD) throw new VeilError("refused", "this folder is too big to change in the browser; use `veil put`");
  return out;
}

function split(data, role) {
  if (data.length > MAX_PAYLOAD) throw integrity("sealed folder body is too large");
  if (data.length < 42 || !equal(data.subarray(0, 4), BODY_MAGIC)) throw integrity("not a sealed folder body (bad magic)");
  if (data[4] !== 1) throw integrity(`sealed folder body version ${data[4]} is not supported`);
  if (data[5] !== role) throw integrity("sealed folder body has the wrong role");
  const n = new DataView(data.buffer, data.byteOffset).getUint32(38);
  if (n > MAX_INDEX || 42 + n + 16 > data.length || n < 16) throw integrity("sealed folder body has a bad index length");
  return [data.subarray(0, 38), data.subarray(42, 42 + n), data.subarray(42 + n)];
}

export async function openIndex(verifyKey, slot, seq, data, role = ROOT) {
  const [head, sealedIndex] = split(data, role);
  const plain = await open(await hkdf(verifyKey, L.indexKey, head.subarray(6, 38)), sealedIndex,
    aad(L.indexAad, head, slot, seq), "the key does not open this folder, or the folder was tampered with");
  const raw = unpad(plain);
  const v = vf.cborDecode(raw);
  if (!equal(vf.cborEncode(v), raw)) throw integrity("folder index is not canonical CBOR");
  if (!Array.isArray(v) || !v.every((c) => typeof c === "string" && codePoints(c) <= 256)) throw integrity("folder index must be a list of caps");
  return v;
}

/** The listing, checked against the index sealed beside it (readers and verifiers see the same children). */
export async function openBody(readKey, slot, seq, data, role = ROOT) {
  const [head, , sealedListing] = split(data, role);
  const plain = await open(await hkdf(readKey, L.listingKey, head.subarray(6, 38)), sealedListing,
    aad(L.listingAad, head, slot, seq), "the key in this link does not open this folder, or the folder was tampered with");
  const listing = await parseListing(unpad(plain));
  const index = await openIndex(await verifyKeyOf(readKey), slot, seq, data, role);
  const derived = await deriveIndex(listing);
  if (index.length !== derived.length || index.some((c, i) => c !== derived[i])) throw integrity("folder index does not match its listing");
  return listing;
}

// -- listings (format/folder.py) --------------------------------------------------------------
function onlyKeys(m, allowed, what) {
  if (typeof m !== "object" || m === null || Array.isArray(m) || m instanceof Uint8Array) throw integrity(`${what}: expected a map`);
  for (const k of Object.keys(m)) if (!allowed.includes(k)) throw integrity(`${what}: unknown field`);
  return m;
}
function str(m, k, what, max) {
  const v = m[k];
  if (typeof v !== "string" || codePoints(v) > max) throw integrity(`${what}: field '${k}' must be a string of at most ${max} characters`);
  return v;
}
function int(m, k, what, lo, hi) {
  const v = m[k];
  if (typeof v !== "number" || !Number.isInteger(v) || v < lo || v > hi) throw integrity(`${what}: field '${k}' must be an integer`);
  return v;
}

async function parseEntry(v) {
  const w = "folder entry";
  const m = onlyKeys(v, ["name", "kind", "cap", "size", "mtime", "mime", "wcap"], w);
  const kind = str(m, "kind", w, 16);
  if (kind !== "file" && kind !== "folder") throw integrity("folder entry of unknown kind (symlinks and devices are not allowed)");
  const e = { name: str(m, "name", w, MAX_NAME_BYTES), kind, cap: str(m, "cap", w, 256), size: int(m, "size", w, 0, Number.MAX_SAFE_INTEGER) };
  try {
    if (kind === "file") await parseFileReadCap(e.cap); else await parseFolderReadCap(e.cap);
  } catch (err) {
    throw integrity(`folder entry has a garbled cap: ${err.message}`);
  }
  if ("mtime" in m) e.mtime = int(m, "mtime", w, -Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  if ("mime" in m) e.mime = str(m, "mime", w, MAX_MIME);
  if ("wcap" in m) {
    if (kind !== "folder" || !(m.wcap instanceof Uint8Array) || m.wcap.length !== WCAP_SIZE) throw integrity(`${w}: field 'wcap' must be ${WCAP_SIZE} bytes, on a folder`);
    e.wcap = m.wcap;
  }
  return e;
}

function increasing(names, what) {
  for (let i = 1; i < names.length; i++) {
    if (cmpNames(names[i - 1], names[i]) >= 0) throw integrity(`folder listing: ${what} names are not sorted and unique`);
  }
}

export async function parseListing(bytes) {
  if (bytes.length > MAX_LISTING) throw integrity("folder listing is too large");
  const v = vf.cborDecode(bytes);
  if (!equal(vf.cborEncode(v), bytes)) throw integrity("folder listing is not canonical CBOR");
  const keys = typeof v === "object" && v !== null ? Object.keys(v) : [];
  if (keys.length !== 1 || !["entries", "pages"].includes(keys[0])) throw integrity("folder listing must hold exactly one of 'entries' or 'pages'");
  const items = v[keys[0]];
  if (!Array.isArray(items) || items.length > MAX_ENTRIES) throw integrity("folder listing is too long");
  if (keys[0] === "pages") {
    if (!items.length) throw integrity("folder page index is empty");
    const pages = [];
    for (const x of items) {
      const m = onlyKeys(x, ["first", "count", "cap"], "folder page reference");
      const p = { first: str(m, "first", "page", MAX_NAME_BYTES), count: int(m, "count", "page", 0, Number.MAX_SAFE_INTEGER), cap: str(m, "cap", "page", 256) };
      await parseFileReadCap(p.cap);
      pages.push(p);
    }
    increasing(pages.map((p) => p.first), "page");
    return { pages };
  }
  const entries = [];
  for (const x of items) entries.push(await parseEntry(x));
  increasing(entries.map((e) => e.name), "entry");
  return { entries };
}

// -- names (format/names.py) ------------------------------------------------------------------
/** Why ``name`` may not be an entry's name, or null. */
export function nameProblem(name) {
  if (typeof name !== "string") return "not a string";
  if (!name) return "empty name";
  if (name === "." || name === "..") return `${JSON.stringify(name)} is not a name`;
  if (!name.isWellFormed()) return "not valid Unicode (lone surrogate)";
  if (enc.encode(name).length > MAX_NAME_BYTES) return `longer than ${MAX_NAME_BYTES} bytes`;
  for (const ch of name) {
    if (ch === "/" || ch === "\\") return `contains ${JSON.stringify(ch)} (a path separator)`;
    if (ch === "\0") return "contains NUL";
    if (/\p{Cc}/u.test(ch)) return `contains the control character U+${ch.codePointAt(0).toString(16).toUpperCase().padStart(4, "0")}`;
  }
  if (name.normalize("NFC") !== name) return "not in Unicode normal form C";
  return null;
}

/** The collision key (Python's casefold is approximated by toLowerCase: see gateway.md). */
export function fold(name) { return name.normalize("NFD").toLowerCase().normalize("NFC"); }

/** A name made safe to show in a message: control characters escaped, length bounded. */
export function shown(name) {
  const s = typeof name === "string" ? name : String(name);
  return JSON.stringify([...s].slice(0, 300).map((c) => (/[\p{Cc}\p{Cs}]/u.test(c) ? `\\x${c.codePointAt(0).toString(16).padStart(2, "0")}` : c)).join(""));
}

/** names.local_names: safe, distinct (after folding) local names, with a warning per refusal or rename. */
export function localNames(names) {
  const taken = new Set();
  return names.map((name) => {
    const problem = nameProblem(name);
    if (problem) return { name, local: null, warning: `refused entry ${shown(name)}: ${problem}` };
    let local = name;
    for (let n = 2; taken.has(fold(local)); n++) {
      const dot = name.lastIndexOf(".");
      local = dot > 0 ? `${name.slice(0, dot)} (${n})${name.slice(dot)}` : `${name} (${n})`;
    }
    if (nameProblem(local)) return { name, local: null, warning: `refused entry ${shown(name)}: it collides with another entry` };
    taken.add(fold(local));
    return { name, local, warning: local === name ? null : `renamed ${shown(name)} to ${shown(local)}: it collides with another entry` };
  });
}

// -- one Put, merged onto whatever version won (format/folder_ops.py) --------------------------
export function sameEntry(a, b) {
  if (!a || !b) return !a && !b;
  return a.name === b.name && a.kind === b.kind && a.cap === b.cap && a.size === b.size &&
    (a.mtime ?? null) === (b.mtime ?? null) && (a.mime ?? null) === (b.mime ?? null);
}

/** ``entries`` with ``entry`` put under its name, where the writer saw ``old`` (null: absent). */
export function applyPut(entries, entry, old) {
  const problem = nameProblem(entry.name);
  if (problem) throw new VeilError("refused", `bad entry name ${shown(entry.name)}: ${problem}`);
  const cur = entries.find((e) => e.name === entry.name) || null;
  if (sameEntry(cur, entry)) return entries;
  if (!sameEntry(cur, old)) throw new VeilError("conflict", `${shown(entry.name)} was changed by another writer at the same time; your change was not saved`);
  if (!cur) {
    const other = entries.find((e) => fold(e.name) === fold(entry.name));
    if (other) throw new VeilError("refused", `${shown(entry.name)} collides with the existing entry ${shown(other.name)} (same name once normalised and case-folded)`);
  }
  return [...entries.filter((e) => e.name !== entry.name), entry].sort((a, b) => cmpNames(a.name, b.name));
}

/** The parents of a new version built on ``base`` (mutable_cas.CasWrite.attempt): its base chain
 * with the anchor, then the writer's own earlier attempts whose base the new base contains. */
export function parentsFor(base, anchor, own) {
  const chain = [base.cs, ...base.chain].slice(0, MAX_CHAIN);
  if (anchor && !hasCs(chain, anchor)) {
    if (chain.length === MAX_CHAIN) chain[chain.length - 1] = anchor; else chain.push(anchor);
  }
  const lineage = [base.cs, ...base.parents];
  const merged = [];
  for (const a of [...own].reverse()) {
    if (!hasCs(chain, a.cs) && !hasCs(merged, a.cs) && (!a.base || hasCs(lineage, a.base))) merged.push(a.cs);
  }
  return { chain, merged: merged.slice(0, MAX_PARENTS - chain.length) };
}
