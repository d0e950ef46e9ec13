// The Veil web app: encrypt-and-upload, and open-and-decrypt, entirely in the page.
// The file key is made here and lives only in the share link's fragment and in this page's
// memory (and, for a streamed download, the service worker's). No request this script makes
// contains it: uploads send sealed segments and sealed metadata; downloads ask by verify part.

import * as vf from "./veil-format.js";
import { $, Meter, call, el, human, runWorkerJob, saveBlob, showMessage, streamingDownloads, visitorText } from "./common.js";
import { deleteFile, encryptAndUpload, typeAllowed } from "./upload.js";
import * as myfiles from "./myfiles.js";

const mode = document.body.dataset.mode;
const AUTO_PREVIEW = 8 << 20;
const PREVIEW_MAX = 256 << 20;
let tenant = { name: document.title, max_file_size: 2 ** 53, allowed_types: [], embed_origins: [], defaults: { k: 3, n: 10 } };

/** An amount in smallest units (10^9 per VEIL) in VEIL, to three significant digits below 1. */
function veil(units) {
  const opts = units >= 1e9 ? { maximumFractionDigits: 3 } : { maximumSignificantDigits: 3 };
  return (units / 1e9).toLocaleString("en", opts);
}

async function loadTenant() {
  try { tenant = await (await call("/api/tenant")).json(); } catch { /* keep the defaults: the page still works */ }
}

