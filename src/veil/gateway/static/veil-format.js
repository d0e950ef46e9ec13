// Veil's file format in the browser (docs/specs/gateway.md, "Browser-side crypto").
// Byte-for-byte the same as src/veil/format/{segments,caps,manifest,merkle}.py: a file sealed
// here opens with `veil get`, and the reverse. Only WebCrypto: AES-256-GCM, HKDF-SHA256, SHA-256.
// Nothing in this module talks to the network.

const enc = new TextEncoder();
const subtle = crypto.subtle;

export const SEGMENT_SIZE = 1 << 20;
export const TAG = 16;
export const LABELS = {
  segmentKey: enc.encode("veil/segment-key/v1"),
  metaKey: enc.encode("veil/meta-key/v1"),
  segmentAad: enc.encode("veil/segment/v1"),
  metaAad: enc.encode("veil/meta/v1"),
  storageIndex: enc.encode("veil/storage-index/v1"),
  manifest: enc.encode("veil/manifest/v1"),
  capChecksum: enc.encode("veil/cap-checksum/v1"),
  segmentLeaf: enc.encode("veil/segment-leaf/v1"),
  segmentNode: enc.encode("veil/segment-node/v1"),
  deleteCommitment: enc.encode("veil/delete-commitment/v1"),
};
export const AEAD_NAME = "aes256gcm-stream/v1";

/** A user-facing failure; `kind` is one of garbled, nokey, wrongkey, notfound, integrity, unavailable, refused. */
export class VeilError extends Error {
  constructor(kind, message) { super(message); this.kind = kind; }
}

// -- bytes ------------------------------------------------------------------------------------
export function concat(...parts) {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let off = 0;
  for (const p of parts) { out.set(p, off); off += p.length; }
  return out;
}

export function equal(a, b) {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}

export function hex(b) { return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join(""); }

export function toBase64(b) {
  let s = "";
  for (let i = 0; i < b.length; i += 0x8000) s += String.fromCharCode(...b.subarray(i, i + 0x8000));
  return btoa(s);
}

// -- base32: RFC 4648, lowercase, unpadded ----------------------------------------------------
const B32 = "abcdefghijklmnopqrstuvwxyz234567";

export function b32encode(data) {
  let out = "", bits = 0, value = 0;
  for (const byte of data) {
    value = (value << 8) | byte; bits += 8;
    while (bits >= 5) { out += B32[(value >>> (bits - 5)) & 31]; bits -= 5; }
  }
  if (bits > 0) out += B32[(value << (5 - bits)) & 31];
  return out;
}

export function b32decode(text) {
  const s = text.trim().toLowerCase();
  if ([1, 3, 6].includes(s.length % 8)) throw new VeilError("garbled", "impossible length");
  const out = new Uint8Array(Math.floor((s.length * 5) / 8));
  let bits = 0, value = 0, j = 0;
  for (const ch of s) {
    const v = B32.indexOf(ch);
    if (v < 0) throw new VeilError("garbled", `character ${JSON.stringify(ch)} is not base32`);
    value = ((value << 5) | v) & 0xffff; bits += 5;
    if (bits >= 8) { out[j++] = (value >>> (bits - 8)) & 0xff; bits -= 8; }
  }
  return out;
}

// -- hashes -----------------------------------------------------------------------------------
export async function sha256(data) { return new Uint8Array(await subtle.digest("SHA-256", data)); }

/** H(label, parts) = SHA-256(len(label) || label || parts...) */
export async function taggedHash(label, ...parts) {
  return sha256(concat(Uint8Array.of(label.length), label, ...parts));
}

/** Tagged leaf hash of a buffer that has 1 + label.length bytes of headroom before the data. */
async function leafInPlace(label, buf) {
  buf[0] = label.length;
  buf.set(label, 1);
  return sha256(buf);
}

// -- caps and links ---------------------------------------------------------------------------
export const KEY_SIZE = 32, SI_SIZE = 16, HASH_SIZE = 32, CHECK_SIZE = 4;

export async function checksum(kind, payload) {
  return (await taggedHash(LABELS.capChecksum, enc.encode(kind), Uint8Array.of(0), payload)).subarray(0, CHECK_SIZE);
}

export async function storageIndex(key) { return (await taggedHash(LABELS.storageIndex, key)).subarray(0, SI_SIZE); }

