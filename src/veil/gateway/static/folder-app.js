// The folder page, /d/<folder>#<key> (docs/specs/gateway.md, "Folders in the browser"). The key
// stays in the fragment: this page asks the gateway for the folder's current signed version by
// slot id, checks the signature, opens the sealed listing, and shows the entries as text. Files
// download through the service worker (one file, or the whole tree as a ZIP stream). With a write
// link (#w-...) it also uploads files (encrypted here) and signs a new version of the listing,
// compare-and-swap through the gateway; a lost race re-reads the folder and tries again.

import * as vf from "./veil-format.js";
import * as fo from "./veil-folder.js";
import { $, call, el, human, runWorkerJob, saveBlob, showMessage, streamingDownloads } from "./common.js";
import { encryptAndUpload } from "./upload.js";

const { VeilError } = vf;
const MAX_ATTEMPTS = 8;
const MAX_DEPTH = 64;
const MAX_ZIP_ITEMS = 100000;
const MAX_PAGE_FILE = fo.MAX_PAYLOAD;
const TITLES = {
  notfound: "Folder not found",
  integrity: "The folder failed its integrity check",
  wrongkey: "Wrong key",
  refused: "Not possible here",
};

let tenant = null;
let folder = null; // { slot, readKey, verifyKey, seed, signer, writable, locator }
let current = null; // the last version read: { record, anchor, entries, paged }
let names = []; // localNames(entries)

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// -- reading ------------------------------------------------------------------------------------
/** A file cap's verified manifest: { verify, key, man }. */
async function fileOf(cap) {
  const { key, mhash } = await fo.parseFileReadCap(cap);
  const si = await vf.storageIndex(key);
  const verify = await vf.verifyPart(si, mhash);
  const r = await call(`/api/files/${encodeURIComponent(verify)}/manifest`);
  const mbytes = new Uint8Array(await r.arrayBuffer());
  if (!vf.equal(await vf.manifestHash(mbytes), mhash)) throw new VeilError("integrity", "the gateway returned a manifest that does not belong to this file");
  const man = vf.parseManifest(mbytes);
  if (!vf.equal(man.si, si)) throw new VeilError("integrity", "the manifest is for another file");
  return { verify, key, man };
}

/** A whole (small) immutable file, decrypted: a big folder's page. */
async function fileBytes(cap) {
  const { verify, key, man } = await fileOf(cap);
  if (man.size > MAX_PAGE_FILE) throw new VeilError("integrity", "a folder page is larger than a page may be");
  const cipher = await vf.SegmentCipher.create(key, man.nseg);
  const r = await call(`/api/files/${encodeURIComponent(verify)}/segments?start=0`);
  const parts = [];
  for await (const p of vf.openSegments(vf.chunksOf(r.body), cipher, man.size, man.segsize)) parts.push(p);
  return vf.concat(...parts);
}

async function pageEntries(f, pages, depth) {
  if (depth > 3) throw new VeilError("integrity", "the folder's pages nest too deeply");
  const out = [];
  for (let i = 0; i < pages.length; i++) {
    const listing = await fo.openBody(f.readKey, f.slot, 0, await fileBytes(pages[i].cap), fo.PAGE);
    const got = listing.pages ? await pageEntries(f, listing.pages, depth + 1) : listing.entries;
    // A page covers the names from its ``first`` up to the next page's.
    const hi = i + 1 < pages.length ? pages[i + 1].first : null;
    if (got.some((e) => fo.cmpNames(e.name, pages[i].first) < 0 || (hi !== null && fo.cmpNames(e.name, hi) >= 0))) {
      throw new VeilError("integrity", "a folder page holds names outside its range");
    }
    out.push(...got);
  }
  return out;
}

/** The folder's current version (resolved by the gateway over the folder's nodes), checked here. */
async function readFolder(f) {
  const r = await call(`/api/mutable/${vf.hex(f.slot)}`).catch((e) => {
    if (e.kind === "notfound") throw new VeilError("notfound", "No node on the network holds this folder. It may never have been written, or the link may belong to another network.");
    throw e;
  });
  const record = await fo.parseRecord(new Uint8Array(await r.arrayBuffer()), f.slot);
  let anchor = null;
  try { anchor = fo.parseCheckstring(r.headers.get("X-Veil-Anchor") || "0"); } catch { /* ignore a garbled hint */ }
  // The anchor becomes a parent of our next version: only a version this one contains.
  if (anchor && !fo.hasCs([record.cs, ...record.chain], anchor)) anchor = null;
  const listing = await fo.openBody(f.readKey, f.slot, record.seq, record.payload);
  const entries = listing.pages ? await pageEntries(f, listing.pages, 1) : listing.entries;
  return { record, anchor, entries, paged: !!listing.pages };
}

