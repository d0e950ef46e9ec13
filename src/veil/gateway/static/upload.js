// Encrypt-and-upload of one file, in the page (docs/specs/gateway.md, "Browser-side crypto"): the
// file key is made here; the gateway receives sealed segments and sealed metadata only.

import * as vf from "./veil-format.js";
import { call, human } from "./common.js";

const BATCH_SEGMENTS = 4;
const IN_FLIGHT = 3;

export function typeAllowed(tenant, type) {
  const list = tenant.allowed_types || [];
  if (!list.length) return true;
  return list.some((p) => p === "*/*" || p === type || (p.endsWith("/*") && type.startsWith(p.slice(0, -1))));
}

/**
 * Encrypt ``file`` in the page and upload it through the gateway as sealed segments; check the
 * manifest the gateway returns and compute the cap ourselves. ``ui``: { status(text), advance(bytes) }.
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
  const session = await (await call("/api/uploads", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ si: vf.hex(si), size: file.size, segsize, k, n, meta: vf.toBase64(sealedMeta), delete: vf.hex(commitment) }),
  })).json();
  const base = `/api/uploads/${encodeURIComponent(session.id)}`;
  try {
    const cipher = await vf.SegmentCipher.create(key, nseg);
    const tree = new vf.SegmentTree();
    const room = new Uint8Array(vf.LEAF_ROOM + segsize + vf.TAG);
    let sent = 0;
    ui.status("encrypting and uploading…");
    const inflight = new Set();
    let failure = null;
    for (let start = 0; start < nseg && !failure; start += BATCH_SEGMENTS) {
      const count = Math.min(BATCH_SEGMENTS, nseg - start);
      const lo = start * segsize, hi = Math.min(file.size, (start + count) * segsize);
      const plain = new Uint8Array(await file.slice(lo, hi).arrayBuffer());
      if (plain.length !== hi - lo) throw new vf.VeilError("refused", `${file.name} changed while it was being read`);
      const lengths = [];
      for (let i = start; i < start + count; i++) lengths.push(vf.sealedLength(i, file.size, segsize));
      const body = new Uint8Array(lengths.reduce((a, b) => a + b, 0));
      let off = 0;
      for (let i = start; i < start + count; i++) {
        const p = plain.subarray((i - start) * segsize, Math.min(plain.length, (i - start + 1) * segsize));
        const sealed = await cipher.seal(i, p);
        const withRoom = room.subarray(0, vf.LEAF_ROOM + sealed.length);
        withRoom.set(sealed, vf.LEAF_ROOM);
        await tree.addSealed(withRoom);
        body.set(sealed, off);
        off += sealed.length;
      }
      while (inflight.size >= IN_FLIGHT) await Promise.race(inflight);
      // A Blob body, not the Uint8Array: chromium hands a Blob to its network process in one
      // piece, but streams an ArrayBuffer body through a small pipe (measured 6x slower).
      const put = call(`${base}/segments?start=${start}`, {
        method: "PUT", headers: { "Content-Type": "application/octet-stream" }, body: new Blob([body]),
      }).then(() => { sent += hi - lo; ui.advance(sent); }, (e) => { failure = failure || e; });
      const tracked = put.finally(() => inflight.delete(tracked));
      inflight.add(tracked);
    }
    await Promise.all(inflight);
    if (failure) throw failure;
    ui.status("storing…");
    const mbytes = new Uint8Array(await (await call(`${base}/finish`, { method: "POST" })).arrayBuffer());
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
    fetch(base, { method: "DELETE", credentials: "omit" }).catch(() => {});
    throw e;
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
