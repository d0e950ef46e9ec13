// The Veil web app: encrypt-and-upload, and open-and-decrypt, entirely in the page.
// The file key is made here and lives only in the share link's fragment and in this page's
// memory (and, for a streamed download, the service worker's). No request this script makes
// contains it: uploads send sealed segments and sealed metadata; downloads ask by verify part.

import * as vf from "./veil-format.js";

const $ = (id) => document.getElementById(id);
const mode = document.body.dataset.mode;
const BATCH_SEGMENTS = 4;
const IN_FLIGHT = 3;
const AUTO_PREVIEW = 8 << 20;
const PREVIEW_MAX = 256 << 20;
let tenant = { name: document.title, max_file_size: 2 ** 53, allowed_types: [], embed_origins: [], defaults: { k: 3, n: 10 } };

/** An amount in smallest units (10^9 per VEIL) in VEIL, to three significant digits below 1. */
function veil(units) {
  const opts = units >= 1e9 ? { maximumFractionDigits: 3 } : { maximumSignificantDigits: 3 };
  return (units / 1e9).toLocaleString("en", opts);
}

function human(n) {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let u = 0;
  while (n >= 1000 && u < units.length - 1) { n /= 1000; u++; }
  return u === 0 ? `${n} B` : `${n.toFixed(1)} ${units[u]}`;
}

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "class") e.className = v;
    else if (k in e && typeof v !== "string") e[k] = v;
    else e.setAttribute(k, v);
  }
  e.append(...children);
  return e;
}

const TITLES = {
  garbled: "This link is garbled",
  nokey: "This link has no key",
  wrongkey: "Wrong key",
  notfound: "File not found",
  integrity: "The file failed its integrity check",
  unavailable: "The network is not answering",
  refused: "Not accepted here",
  payment: "This download needs payment",
};

function showMessage(err) {
  const box = $("message");
  const kind = err instanceof vf.VeilError ? err.kind : "unavailable";
  box.replaceChildren(el("h2", {}, TITLES[kind] || "Something went wrong"), el("p", {}, err.message || String(err)));
  box.dataset.kind = kind;
  box.hidden = false;
}

/** fetch that turns error replies into VeilErrors carrying the gateway's message. */
async function call(path, init = {}) {
  let r;
  try {
    r = await fetch(path, { cache: "no-store", credentials: "omit", referrerPolicy: "no-referrer", ...init });
  } catch {
    throw new vf.VeilError("unavailable", "the gateway could not be reached; check your connection and try again");
  }
  if (r.ok) return r;
  let message = `the gateway answered ${r.status}`;
  try { message = (await r.json()).message || message; } catch { /* not JSON */ }
  const kind = r.status === 404 ? "notfound" : r.status === 413 || r.status === 415 ? "refused"
    : r.status === 400 ? "garbled" : r.status === 402 ? "payment" : "unavailable";
  throw new vf.VeilError(kind, message);
}

async function loadTenant() {
  try { tenant = await (await call("/api/tenant")).json(); } catch { /* keep the defaults: the page still works */ }
}

// -- upload -------------------------------------------------------------------------------------
function typeAllowed(type) {
  const list = tenant.allowed_types || [];
  if (!list.length) return true;
  return list.some((p) => p === "*/*" || p === type || (p.endsWith("/*") && type.startsWith(p.slice(0, -1))));
}

function setupUpload() {
  $("upload-view").hidden = false;
  const limits = [`Up to ${human(tenant.max_file_size)} per file`];
  if (tenant.allowed_types && tenant.allowed_types.length) limits.push(`types: ${tenant.allowed_types.join(", ")}`);
  $("limits").textContent = limits.join("; ") + ".";
  if (tenant.allowance) {
    const days = Math.round(tenant.allowance.period_seconds / 86400);
    $("allowance").textContent = `Free downloads: ${human(tenant.allowance.bytes)} every ${days} days per account (network allowance).`;
  }
  const input = $("file-input");
  if (tenant.allowed_types && tenant.allowed_types.length) input.accept = tenant.allowed_types.join(",");
  input.addEventListener("change", () => { const files = Array.from(input.files); input.value = ""; enqueue(files); });
  const drop = $("drop");
  for (const t of ["dragenter", "dragover"]) drop.addEventListener(t, (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); enqueue(Array.from(e.dataTransfer.files)); });
  // A file dropped outside the box must not navigate away from the page.
  for (const t of ["dragover", "drop"]) window.addEventListener(t, (e) => e.preventDefault());
}