export async function manifestHash(bytes) { return taggedHash(LABELS.manifest, bytes); }
/** What the manifest's `delete` field holds for a deletion key (docs/specs/caps.md, "Deletion keys"). */
export async function deletionCommitment(deleteKey) { return taggedHash(LABELS.deleteCommitment, deleteKey); }

export async function pack(kind, payload) { return b32encode(concat(payload, await checksum(kind, payload))); }

export async function unpack(kind, text, size, what) {
  let raw;
  try { raw = b32decode(text); } catch (e) { throw new VeilError("garbled", `${what} is garbled: ${e.message}`); }
  if (raw.length !== size + CHECK_SIZE) throw new VeilError("garbled", `${what} is truncated or too long`);
  const payload = raw.subarray(0, size);
  if (!equal(await checksum(kind, payload), raw.subarray(size))) {
    throw new VeilError("garbled", `${what} is garbled (checksum mismatch): check that it was copied whole`);
  }
  return payload;
}

export async function verifyPart(si, mhash) { return pack("v1", concat(si, mhash)); }
export async function keyPart(key) { return pack("k1", key); }

export async function shareLink(origin, key, mhash) {
  const si = await storageIndex(key);
  return `${origin}/f/${await verifyPart(si, mhash)}#${await keyPart(key)}`;
}

export async function readCap(key, mhash) { return `veil:r1:${await pack("r1", concat(key, mhash))}`; }

/** Parse the verify part (path) and key part (fragment) of a share link. */
export async function parseLink(verifyText, keyText) {
  const v = await unpack("v1", verifyText, SI_SIZE + HASH_SIZE, "this link");
  const si = v.slice(0, SI_SIZE), mhash = v.slice(SI_SIZE);
  if (!keyText) throw new VeilError("nokey", "this link has no key: the part after '#' is missing");
  const key = await unpack("k1", keyText, KEY_SIZE, "the key in this link");
  if (!equal(await storageIndex(key), si)) {
    throw new VeilError("wrongkey", "the key in this link does not belong to this file");
  }
  return { si, mhash, key: key.slice(), verify: verifyText.toLowerCase() };
}

