// Streaming download helper (scope /dl/). The page hands over one download at a time by
// postMessage (never over the network): token, verify part, key, sizes, name — or, for a
// whole folder, the list of its files (path, verify part, key, sizes). A navigation to
// /dl/<token> is then answered with a stream that fetches sealed segments from the gateway
// and decrypts each as it arrives (into a stored ZIP for a folder), so downloads larger than
// memory save to disk.

import { SegmentCipher, VeilError, chunksOf, openSegments, segmentCount } from "/static/veil-format.js";
import { ZipWriter } from "/static/veil-zip.js";

const jobs = new Map();

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (e) => e.waitUntil(self.clients.claim()));

self.addEventListener("message", (e) => {
  const m = e.data;
  if (!m || !["download", "zip"].includes(m.type) || !/^[0-9a-f]{32}$/.test(m.token) || !e.ports[0]) return;
  jobs.set(m.token, { ...m, port: e.ports[0] });
  // Forget jobs nobody started, so keys do not linger.
  setTimeout(() => jobs.delete(m.token), 60000);
  e.ports[0].postMessage({ type: "ready" });
});

self.addEventListener("fetch", (e) => {
  const url = new URL(e.request.url);
  const match = url.origin === self.location.origin && /^\/dl\/([0-9a-f]{32})$/.exec(url.pathname);
  const job = match && jobs.get(match[1]);
  if (!job) return; // the gateway answers with a page explaining what to do
  jobs.delete(match[1]);
  e.respondWith(job.type === "zip" ? respondZip(job) : respond(job));
});

function disposition(name) {
  const ascii = name.replace(/[^\x20-\x7e]|["\\]/g, "_");
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name)}`;
}

/** A download stream's failure, told to the page and to the browser's download. */
function failed(port, controller, err) {
  port.postMessage({ type: "error", kind: err.kind || "unavailable", message: err.message || String(err) });
  controller.error(err);
}

/** The browser cancelled a download: stop reading segments and tell the page. */
function cancelled(port, segments) {
  if (segments) segments.return();
  port.postMessage({ type: "error", kind: "unavailable", message: "the download was cancelled" });
}

async function respond(job) {
  const { port, size, segsize } = job;
  const cipher = await SegmentCipher.create(job.key, segmentCount(size, segsize));
  let segments = null;
  let done = 0;
  const stream = new ReadableStream({
    async start() {
      const r = await fetch(`/api/files/${encodeURIComponent(job.verify)}/segments?start=0`, { cache: "no-store", credentials: "omit" });
      if (!r.ok) {
        let message = r.status >= 500 ? "the network is busy; try again in a minute" : "the gateway could not send this file";
        let requestId = r.headers.get("X-Request-Id");
        try { const j = await r.json(); message = j.message || message; requestId = j.request_id || requestId; } catch { /* not JSON */ }
        port.postMessage({ type: "error", kind: r.status === 404 ? "notfound" : r.status === 402 ? "payment" : r.status === 503 ? "busy" : "unavailable", message, requestId });
        throw new VeilError("unavailable", message);
      }
      segments = openSegments(chunksOf(r.body), cipher, size, segsize);
      port.postMessage({ type: "started" });
    },
    async pull(controller) {
      try {
        const { value, done: end } = await segments.next();
        if (end) {
          controller.close();
          port.postMessage({ type: "done", done });
          return;
        }
        done += value.length;
        controller.enqueue(value);
        port.postMessage({ type: "progress", done });
      } catch (err) {
        failed(port, controller, err);
      }
    },
    cancel() {
      cancelled(port, segments);
    },
  }, { highWaterMark: 4 });
  return new Response(stream, {
    headers: {
      "Content-Type": "application/octet-stream",
      "Content-Disposition": disposition(job.name),
      "Content-Length": String(size),
      "X-Content-Type-Options": "nosniff",
    },
  });
}

async function openFile(item) {
  const r = await fetch(`/api/files/${encodeURIComponent(item.verify)}/segments?start=0`, { cache: "no-store", credentials: "omit" });
  if (!r.ok) {
    let message = `the gateway answered ${r.status} for ${item.path}`;
    try { message = `${item.path}: ${(await r.json()).message || message}`; } catch { /* not JSON */ }
    throw new VeilError(r.status === 404 ? "notfound" : r.status === 402 ? "payment" : "unavailable", message);
  }
  const cipher = await SegmentCipher.create(item.key, segmentCount(item.size, item.segsize));
  return openSegments(chunksOf(r.body), cipher, item.size, item.segsize);
}

/** A whole folder as a stored ZIP: one file at a time, each decrypted as its segments arrive. */
async function respondZip(job) {
  const { port } = job;
  const zip = new ZipWriter({ zip64: job.zip64 === "always" ? "always" : "auto" });
  const items = job.items;
  let i = 0, segments = null, done = 0, finished = false;
  const stream = new ReadableStream({
    start() { port.postMessage({ type: "started" }); },
    async pull(controller) {
      try {
        for (;;) {
          if (segments) {
            const { value, done: end } = await segments.next();
            if (!end) {
              done += value.length;
              controller.enqueue(zip.data(value));
              port.postMessage({ type: "progress", done });
              return;
            }
            segments = null;
            controller.enqueue(zip.end());
            i++;
            return;
          }
          if (i >= items.length) {
            if (!finished) {
              finished = true;
              controller.enqueue(zip.finish());
            }
            controller.close();
            port.postMessage({ type: "done", done });
            return;
          }
          const item = items[i];
          if (item.dir) {
            controller.enqueue(zip.directory(item.path, item.mtime));
            i++;
            return;
          }
          segments = await openFile(item);
          controller.enqueue(zip.begin(item.path, item.size, item.mtime));
          return;
        }
      } catch (err) {
        failed(port, controller, err);
      }
    },
    cancel() {
      cancelled(port, segments);
    },
  }, { highWaterMark: 4 });
  return new Response(stream, {
    headers: {
      "Content-Type": "application/zip",
      "Content-Disposition": disposition(job.name),
      "X-Content-Type-Options": "nosniff",
    },
  });
}