let chain = Promise.resolve();
function enqueue(files) {
  for (const f of files) {
    const item = uploadItem(f);
    chain = chain.then(() => uploadFile(f, item).catch((e) => item.fail(e)));
  }
}

function uploadItem(file) {
  const progress = el("progress", { max: Math.max(1, file.size), value: 0, "aria-label": `Upload progress of ${file.name}` });
  const status = el("span", { class: "status" }, "waiting…");
  const li = el("li", { class: "upload" }, el("div", { class: "name" }, file.name), progress, el("div", { class: "row" }, status));
  $("uploads").append(li);
  return {
    li, progress,
    status(text) { status.textContent = text; },
    advance(n) { progress.value = n; },
    fail(e) {
      progress.remove();
      status.className = "status error";
      status.textContent = `Failed: ${e.message || e}`;
      li.dataset.state = "failed";
    },
    done(link) {
      progress.value = progress.max;
      status.textContent = "Encrypted and uploaded. Anyone with this link can open the file:";
      const box = el("input", { class: "link", type: "text", readOnly: true, value: link, "aria-label": `Share link for ${file.name}` });
      const copy = el("button", { type: "button", class: "button secondary" }, "Copy link");
      copy.addEventListener("click", async () => {
        box.select();
        try { await navigator.clipboard.writeText(link); copy.textContent = "Copied"; } catch { copy.textContent = "Press Ctrl+C"; }
      });
      const open = el("a", { href: link, target: "_blank", rel: "noopener noreferrer" }, "Open");
      li.append(el("div", { class: "row" }, box, copy, open));
      li.dataset.state = "done";
      li.dataset.link = link;
    },
  };
}

async function uploadFile(file, ui) {
  const type = file.type || "application/octet-stream";
  if (file.size > tenant.max_file_size) {
    throw new vf.VeilError("refused", `${file.name} is ${human(file.size)}; ${tenant.name} accepts up to ${human(tenant.max_file_size)}`);
  }
  if (!typeAllowed(type)) throw new vf.VeilError("refused", `${tenant.name} does not accept files of type ${type}`);
  ui.status("encrypting…");
  const key = crypto.getRandomValues(new Uint8Array(vf.KEY_SIZE));
  const si = await vf.storageIndex(key);
  const segsize = vf.SEGMENT_SIZE;
  const nseg = vf.segmentCount(file.size, segsize);
  const meta = { name: file.name, type, size: file.size, mtime: Math.max(0, Math.floor(file.lastModified / 1000)) };
  const sealedMeta = await vf.sealMetadata(key, meta);
  const { k, n } = tenant.defaults || { k: 3, n: 10 };
  const session = await (await call("/api/uploads", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ si: vf.hex(si), size: file.size, segsize, k, n, meta: vf.toBase64(sealedMeta) }),
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
      vf.equal(man.meta, sealedMeta) && vf.equal(man.segroot, await tree.root()) && man.k === session.k && man.n === session.n;
    if (!ok) throw new vf.VeilError("integrity", "the gateway returned a manifest that does not match the upload");
    const link = await vf.shareLink(location.origin, key, await vf.manifestHash(mbytes));
    ui.done(link);
    announce(file, link);
  } catch (e) {
    fetch(base, { method: "DELETE", credentials: "omit" }).catch(() => {});
    throw e;
  }
}

/** In the embed widget, hand each link to the embedding page, if the tenant lists its origin. */
function announce(file, link) {
  if (mode !== "embed" || window.parent === window) return;
  const origin = location.ancestorOrigins && location.ancestorOrigins[0];
  if (origin && (tenant.embed_origins || []).includes(origin)) {
    window.parent.postMessage({ type: "veil:uploaded", name: file.name, size: file.size, link }, origin);
  }
}

