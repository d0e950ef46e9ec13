// Encrypt-and-upload of one file, in the page (docs/specs/gateway.md, "Browser-side crypto"): the
// file key is made here; the gateway receives sealed segments and sealed metadata only.
//
// Bounded memory whatever the size: the File is read a batch at a time (file.slice), each batch
// is sealed, written into one of IN_FLIGHT slot files of the origin-private file system (OPFS),
// and sent as that file (a disk-backed Blob) by XMLHttpRequest; a slot is reused once its request
// is over, so nothing grows with the file. Why not simpler bodies: a Blob made from the bytes
// lives in the browser's blob store until the garbage collector notices its small JS wrapper,
// which it has no reason to hurry (uploads over ~450 MB per tab failed with
// ERR_BLOB_OUT_OF_MEMORY), and an ArrayBuffer body goes through a small pipe, measured 30x slower
// than a Blob here. Without OPFS the page falls back to in-memory Blob bodies.
//
// Resumable (docs/specs/gateway.md, "Upload session"): when a batch fails for want of a
// connection, every batch in flight is cancelled, the page asks the gateway where the session
// stands (GET /api/uploads/{id} -> next) with a growing pause, and seals and sends again from
// there. Sealing is deterministic (same key, same index), so the segment tree takes each segment
// once and repeats are skipped by the gateway.

import * as vf from "./veil-format.js";
import { call, describeHttp, human } from "./common.js";

const BATCH_SEGMENTS = 4;
const IN_FLIGHT = 3;
const RETRY_FOR_MS = 15 * 60 * 1000; // keep trying to reach the gateway this long after a cut
const RETRY_PAUSES_MS = [500, 1000, 2000, 4000, 8000, 15000];

export function typeAllowed(tenant, type) {
  const list = tenant.allowed_types || [];
  if (!list.length) return true;
  return list.some((p) => p === "*/*" || p === type || (p.endsWith("/*") && type.startsWith(p.slice(0, -1))));
}

/** A failure that resuming may cure: no connection, or the gateway busy for a moment. */
class Retryable extends Error {}