// -- keys and sealing -------------------------------------------------------------------------
async function derive(fileKey, info) {
  const base = await subtle.importKey("raw", fileKey, "HKDF", false, ["deriveKey"]);
  return subtle.deriveKey(
    { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info },
    base, { name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"],
  );
}

export function segmentCount(size, segsize) { return Math.max(1, Math.ceil(size / segsize)); }

export function sealedLength(index, size, segsize) {
  const nseg = segmentCount(size, segsize);
  return (index < nseg - 1 ? segsize : size - segsize * (nseg - 1)) + TAG;
}

export function segmentNonce(index, last) {
  const n = new Uint8Array(12);
  new DataView(n.buffer).setBigUint64(0, BigInt(index));
  n[11] = last ? 1 : 0;
  return n;
}

export class SegmentCipher {
  static async create(fileKey, nseg) {
    const c = new SegmentCipher();
    c.key = await derive(fileKey, LABELS.segmentKey);
    c.nseg = nseg;
    return c;
  }
  async seal(index, plain) {
    const iv = segmentNonce(index, index === this.nseg - 1);
    return new Uint8Array(await subtle.encrypt({ name: "AES-GCM", iv, additionalData: LABELS.segmentAad }, this.key, plain));
  }
  async open(index, sealed) {
    const iv = segmentNonce(index, index === this.nseg - 1);
    try {
      return new Uint8Array(await subtle.decrypt({ name: "AES-GCM", iv, additionalData: LABELS.segmentAad }, this.key, sealed));
    } catch {
      throw new VeilError("integrity", `segment ${index} failed to decrypt: the data is corrupted`);
    }
  }
}

export async function sealMetadata(fileKey, meta) {
  const body = cborEncode(meta);
  if (body.length > 8190) throw new VeilError("refused", "file name too long");
  const len = 2 + body.length;
  const plain = new Uint8Array(len + ((128 - (len % 128)) % 128));
  plain[0] = body.length >> 8; plain[1] = body.length & 0xff;
  plain.set(body, 2);
  const key = await derive(fileKey, LABELS.metaKey);
  return new Uint8Array(await subtle.encrypt({ name: "AES-GCM", iv: new Uint8Array(12), additionalData: LABELS.metaAad }, key, plain));
}

export async function openMetadata(fileKey, sealed) {
  const key = await derive(fileKey, LABELS.metaKey);
  let plain;
  try {
    plain = new Uint8Array(await subtle.decrypt({ name: "AES-GCM", iv: new Uint8Array(12), additionalData: LABELS.metaAad }, key, sealed));
  } catch {
    throw new VeilError("wrongkey", "the key in this link does not open this file");
  }
  const n = (plain[0] << 8) | plain[1];
  if (n > plain.length - 2 || plain.subarray(2 + n).some((b) => b !== 0)) throw new VeilError("integrity", "file metadata is malformed");
  const m = cborDecode(plain.subarray(2, 2 + n));
  if (typeof m !== "object" || m === null || typeof m.name !== "string" || typeof m.type !== "string" || typeof m.size !== "number") {
    throw new VeilError("integrity", "file metadata is malformed");
  }
  return m;
}

// -- Merkle root over sealed segments (RFC 6962 shape, tagged hashes) -------------------------
export class SegmentTree {
  constructor() { this.stack = []; this.count = 0; } // stack of [height, hash] perfect subtrees
  /** Leaf hash of a sealed segment; ``withRoom`` has 1 + label length bytes free before the data. */
  async addSealed(withRoom) {
    let h = await leafInPlace(LABELS.segmentLeaf, withRoom);
    let height = 0;
    while (this.stack.length && this.stack[this.stack.length - 1][0] === height) {
      const [, left] = this.stack.pop();
      h = await taggedHash(LABELS.segmentNode, left, h);
      height++;
    }
    this.stack.push([height, h]);
    this.count++;
  }
  async root() {
    let i = this.stack.length - 1;
    let h = this.stack[i][1];
    while (--i >= 0) h = await taggedHash(LABELS.segmentNode, this.stack[i][1], h);
    return h;
  }
}
export const LEAF_ROOM = 1 + LABELS.segmentLeaf.length;

// -- canonical CBOR (the subset Veil uses: int, bytes, text, array, map, bool, null) ----------
function head(major, n) {
  if (typeof n === "bigint") {
    if (n >= 0x100000000n) { const b = new Uint8Array(9); b[0] = (major << 5) | 27; new DataView(b.buffer).setBigUint64(1, n); return b; }
    n = Number(n);
  }
  if (n < 24) return Uint8Array.of((major << 5) | n);
  if (n < 0x100) return Uint8Array.of((major << 5) | 24, n);
  if (n < 0x10000) return Uint8Array.of((major << 5) | 25, n >> 8, n & 0xff);
  if (n < 0x100000000) { const b = new Uint8Array(5); b[0] = (major << 5) | 26; new DataView(b.buffer).setUint32(1, n); return b; }
  const b = new Uint8Array(9); b[0] = (major << 5) | 27; new DataView(b.buffer).setBigUint64(1, BigInt(n)); return b;
}

function cmpBytes(a, b) {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

export function cborEncode(v) {
  if (v === null) return Uint8Array.of(0xf6);
  if (v === true) return Uint8Array.of(0xf5);
  if (v === false) return Uint8Array.of(0xf4);
  if (typeof v === "number") {
    if (!Number.isSafeInteger(v)) throw new Error("only safe integers are encoded");
    return v < 0 ? head(1, -1 - v) : head(0, v);
  }
  if (typeof v === "bigint") {  // amounts and nonces (money is never a float: docs/specs/wallet.md)
    if (v < -(1n << 64n) || v >= 1n << 64n) throw new Error("integer out of CBOR's range");
    return v < 0n ? head(1, -1n - v) : head(0, v);
  }
  if (typeof v === "string") { const b = enc.encode(v); return concat(head(3, b.length), b); }
  if (v instanceof Uint8Array) return concat(head(2, v.length), v);
  if (Array.isArray(v)) return concat(head(4, v.length), ...v.map(cborEncode));
  const entries = Object.entries(v).map(([k, x]) => [cborEncode(k), cborEncode(x)]);
  entries.sort((a, b) => cmpBytes(a[0], b[0]));
  return concat(head(5, entries.length), ...entries.flat());
}

export function cborDecode(bytes) {
  let pos = 0;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fail = () => { throw new VeilError("integrity", "malformed CBOR"); };
  function arg(info) {
    if (info < 24) return info;
    if (info === 24) { if (pos + 1 > bytes.length) fail(); return bytes[pos++]; }
    if (info === 25) { if (pos + 2 > bytes.length) fail(); const x = dv.getUint16(pos); pos += 2; return x; }
    if (info === 26) { if (pos + 4 > bytes.length) fail(); const x = dv.getUint32(pos); pos += 4; return x; }
    if (info === 27) {
      if (pos + 8 > bytes.length) fail();
      const x = dv.getBigUint64(pos); pos += 8;
      if (x > BigInt(Number.MAX_SAFE_INTEGER)) fail();
      return Number(x);
    }
    return fail();
  }
  function item(depth) {
    if (depth > 16 || pos >= bytes.length) fail();
    const ib = bytes[pos++], major = ib >> 5, info = ib & 31;
    if (major === 7) {
      if (ib === 0xf4) return false;
      if (ib === 0xf5) return true;
      if (ib === 0xf6) return null;
      return fail();
    }
    const n = arg(info);
    switch (major) {
      case 0: return n;
      case 1: return -1 - n;
      case 2: case 3: {
        if (pos + n > bytes.length) fail();
        const b = bytes.slice(pos, pos + n); pos += n;
        if (major === 2) return b;
        try { return new TextDecoder("utf-8", { fatal: true }).decode(b); } catch { return fail(); }
      }
      case 4: { if (n > bytes.length) fail(); const a = []; for (let i = 0; i < n; i++) a.push(item(depth + 1)); return a; }
      case 5: {
        if (n > bytes.length) fail();
        const m = {};
        for (let i = 0; i < n; i++) {
          const k = item(depth + 1);
          if (typeof k !== "string" || Object.hasOwn(m, k)) fail();
          m[k] = item(depth + 1);
        }
        return m;
      }
      default: return fail();
    }
  }
  const v = item(0);
  if (pos !== bytes.length) fail();
  return v;
}

// -- manifest ---------------------------------------------------------------------------------
export function parseManifest(bytes) {
  if (bytes.length > 65536 || bytes.length < 5) throw new VeilError("integrity", "manifest has an impossible size");
  if (!equal(bytes.subarray(0, 4), enc.encode("VLMF")) || bytes[4] !== 1) {
    throw new VeilError("integrity", "not a Veil manifest (bad magic or version)");
  }
  const m = cborDecode(bytes.subarray(5));
  if (!equal(cborEncode(m), bytes.subarray(5))) throw new VeilError("integrity", "manifest is not in canonical form");
  const ok = typeof m === "object" && m !== null && m.si instanceof Uint8Array && m.si.length === SI_SIZE &&
    Number.isInteger(m.size) && Number.isInteger(m.segsize) && m.segsize >= 4096 && Number.isInteger(m.nseg) &&
    m.nseg === segmentCount(m.size, m.segsize) && m.meta instanceof Uint8Array && m.segroot instanceof Uint8Array &&
    m.aead === AEAD_NAME;
  if (!ok) throw new VeilError("integrity", "manifest is malformed or uses an unknown format");
  return m;
}

// -- streaming decryption ---------------------------------------------------------------------
/** Async iterable over a ReadableStream's chunks. */
export async function* chunksOf(stream) {
  const reader = stream.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    reader.releaseLock();
  }
}

/**
 * Plaintext segments from a byte stream of sealed segments ``first``, ``first+1``, … of a file.
 * Each is opened as soon as its last byte arrives, so memory stays at about one segment.
 */
export async function* openSegments(chunks, cipher, size, segsize, first = 0) {
  const nseg = segmentCount(size, segsize);
  let i = first;
  let buf = new Uint8Array(sealedLength(i, size, segsize));
  let fill = 0;
  for await (const chunk of chunks) {
    let off = 0;
    while (off < chunk.length) {
      if (i >= nseg) throw new VeilError("integrity", "the gateway sent more data than the file holds");
      const take = Math.min(buf.length - fill, chunk.length - off);
      buf.set(chunk.subarray(off, off + take), fill);
      fill += take;
      off += take;
      if (fill === buf.length) {
        yield await cipher.open(i, buf);
        i++;
        if (i < nseg) buf = new Uint8Array(sealedLength(i, size, segsize));
        fill = 0;
      }
    }
  }
  if (i < nseg) throw new VeilError("unavailable", "the download was cut short; try again");
}