// -- open a share link --------------------------------------------------------------------------
async function openLink() {
  $("file-view").hidden = false;
  const verify = decodeURIComponent(location.pathname.split("/")[2] || "");
  const link = await vf.parseLink(verify, location.hash.slice(1));
  const r = await call(`/api/files/${encodeURIComponent(link.verify)}/manifest`).catch((e) => {
    if (e.kind === "notfound") throw new vf.VeilError("notfound", "No node on the network has this file. It may have been removed, or the link may belong to another network.");
    throw e;
  });
  const mbytes = new Uint8Array(await r.arrayBuffer());
  if (!vf.equal(await vf.manifestHash(mbytes), link.mhash)) {
    throw new vf.VeilError("integrity", "the gateway returned a manifest that does not belong to this link");
  }
  const man = vf.parseManifest(mbytes);
  if (!vf.equal(man.si, link.si)) throw new vf.VeilError("integrity", "the manifest is for another file");
  const meta = await vf.openMetadata(link.key, man.meta);
  if (meta.size !== man.size) throw new vf.VeilError("integrity", "the file's metadata does not match its manifest");
  const ctx = { link, man, meta };
  $("file-name").textContent = meta.name;
  $("file-size").textContent = `${human(meta.size)} (${meta.size.toLocaleString("en")} bytes)`;
  $("file-type").textContent = meta.type;
  document.title = `${meta.name} – ${tenant.name}`;
  showCost(link.verify);
  const button = $("download");
  button.disabled = false;
  button.addEventListener("click", () => download(ctx).catch(fail));
  if (previewKind(meta.type) && meta.size <= PREVIEW_MAX) {
    const pb = $("preview-button");
    pb.hidden = false;
    pb.addEventListener("click", () => { pb.disabled = true; preview(ctx).catch(fail); });
    if (meta.size <= AUTO_PREVIEW) { pb.disabled = true; preview(ctx).catch(fail); }
  }
  document.body.dataset.ready = "1";
}

/** What the download will cost, from the holders' prices; the page works without it. */
async function showCost(verify) {
  const box = $("file-cost");
  try {
    const c = await (await call(`/api/files/${encodeURIComponent(verify)}/cost`)).json();
    box.textContent = c.free ? "Free download"
      : `This download costs about ${veil(c.estimate)} ${c.currency} (the gateway pays from its allowance first)`;
    box.dataset.free = c.free ? "1" : "0";
  } catch {
    box.textContent = "unknown (the gateway could not ask the nodes)";
  }
}