// -- the view -----------------------------------------------------------------------------------
function setStatus(text, error = false) {
  const s = $("folder-status");
  s.textContent = text;
  s.className = error ? "status error" : "status";
}

function fail(e) {
  setStatus(e.message || String(e), true);
  showMessage(e, TITLES);
}

function when(mtime) {
  if (typeof mtime !== "number") return "–";
  return new Date(mtime * 1000).toISOString().slice(0, 10);
}

async function childHref(entry) {
  const child = await fo.parseFolderReadCap(entry.cap);
  let seed = null;
  if (folder.seed && entry.wcap) {
    try { seed = await fo.openChildWriteSeed(folder.seed, folder.slot, child.slot, entry.wcap); } catch { seed = null; }
  }
  return fo.folderHref(child.slot, child.readKey, seed);
}

async function render() {
  const body = $("folder-entries").tBodies[0];
  const warnings = $("folder-warnings");
  const rows = [];
  const notes = [];
  names = fo.localNames(current.entries.map((e) => e.name));
  for (let i = 0; i < current.entries.length; i++) {
    const e = current.entries[i], ln = names[i];
    if (ln.warning) notes.push(el("li", {}, ln.warning));
    if (!ln.local) continue;
    const tr = el("tr", { class: "entry" });
    tr.dataset.kind = e.kind;
    tr.dataset.name = ln.local;
    let action;
    if (e.kind === "folder") {
      const a = el("a", { href: await childHref(e) }, ln.local + "/");
      tr.append(el("td", { class: "name" }, a), el("td", {}, "folder"), el("td", {}, when(e.mtime)), el("td", {}));
    } else {
      action = el("button", { type: "button", class: "button secondary", "aria-label": `Download ${ln.local}` }, "Download");
      action.addEventListener("click", () => downloadFile(e, ln.local, action).catch(fail));
      tr.append(el("td", { class: "name" }, ln.local), el("td", {}, human(e.size)), el("td", {}, when(e.mtime)), el("td", {}, action));
    }
    rows.push(tr);
  }
  body.replaceChildren(...rows);
  warnings.replaceChildren(...notes);
  $("folder-empty").hidden = rows.length > 0;
  const refused = current.entries.length - rows.length;
  $("folder-title").textContent = `${rows.length} ${rows.length === 1 ? "item" : "items"}${refused ? ` (${refused} refused)` : ""}`;
  document.body.dataset.version = String(current.record.seq);
}

async function refresh() {
  current = await readFolder(folder);
  await render();
}

// -- downloads ----------------------------------------------------------------------------------
async function downloadFile(entry, name, button) {
  button.disabled = true;
  try {
    setStatus(`Opening ${name}…`);
    const { verify, key, man } = await fileOf(entry.cap);
    if (streamingDownloads()) {
      await runWorkerJob({ type: "download", verify, key, size: man.size, segsize: man.segsize, name }, {
        started: () => setStatus(`Downloading and decrypting ${name}…`),
        done: () => setStatus(`${name}: downloaded, verified and decrypted.`),
      });
    } else {
      const cipher = await vf.SegmentCipher.create(key, man.nseg);
      const r = await call(`/api/files/${encodeURIComponent(verify)}/segments?start=0`);
      const parts = [];
      for await (const p of vf.openSegments(vf.chunksOf(r.body), cipher, man.size, man.segsize)) parts.push(p);
      saveBlob(new Blob(parts, { type: "application/octet-stream" }), name);
      setStatus(`${name}: downloaded, verified and decrypted.`);
    }
    document.body.dataset.downloaded = String(Number(document.body.dataset.downloaded || 0) + 1);
  } finally {
    button.disabled = false;
  }
}

/** ``fn`` over ``xs``, at most ``width`` at a time, results in order. */
async function pooled(xs, width, fn) {
  const out = new Array(xs.length);
  let next = 0;
  const worker = async () => { while (next < xs.length) { const i = next++; out[i] = await fn(xs[i]); } };
  await Promise.all(Array.from({ length: Math.min(width, xs.length) }, worker));
  return out;
}

