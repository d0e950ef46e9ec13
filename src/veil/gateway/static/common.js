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
  payment: "This download is not available here",
  conflict: "Someone else changed this folder",
  busy: "The network is busy",
  expired: "The upload stopped",
};

/** A sentence for a visitor: our VeilErrors carry one; anything else (a bug) gets a generic one. */
export function visitorText(err) {
  if (err instanceof vf.VeilError) return err.message;
  return "something went wrong in this page; reload it and try again";
}

export function showMessage(err, titles = {}) {
  const box = $("message");
  const kind = err instanceof vf.VeilError ? err.kind : "unavailable";
  const parts = [el("h2", {}, titles[kind] || TITLES[kind] || "Something went wrong"), el("p", {}, visitorText(err))];
  if (err && err.requestId) parts.push(el("p", { class: "reference" }, `Reference for the site's operator: ${err.requestId}`));
  box.replaceChildren(...parts);
  box.dataset.kind = kind;
  if (err && err.requestId) box.dataset.requestId = err.requestId;
  box.hidden = false;
}

/** The VeilError for an error reply (status, its JSON body, the X-Request-Id header). */
export function describeHttp(status, reply, rid) {
  const kind = status === 404 ? "notfound" : status === 413 || status === 415 ? "refused"
    : status === 400 ? "garbled" : status === 402 ? "payment" : status === 409 ? "conflict"
    : status === 503 || status === 429 ? "busy" : "unavailable";
  const fallback = status >= 500 ? "the network is busy; try again in a minute" : "the gateway could not do this; try again";
  const e = new vf.VeilError(kind, (reply && typeof reply.message === "string" && reply.message) || fallback);
  e.requestId = (reply && reply.request_id) || rid || null;
  e.status = status;
  return e;
}

/** Percent, speed and time left of a transfer, from its progress over the last seconds. */
export class Meter {
  constructor(total) { this.total = total; this.samples = [[performance.now(), 0]]; }
  update(done) {
    const now = performance.now();
    this.samples.push([now, done]);
    while (this.samples.length > 2 && now - this.samples[0][0] > 8000) this.samples.shift();
    this.done = done;
  }
  /** "42% · 12.3 MB/s · about 1 min 20 s left" */
  text() {
    const pct = this.total ? Math.floor((100 * this.done) / this.total) : 100;
    const [t0, b0] = this.samples[0];
    const [t1, b1] = this.samples[this.samples.length - 1];
    const secs = (t1 - t0) / 1000;
    if (secs < 0.5 || b1 <= b0) return `${pct}%`;
    const speed = (b1 - b0) / secs;
    return `${pct}% · ${human(Math.round(speed))}/s · ${duration((this.total - this.done) / speed)} left`;
  }
}

export function duration(s) {
  s = Math.max(0, Math.round(s));
  if (s < 60) return `about ${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `about ${m} min ${s % 60} s`;
  return `about ${Math.floor(m / 60)} h ${m % 60} min`;
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
  let reply = null;
  try { reply = await r.json(); } catch { /* not JSON */ }
  throw describeHttp(r.status, reply, r.headers.get("X-Request-Id"));
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
        const err = new vf.VeilError(m.kind || "unavailable", m.message);
        err.requestId = m.requestId || null;
        reject(err);
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