// -- upload -------------------------------------------------------------------------------------
function setupUpload() {
  $("upload-view").hidden = false;
  const limits = [`Up to ${human(tenant.max_file_size)} per file`];
  if (tenant.allowed_types && tenant.allowed_types.length) limits.push(`types: ${tenant.allowed_types.join(", ")}`);
  $("limits").textContent = limits.join("; ") + ".";
  // Only where visitors get it: a gateway with a wallet pays charging nodes from its allowance.
  if (tenant.pays && tenant.allowance) {
    const days = Math.round(tenant.allowance.period_seconds / 86400);
    $("allowance").textContent = `Downloads through this site are free for the people you share with: it pays the network, `
      + `${human(tenant.allowance.bytes)} every ${days} days from its allowance, then from its own funds within its limits.`;
    $("allowance").hidden = false;
  }
  // A reload or a closed tab would stop the uploads in progress: ask first.
  window.addEventListener("beforeunload", (e) => {
    if (active > 0) { e.preventDefault(); e.returnValue = ""; }
  });
  if (mode === "upload") setupMyFiles();
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
let active = 0; // uploads queued or running
function enqueue(files) {
  for (const f of files) {
    const item = uploadItem(f);
    active++;
    document.body.dataset.uploading = String(active);
    chain = chain.then(() => uploadFile(f, item).catch((e) => item.fail(e))).finally(() => {
      active--;
      document.body.dataset.uploading = String(active);
    });
  }
}

function uploadItem(file) {
  const progress = el("progress", { max: Math.max(1, file.size), value: 0, "aria-label": `Upload progress of ${file.name}` });
  const status = el("span", { class: "status" }, "waiting…");
  const meterBox = el("span", { class: "meter" });
  const li = el("li", { class: "upload" }, el("div", { class: "name" }, file.name), progress,
    el("div", { class: "row" }, status, meterBox));
  $("uploads").append(li);
  let meter = null;
  return {
    li, progress,
    status(text) { status.textContent = text; },
    advance(n) {
      meter = meter || new Meter(file.size);
      meter.update(n);
      progress.value = n;
      meterBox.textContent = meter.text();
    },
    reconnecting(on) { li.dataset.reconnecting = on ? "1" : ""; if (on) li.dataset.cuts = String(Number(li.dataset.cuts || 0) + 1); },
    resumed(next) { li.dataset.resumedAt = String(next); meter = null; },
    staging(kind) { li.dataset.staging = kind; },
    fail(e) {
      progress.remove();
      meterBox.remove();
      status.className = "status error";
      status.textContent = `Failed: ${visitorText(e)}` + (e && e.requestId ? ` (reference ${e.requestId})` : "");
      li.dataset.state = "failed";
    },
    done(link, verify, deleteKey) {
      progress.value = progress.max;
      status.textContent = "Encrypted and uploaded. Anyone with this link can open the file:";
      const box = el("input", { class: "link", type: "text", readOnly: true, value: link, "aria-label": `Share link for ${file.name}` });
      const copy = el("button", { type: "button", class: "button secondary" }, "Copy link");
      copy.addEventListener("click", async () => {
        box.select();
        try { await navigator.clipboard.writeText(link); copy.textContent = "Copied"; } catch { copy.textContent = "Press Ctrl+C"; }
      });
      const open = el("a", { href: link, target: "_blank", rel: "noopener noreferrer" }, "Open");
      const del = el("button", { type: "button", class: "button secondary" }, "Delete from the network");
      del.addEventListener("click", async () => {
        del.disabled = true;
        try {
          const r = await deleteFile(verify, deleteKey);
          status.textContent = `Deleted from the network (${r.deleted} shares): the link no longer opens the file.`;
          box.parentElement.remove();
          li.dataset.state = "deleted";
        } catch (e) {
          del.disabled = false;
          status.textContent = `Could not delete: ${e.message || e}`;
        }
      });
      li.append(el("div", { class: "row" }, box, copy, open, del));
      li.dataset.state = "done";
      li.dataset.link = link;
    },
  };
}

async function uploadFile(file, ui) {
  const { link, verify, deleteKey } = await encryptAndUpload(file, tenant, ui);
  ui.done(link, verify, deleteKey);
  announce(file, link);
  if (mode === "upload") {
    const entry = { name: file.name, size: file.size, link, verify, deleteKey: Array.from(deleteKey) };
    await myfiles.addFile(entry).catch(() => {});
  }
}

// -- my files (kept in this browser, encrypted: myfiles.js) ---------------------------------------
function setupMyFiles() {
  $("myfiles-view").hidden = false;
  // Entries kept since the upload carry the file's deletion key (encrypted with the list).
  myfiles.setDeleteAction(async (entry) => {
    if (!entry.verify || !entry.deleteKey) throw new Error("this browser did not keep the key to delete this file");
    return deleteFile(entry.verify, Uint8Array.from(entry.deleteKey));
  });
  myfiles.onChange(() => renderMyFiles().catch(() => {}));
  renderMyFiles().catch(() => { $("myfiles-empty").textContent = "This browser does not keep a list here (private mode?)."; });
}

async function renderMyFiles() {
  const entries = await myfiles.listFiles();
  const del = myfiles.getDeleteAction();
  $("myfiles-empty").hidden = entries.length > 0;
  $("myfiles").replaceChildren(...entries.map((f) => {
    const box = el("input", { class: "link", type: "text", readOnly: true, value: f.link, "aria-label": `Share link for ${f.name}` });
    const remove = el("button", { type: "button", class: "button secondary remove", "aria-label": `Remove ${f.name} from this list` }, "Remove from list");
    remove.addEventListener("click", () => myfiles.removeFile(f.id));
    const slot = el("span", { "data-delete-slot": "" });
    if (del) {
      const b = el("button", { type: "button", class: "button secondary delete", "aria-label": `Delete ${f.name} from the network` }, "Delete from the network");
      b.addEventListener("click", async () => {
        b.disabled = true;
        try { await del(f); await myfiles.removeFile(f.id); } catch (e) { b.disabled = false; showMessage(e); }
      });
      slot.append(b);
    }
    const when = new Date(f.added).toLocaleString();
    return el("li", { class: "myfile", "data-link": f.link, "data-id": String(f.id) },
      el("div", { class: "name" }, f.name),
      el("div", { class: "note" }, `${human(f.size)} · uploaded ${when}`),
      el("div", { class: "row" }, box, el("a", { href: f.link, target: "_blank", rel: "noopener noreferrer" }, "Open"), remove, slot));
  }));
  document.body.dataset.myfiles = String(entries.length);
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
  await showCost(link.verify);
  const button = $("download");
  if (!button.dataset.blocked) button.disabled = false;
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
    box.dataset.free = c.free ? "1" : "0";
    if (c.free) {
      box.textContent = "Free download";
    } else if (c.gateway_pays) {
      box.textContent = `Free for you: this site pays the network for it (about ${veil(c.estimate)} ${c.currency}, `
        + "from its allowance first, within its limits)";
      box.dataset.pays = "1";
    } else {
      // Never a price above "no wallet": the visitor cannot pay here, so say why and what to do.
      box.textContent = "Not available through this site";
      box.dataset.pays = "0";
      $("download").disabled = true;
      $("download").dataset.blocked = "1";
      const err = new vf.VeilError("payment", "The computers storing this file charge for downloads, and this site "
        + "has no wallet to pay them for its visitors. You can download it with the Veil app and your own wallet "
        + "(veil get followed by this page's address), or ask whoever runs this site to pay for downloads.");
      showMessage(err);
    }
  } catch {
    box.textContent = "unknown (the gateway could not ask the network)";
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
  setStatus(visitorText(e), true);
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
  const meter = new Meter(ctx.man.size);
  const parts = [];
  for await (const p of plaintext(ctx, (n) => { bar.value = n; meter.update(n); $("download-meter").textContent = meter.text(); })) parts.push(p);
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
    if (streamingDownloads()) {
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


/** Large files: the service worker decrypts as it fetches (common.js, runWorkerJob). */
async function streamDownload(ctx) {
  const bar = $("download-progress");
  bar.hidden = false;
  bar.max = Math.max(1, ctx.man.size);
  bar.value = 0;
  const meter = new Meter(ctx.man.size);
  setStatus("Starting download…");
  await runWorkerJob({
    type: "download", verify: ctx.link.verify, key: ctx.link.key, size: ctx.man.size,
    segsize: ctx.man.segsize, name: ctx.meta.name,
  }, {
    started: () => setStatus("Downloading and decrypting…"),
    progress: (n) => { bar.value = n; meter.update(n); $("download-meter").textContent = meter.text(); },
    done: () => {
      bar.value = bar.max;
      meter.update(ctx.man.size);
      $("download-meter").textContent = meter.text();
      setStatus("Downloaded, verified and decrypted.");
      document.body.dataset.downloaded = "1";
    },
  });
}

// -- start --------------------------------------------------------------------------------------
function embedSnippet() {
  const box = $("embed-snippet");
  if (!box || !tenant.show_embed) return;
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
    else if (mode === "folder") {
      window.addEventListener("hashchange", () => location.reload());
      await (await import("./folder-app.js")).openFolder(tenant);
    }
    else if (mode === "notfound") $("notfound-view").hidden = false;
    else if (mode === "nohelper") $("nohelper-view").hidden = false;
  } catch (e) {
    $(mode === "folder" ? "folder-title" : "file-name").textContent = mode === "folder" ? "Cannot open this folder" : "Cannot open this file";
    showMessage(e);
  }
  document.body.dataset.loaded = "1";
}

main();