/** Every file and folder under ``f`` as ZIP items (paths of checked local names only). */
async function collect(f, entries, prefix, depth, items, seen, warnings) {
  if (depth > MAX_DEPTH) throw new VeilError("refused", `the folder is nested deeper than ${MAX_DEPTH} levels`);
  const plan = fo.localNames(entries.map((e) => e.name));
  const kept = [];
  for (let i = 0; i < entries.length; i++) {
    if (plan[i].warning) warnings.push(`${prefix || "/"}: ${plan[i].warning}`);
    if (plan[i].local) kept.push([entries[i], prefix + plan[i].local]);
  }
  if (items.length + kept.length > MAX_ZIP_ITEMS) throw new VeilError("refused", `more than ${MAX_ZIP_ITEMS} items: use \`veil get -r\``);
  // Manifests of this folder's files, a few at a time (each is a round trip to the gateway).
  const files = await pooled(kept.filter(([e]) => e.kind === "file"), 8, ([e]) => fileOf(e.cap));
  let fi = 0;
  for (const [e, path] of kept) {
    if (e.kind === "file") {
      const { verify, key, man } = files[fi++];
      items.push({ path, verify, key, size: man.size, segsize: man.segsize, mtime: e.mtime });
      continue;
    }
    const child = await fo.parseFolderReadCap(e.cap);
    const id = vf.hex(child.slot);
    items.push({ path, dir: true, mtime: e.mtime });
    if (seen.has(id)) { warnings.push(`${path}: a folder that contains itself; its contents are left out`); continue; }
    seen.add(id);
    const sub = await readFolder(child);
    await collect(child, sub.entries, `${path}/`, depth + 1, items, seen, warnings);
    seen.delete(id);
  }
}

async function downloadZip() {
  const button = $("zip");
  button.disabled = true;
  try {
    if (!streamingDownloads()) throw new VeilError("refused", "this browser cannot stream downloads, so it cannot save a whole folder; download the files one by one");
    setStatus("Reading the folder…");
    const items = [], warnings = [];
    await collect(folder, current.entries, "", 0, items, new Set([vf.hex(folder.slot)]), warnings);
    if (warnings.length) $("folder-warnings").replaceChildren(...warnings.map((w) => el("li", {}, w)));
    const total = items.reduce((a, x) => a + (x.size || 0), 0);
    const bar = $("folder-progress");
    bar.hidden = false;
    bar.max = Math.max(1, total);
    bar.value = 0;
    await runWorkerJob({ type: "zip", name: `${folder.locator.slice(0, 12)}.zip`, items, zip64: document.body.dataset.zip64 || "auto" }, {
      started: () => setStatus(`Downloading and decrypting ${items.length} items as a ZIP…`),
      progress: (n) => { bar.value = n; },
      done: () => {
        bar.value = bar.max;
        setStatus(`Downloaded ${items.length} items (${human(total)}), verified and decrypted.`);
        document.body.dataset.zipped = "1";
      },
    });
  } finally {
    button.disabled = false;
  }
}

// -- writing ------------------------------------------------------------------------------------
function backoff(attempt) { return Math.random() * Math.min(2000, 50 * 2 ** (attempt - 1)); }

/** Put ``entry`` (where the writer saw ``old``) into the folder: sign a new version on the current
 * one and store it compare-and-swap; on a lost race read again, re-apply, and name our earlier
 * attempt as a parent (nodes that took it move on). Never reports success unless saved. */
async function commitPut(entry, old) {
  const own = [];
  let seen = 0;
  for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
    const cur = await readFolder(folder);
    if (cur.paged) throw new VeilError("refused", "this folder is split into pages; add files to it with `veil put`");
    const next = fo.applyPut(cur.entries, entry, old);
    // Already there: done, unless it may be our own attempt that did not reach enough nodes.
    if (next === cur.entries && attempt === 1) return cur;
    seen = Math.max(seen, cur.record.seq);
    const seq = seen + 1;
    const { chain, merged } = fo.parentsFor(cur.record, cur.anchor, own);
    const body = await fo.sealBody(folder.readKey, folder.slot, seq, { entries: next });
    const rec = await fo.signRecord(folder.signer, seq, body, chain, merged);
    try {
      await call(`/api/mutable/${vf.hex(folder.slot)}`, {
        method: "PUT", headers: { "Content-Type": "application/octet-stream" }, body: new Blob([rec.raw]),
      });
      return rec;
    } catch (e) {
      if (e.kind !== "conflict" && e.kind !== "unavailable") throw e;
      own.push({ cs: rec.cs, base: cur.record.cs });
      seen = Math.max(seen, seq);
      await sleep(backoff(attempt + 1));
    }
  }
  throw new VeilError("conflict", `the folder is busy: ${MAX_ATTEMPTS} attempts lost a race with other writers; nothing was saved, try again`);
}