function previewKind(type) {
  if (/^image\/(png|jpeg|gif|webp|avif|bmp|svg\+xml)$/.test(type)) return "img";
  if (/^audio\//.test(type)) return "audio";
  if (/^video\//.test(type)) return "video";
  if (type === "application/pdf") return "iframe";
  return null;
}

function setStatus(text, error = false) {
  const s = $("download-status");
  s.textContent = text;
  s.className = error ? "status error" : "status";
}

function fail(e) {
  setStatus(e.message || String(e), true);
  showMessage(e);
}

async function* plaintext(ctx, onBytes) {
  const { man, link } = ctx;
  const cipher = await vf.SegmentCipher.create(link.key, man.nseg);
  const r = await call(`/api/files/${encodeURIComponent(link.verify)}/segments?start=0`);
  let done = 0;
  for await (const p of vf.openSegments(vf.chunksOf(r.body), cipher, man.size, man.segsize)) {
    done += p.length;
    onBytes(done);
    yield p;
  }
}

async function decryptToBlob(ctx, type) {
  const bar = $("download-progress");
  bar.hidden = false;
  bar.max = Math.max(1, ctx.man.size);
  const parts = [];
  for await (const p of plaintext(ctx, (n) => { bar.value = n; })) parts.push(p);
  return new Blob(parts, { type });
}

let previewBlob = null;
async function preview(ctx) {
  const kind = previewKind(ctx.meta.type);
  setStatus("Decrypting preview…");
  previewBlob = previewBlob || await decryptToBlob(ctx, ctx.meta.type);
  const url = URL.createObjectURL(previewBlob);
  const title = `Preview of ${ctx.meta.name}`;
  const node = kind === "img" ? el("img", { src: url, alt: title })
    // The PDF is the uploader's, served from the gateway's origin: no scripts, forms or navigation.
    : kind === "iframe" ? el("iframe", { src: url, title, sandbox: "" })
    : el(kind, { src: url, controls: true, "aria-label": title });
  $("preview").replaceChildren(node);
  setStatus("");
}

async function download(ctx) {
  const button = $("download");
  button.disabled = true;
  try {
    if (window.isSecureContext && "serviceWorker" in navigator) {
      await streamDownload(ctx);
    } else {
      setStatus("Decrypting in memory (this browser cannot stream downloads)…");
      const blob = previewBlob || await decryptToBlob(ctx, "application/octet-stream");
      saveBlob(blob, ctx.meta.name);
      setStatus("Downloaded, verified and decrypted.");
    }
  } finally {
    button.disabled = false;
  }
}

function saveBlob(blob, name) {
  const a = el("a", { href: URL.createObjectURL(blob), download: name });
  document.body.append(a);
  a.click();
  a.remove();
}

/**
 * Large files: the service worker answers a navigation to /dl/<token> with a stream it decrypts
 * as it fetches, so the browser writes the file to disk without holding it in memory.
 */
async function streamDownload(ctx) {
  const reg = await navigator.serviceWorker.register("/sw.js", { scope: "/dl/", type: "module" });
  const sw = reg.active || await new Promise((resolve) => {
    const w = reg.installing || reg.waiting;
    w.addEventListener("statechange", () => { if (w.state === "activated") resolve(w); });
  });
  const token = vf.hex(crypto.getRandomValues(new Uint8Array(16)));
  const bar = $("download-progress");
  bar.hidden = false;
  bar.max = Math.max(1, ctx.man.size);
  bar.value = 0;
  setStatus("Starting download…");
  const ch = new MessageChannel();
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new vf.VeilError("unavailable", "the download helper did not start; reload the page and try again")), 15000);
    let started = false;
    ch.port1.onmessage = (e) => {
      const m = e.data;
      if (m.type === "ready") {
        const frame = el("iframe", { src: `/dl/${token}`, hidden: true, title: "download" });
        document.body.append(frame);
      } else if (m.type === "started") {
        started = true;
        clearTimeout(timer);
        setStatus("Downloading and decrypting…");
      } else if (m.type === "progress") {
        bar.value = m.done;
      } else if (m.type === "done") {
        bar.value = bar.max;
        setStatus("Downloaded, verified and decrypted.");
        document.body.dataset.downloaded = "1";
        resolve();
      } else if (m.type === "error") {
        clearTimeout(timer);
        reject(new vf.VeilError(m.kind || "unavailable", m.message));
      }
    };
    void started;
    sw.postMessage({
      type: "download", token, verify: ctx.link.verify, key: ctx.link.key, size: ctx.man.size,
      segsize: ctx.man.segsize, name: ctx.meta.name,
    }, [ch.port2]);
  });
}

// -- start --------------------------------------------------------------------------------------
function embedSnippet() {
  const box = $("embed-snippet");
  if (!box) return;
  box.value = `<iframe src="${location.origin}/embed" title="Upload files with ${tenant.name}" width="100%" height="360" style="border:0;max-width:32rem"></iframe>`;
}

async function main() {
  await loadTenant();
  embedSnippet();
  try {
    if (mode === "upload" || mode === "embed") setupUpload();
    else if (mode === "file") {
      // A pasted key changes only the fragment, which does not reload the page: start over.
      window.addEventListener("hashchange", () => location.reload());
      await openLink();
    }
    else if (mode === "notfound") $("notfound-view").hidden = false;
    else if (mode === "nohelper") $("nohelper-view").hidden = false;
  } catch (e) {
    $("file-name").textContent = "Cannot open this file";
    showMessage(e);
  }
  document.body.dataset.loaded = "1";
}

main();