/** One PUT of a sealed batch; ``onSent(bytes)`` as the body goes out. Rejects Retryable or VeilError. */
function putBatch(url, body, onSent, xhrs) {
  return new Promise((resolve, reject) => {
    const x = new XMLHttpRequest();
    xhrs.add(x);
    x.open("PUT", url);
    x.setRequestHeader("Content-Type", "application/octet-stream");
    x.upload.onprogress = (e) => onSent(e.loaded);
    const settle = () => xhrs.delete(x);
    x.onload = () => {
      settle();
      if (x.status >= 200 && x.status < 300) { onSent(body.size); resolve(); return; }
      let reply = {};
      try { reply = JSON.parse(x.responseText); } catch { /* not JSON */ }
      if (x.status >= 500 || x.status === 409 || x.status === 429) reject(new Retryable(`gateway answered ${x.status}`));
      else reject(describeHttp(x.status, reply, x.getResponseHeader("X-Request-Id")));
    };
    x.onerror = () => { settle(); reject(new Retryable("connection lost")); };
    x.onabort = () => { settle(); reject(new Retryable("cancelled")); };
    x.ontimeout = x.onerror;
    x.send(body);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** IN_FLIGHT reusable body files in the origin-private file system; null where there is none. */
class BodySlots {
  static async open(count) {
    try {
      const root = await navigator.storage.getDirectory();
      const name = `veil-upload-${vf.hex(crypto.getRandomValues(new Uint8Array(8)))}`;
      const dir = await root.getDirectoryHandle(name, { create: true });
      const slots = new BodySlots(root, name, dir, count);
      await slots.body(0, new Uint8Array(1)); // fails here, not mid-upload, where writing is not allowed
      return slots;
    } catch {
      return null;
    }
  }

  constructor(root, name, dir, count) {
    this.root = root; this.name = name; this.dir = dir;
    this.free = Array.from({ length: count }, (_, i) => i);
  }

  /** A disk-backed Blob holding ``bytes`` in slot ``i`` (the slot must not be in use). */
  async body(i, bytes) {
    const h = await this.dir.getFileHandle(`slot-${i}`, { create: true });
    const w = await h.createWritable();
    await w.write(bytes);
    await w.close();
    return await h.getFile();
  }

  take() { return this.free.shift(); }
  give(i) { this.free.push(i); }
  async close() { await this.root.removeEntry(this.name, { recursive: true }).catch(() => {}); }
}

/**
 * Encrypt ``file`` in the page and upload it through the gateway as sealed segments; check the
 * manifest the gateway returns and compute the cap ourselves.
 * ``ui``: { status(text), advance(bytes), reconnecting(bool) }.
 * Returns { key, mhash, link, verify, deleteKey, type, size, mtime }: ``deleteKey`` (random, made
 * here for this upload) is what `deleteFile` needs; the manifest holds only its commitment.
 */
export async function encryptAndUpload(file, tenant, ui) {
  const type = file.type || "application/octet-stream";
  if (file.size > tenant.max_file_size) {
    throw new vf.VeilError("refused", `${file.name} is ${human(file.size)}; ${tenant.name} accepts up to ${human(tenant.max_file_size)}`);
  }
  if (!typeAllowed(tenant, type)) throw new vf.VeilError("refused", `${tenant.name} does not accept files of type ${type}`);
  ui.status("encrypting…");
  const key = crypto.getRandomValues(new Uint8Array(vf.KEY_SIZE));
  const si = await vf.storageIndex(key);
  const segsize = vf.SEGMENT_SIZE;
  const nseg = vf.segmentCount(file.size, segsize);
  const meta = { name: file.name, type, size: file.size, mtime: Math.max(0, Math.floor(file.lastModified / 1000)) };
  const sealedMeta = await vf.sealMetadata(key, meta);
  const { k, n } = tenant.defaults || { k: 3, n: 10 };
  const deleteKey = crypto.getRandomValues(new Uint8Array(32));
  const commitment = await vf.deletionCommitment(deleteKey);
  const session = await beginSession(JSON.stringify({ si: vf.hex(si), size: file.size, segsize, k, n, meta: vf.toBase64(sealedMeta), delete: vf.hex(commitment) }), ui);
  const base = `/api/uploads/${encodeURIComponent(session.id)}`;
  const cipher = await vf.SegmentCipher.create(key, nseg);
  const tree = new vf.SegmentTree();
  const room = new Uint8Array(vf.LEAF_ROOM + segsize + vf.TAG);
  let treed = 0; // segments already in the tree (a resume seals them again, but adds them once)
  const xhrs = new Set();
  const slots = await BodySlots.open(IN_FLIGHT);
  if (ui.staging) ui.staging(slots ? "opfs" : "memory");

  async function sealBatch(start, count) {
    const lo = start * segsize, hi = Math.min(file.size, (start + count) * segsize);
    const plain = new Uint8Array(await file.slice(lo, hi).arrayBuffer());
    if (plain.length !== hi - lo) throw new vf.VeilError("refused", `${file.name} changed while it was being read`);
    let total = 0;
    for (let i = start; i < start + count; i++) total += vf.sealedLength(i, file.size, segsize);
    const body = new Uint8Array(total);
    let off = 0;
    for (let i = start; i < start + count; i++) {
      const p = plain.subarray((i - start) * segsize, Math.min(plain.length, (i - start + 1) * segsize));
      const sealed = await cipher.seal(i, p);
      if (i === treed) {
        const withRoom = room.subarray(0, vf.LEAF_ROOM + sealed.length);
        withRoom.set(sealed, vf.LEAF_ROOM);
        await tree.addSealed(withRoom);
        treed++;
      }
      body.set(sealed, off);
      off += sealed.length;
    }
    return { body, plainBytes: hi - lo };
  }

  /** Send segments from ``from`` to the end; throws Retryable on a cut (after cancelling the rest). */
  async function sendFrom(from) {
    let confirmed = Math.min(file.size, from * segsize);
    const partial = new Map();
    const report = () => { let b = confirmed; for (const v of partial.values()) b += v; ui.advance(Math.min(file.size, b)); };
    report();
    const inflight = new Set();
    let failure = null;
    for (let start = from; start < nseg && !failure; start += BATCH_SEGMENTS) {
      const count = Math.min(BATCH_SEGMENTS, nseg - start);
      const { body, plainBytes } = await sealBatch(start, count);
      while (inflight.size >= IN_FLIGHT && !failure) await Promise.race(inflight);
      if (failure) break;
      const ratio = plainBytes / Math.max(1, body.length);
      const slot = slots ? slots.take() : null;
      const sent = slots ? slots.body(slot, body) : Promise.resolve(new Blob([body]));
      const put = sent.then((blob) => putBatch(`${base}/segments?start=${start}`, blob, (n) => { partial.set(start, n * ratio); report(); }, xhrs))
        .then(() => { partial.delete(start); confirmed += plainBytes; report(); },
          (e) => { partial.delete(start); if (!failure) { failure = e instanceof Retryable || e instanceof vf.VeilError ? e : new vf.VeilError("refused", "this browser could not prepare the upload (no room to stage it?); free some disk space and try again"); for (const x of xhrs) x.abort(); } });
      const tracked = put.finally(() => { inflight.delete(tracked); if (slots) slots.give(slot); });
      inflight.add(tracked);
    }
    await Promise.all(inflight);
    if (failure) throw failure;
  }

  /** After a cut: wait until the gateway answers, and learn where to go on from. */
  async function whereToResume() {
    const until = Date.now() + RETRY_FOR_MS;
    for (let attempt = 0; ; attempt++) {
      await sleep(RETRY_PAUSES_MS[Math.min(attempt, RETRY_PAUSES_MS.length - 1)]);
      try {
        const st = await (await call(base)).json();
        return st;
      } catch (e) {
        if (e.kind === "notfound") {
          throw new vf.VeilError("expired", "the upload waited too long for the connection to come back and was dropped; please upload the file again");
        }
        if (Date.now() > until) {
          throw new vf.VeilError("unavailable", "the connection to the gateway has been down for a long time; please upload the file again when you are back online");
        }
      }
    }
  }

  try {
    let from = 0;
    ui.status("encrypting and uploading…");
    for (;;) {
      try {
        await sendFrom(from);
        break;
      } catch (e) {
        if (!(e instanceof Retryable)) throw e;
        ui.reconnecting(true);
        ui.status("connection lost — waiting to resume…");
        const st = await whereToResume();
        ui.reconnecting(false);
        ui.resumed(st.next);
        if (st.state !== "open") break; // every segment arrived; only the answer was lost
        from = st.next;
        ui.status("resuming the upload…");
      }
    }
    ui.status("storing…");
    const mbytes = await finishWithRetry(base, ui);
    // Never trust the gateway for the cap: check the manifest describes what we sent, and hash it ourselves.
    const man = vf.parseManifest(mbytes);
    const ok = vf.equal(man.si, si) && man.size === file.size && man.segsize === segsize && man.nseg === nseg &&
      vf.equal(man.meta, sealedMeta) && vf.equal(man.segroot, await tree.root()) && man.k === session.k && man.n === session.n &&
      man.delete instanceof Uint8Array && vf.equal(man.delete, commitment);
    if (!ok) throw new vf.VeilError("integrity", "the gateway returned a manifest that does not match the upload");
    const mhash = await vf.manifestHash(mbytes);
    const link = await vf.shareLink(location.origin, key, mhash);
    return { key, mhash, link, verify: await vf.verifyPart(si, mhash), deleteKey, type, size: file.size, mtime: meta.mtime };
  } catch (e) {
    for (const x of xhrs) x.abort();
    fetch(base, { method: "DELETE", credentials: "omit" }).catch(() => {});
    throw e;
  } finally {
    if (slots) await slots.close();
  }
}

/** Open the session; a busy network (503: too few nodes answered in time) is asked again, a few times. */
async function beginSession(body, ui) {
  for (let attempt = 0; ; attempt++) {
    try {
      return await (await call("/api/uploads", { method: "POST", headers: { "Content-Type": "application/json" }, body })).json();
    } catch (e) {
      if (e.kind !== "busy" || attempt >= 3) throw e;
      ui.status("the network is busy — trying again…");
      await sleep(2000 * (attempt + 1));
    }
  }
}

/** finish is idempotent on the gateway: ask again when the answer was lost. */
async function finishWithRetry(base, ui) {
  const until = Date.now() + RETRY_FOR_MS;
  for (let attempt = 0; ; attempt++) {
    try {
      return new Uint8Array(await (await call(`${base}/finish`, { method: "POST" })).arrayBuffer());
    } catch (e) {
      if (e.kind !== "unavailable" || e.final || Date.now() > until) throw e;
      ui.status("connection lost while storing — asking again…");
      await sleep(RETRY_PAUSES_MS[Math.min(attempt, RETRY_PAUSES_MS.length - 1)]);
    }
  }
}

/**
 * Delete an uploaded file's shares from the network: ``verify`` is the link's verify part,
 * ``deleteKey`` the bytes `encryptAndUpload` returned. The nodes check the key; anyone else is refused.
 * Resolves to { deleted, nodes, unreachable }.
 */
export async function deleteFile(verify, deleteKey) {
  const r = await call(`/api/files/${encodeURIComponent(verify)}/delete`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ key: vf.hex(deleteKey) }),
  });
  return r.json();
}