function uploadRow(name) {
  const status = el("span", { class: "status" }, "waiting…");
  const progress = el("progress", { max: 1, value: 0, "aria-label": `Upload progress of ${name}` });
  const li = el("li", { class: "upload" }, el("div", { class: "name" }, name), progress, el("div", { class: "row" }, status));
  $("folder-uploads").append(li);
  return {
    li,
    status(text) { status.textContent = text; },
    advance(n) { progress.value = n; },
    reconnecting() {},
    resumed() {},
    fail(e) { progress.remove(); status.className = "status error"; status.textContent = `Failed: ${e.message || e}`; li.dataset.state = "failed"; },
    done() { progress.value = progress.max; status.textContent = "Encrypted, uploaded and added to the folder."; li.dataset.state = "done"; },
  };
}

async function addFile(file, ui) {
  const name = file.name.normalize("NFC");
  const problem = fo.nameProblem(name);
  if (problem) throw new VeilError("refused", `cannot add ${fo.shown(file.name)}: ${problem}`);
  const cur = await readFolder(folder);
  if (cur.paged) throw new VeilError("refused", "this folder is split into pages; add files to it with `veil put`");
  const clash = cur.entries.find((e) => fo.fold(e.name) === fo.fold(name));
  if (clash) throw new VeilError("refused", `the folder already has an entry named ${fo.shown(clash.name)}; rename the file first`);
  ui.advance(0);
  const up = await encryptAndUpload(file, tenant, ui);
  const entry = { name, kind: "file", cap: await vf.readCap(up.key, up.mhash), size: up.size, mtime: up.mtime };
  if ([...up.type].length <= fo.MAX_MIME) entry.mime = up.type;
  ui.status("adding to the folder…");
  await commitPut(entry, null);
  ui.done();
}

let queue = Promise.resolve();
function enqueue(files) {
  for (const f of files) {
    const ui = uploadRow(f.name);
    queue = queue.then(() => addFile(f, ui).catch((e) => ui.fail(e))).then(() => refresh().catch(fail));
  }
}

/** A write link's holder may hand out the folder's read-only link (derived here, never sent). */
async function showReadLink() {
  const box = $("folder-read-link");
  box.value = location.origin + await fo.folderHref(folder.slot, folder.readKey);
  $("folder-share").hidden = false;
  $("folder-copy").addEventListener("click", async () => {
    box.select();
    try { await navigator.clipboard.writeText(box.value); $("folder-copy").textContent = "Copied"; } catch { $("folder-copy").textContent = "Press Ctrl+C"; }
  });
}

function setupUpload() {
  const input = $("folder-file-input");
  $("folder-upload").hidden = false;
  input.disabled = false;
  input.addEventListener("change", () => { const files = Array.from(input.files); input.value = ""; enqueue(files); });
}

// -- start --------------------------------------------------------------------------------------
export async function openFolder(t) {
  tenant = t;
  $("folder-view").hidden = false;
  const locator = decodeURIComponent(location.pathname.split("/")[2] || "");
  folder = { ...await fo.parseFolderLink(locator, location.hash.slice(1)), locator: locator.toLowerCase() };
  if (folder.writable && !(await fo.ed25519Available())) throw new VeilError("refused", "this browser cannot sign with Ed25519, so it cannot change folders");
  $("folder-kind").textContent = folder.writable ? "Encrypted folder · you can add files" : "Encrypted folder · read-only";
  $("folder-access").textContent = folder.writable
    ? "Anyone with this write link can add files to this folder."
    : "This link lets you open and download, not change, this folder.";
  document.title = `Folder – ${tenant.name}`;
  await refresh();
  $("zip").disabled = false;
  $("zip").addEventListener("click", () => downloadZip().catch(fail));
  if (folder.writable) { setupUpload(); await showReadLink(); }
  document.body.dataset.ready = "1";
}
