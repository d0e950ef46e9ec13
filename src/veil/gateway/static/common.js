// Helpers shared by the pages (app.js: upload and file links; folder-app.js: folder links):
// DOM building without HTML strings, messages, calls to the gateway's API, and the streaming
// download helper (sw.js). Names from sealed metadata or folders only ever reach the page as text.

import * as vf from "./veil-format.js";

export const $ = (id) => document.getElementById(id);

export function human(n) {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let u = 0;
  while (n >= 1000 && u < units.length - 1) { n /= 1000; u++; }
  return u === 0 ? `${n} B` : `${n.toFixed(1)} ${units[u]}`;
}

export function el(tag, props = {}, ...children) {
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
  conflict: "Someone else changed this folder",
};

export function showMessage(err, titles = {}) {
  const box = $("message");
  const kind = err instanceof vf.VeilError ? err.kind : "unavailable";
  box.replaceChildren(el("h2", {}, titles[kind] || TITLES[kind] || "Something went wrong"), el("p", {}, err.message || String(err)));
  box.dataset.kind = kind;
  box.hidden = false;
}

/** fetch that turns error replies into VeilErrors carrying the gateway's message. */
export async function call(path, init = {}) {
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
    : r.status === 400 ? "garbled" : r.status === 402 ? "payment" : r.status === 409 ? "conflict" : "unavailable";
  throw new vf.VeilError(kind, message);
}

/**
 * Hand one job to the service worker (scope /dl/) by postMessage, never over the network, and
 * navigate a hidden iframe to /dl/<token>: the worker answers with a stream it decrypts as it
 * fetches, so the browser writes the file to disk without holding it in memory.
 * ``on``: { started(), progress(bytes), done() }; resolves when the stream ended.
 */
export async function runWorkerJob(job, on = {}) {
  const reg = await navigator.serviceWorker.register("/sw.js", { scope: "/dl/", type: "module" });
  const sw = reg.active || await new Promise((resolve) => {
    const w = reg.installing || reg.waiting;
    w.addEventListener("statechange", () => { if (w.state === "activated") resolve(w); });
  });
  const token = vf.hex(crypto.getRandomValues(new Uint8Array(16)));
  const ch = new MessageChannel();
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new vf.VeilError("unavailable", "the download helper did not start; reload the page and try again")), 15000);
    ch.port1.onmessage = (e) => {
      const m = e.data;
      if (m.type === "ready") {
        document.body.append(el("iframe", { src: `/dl/${token}`, hidden: true, title: "download" }));
      } else if (m.type === "started") {
        clearTimeout(timer);
        if (on.started) on.started();
      } else if (m.type === "progress") {
        if (on.progress) on.progress(m.done);
      } else if (m.type === "done") {
        if (on.done) on.done(m.done);
        resolve();
      } else if (m.type === "error") {
        clearTimeout(timer);
        reject(new vf.VeilError(m.kind || "unavailable", m.message));
      }
    };
    sw.postMessage({ ...job, token }, [ch.port2]);
  });
}

export function streamingDownloads() { return window.isSecureContext && "serviceWorker" in navigator; }

export function saveBlob(blob, name) {
  const a = el("a", { href: URL.createObjectURL(blob), download: name });
  document.body.append(a);
  a.click();
  a.remove();
}
