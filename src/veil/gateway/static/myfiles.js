// "My files": the share links this browser uploaded, kept in this browser only (IndexedDB of
// this origin), each entry sealed with AES-256-GCM under a key made here as non-extractable: the
// page can use it but no script can read it out, and nothing of the list ever reaches the gateway.
// docs/specs/gateway.md, "My files".
//
// Entry: { id, name, size, link, added, extra }; sealed as iv[12] ‖ AES-GCM(JSON), aad "veil/myfiles/v1".
// A delete-from-the-network action is not done here: whoever implements it calls
// ``setDeleteAction(async (entry) => ...)``; every row then gets a "Delete from the network"
// button (in its ``[data-delete-slot]``) that runs it and drops the row once it resolves.

const DB = "veil-myfiles";
const AAD = new TextEncoder().encode("veil/myfiles/v1");
let dbPromise = null;
let deleteAction = null;
const listeners = new Set();

function request(r) {
  return new Promise((resolve, reject) => { r.onsuccess = () => resolve(r.result); r.onerror = () => reject(r.error); });
}

function open() {
  if (!dbPromise) {
    dbPromise = new Promise((resolve, reject) => {
      const r = indexedDB.open(DB, 1);
      r.onupgradeneeded = () => {
        r.result.createObjectStore("keys");
        r.result.createObjectStore("files", { keyPath: "id", autoIncrement: true });
      };
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
    });
  }
  return dbPromise;
}

async function store(name, mode = "readonly") {
  return (await open()).transaction(name, mode).objectStore(name);
}

/** The list's key: made once per origin, non-extractable, kept as a CryptoKey object in IndexedDB. */
async function listKey() {
  const existing = await request((await store("keys")).get("list"));
  if (existing) return existing;
  const key = await crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
  await request((await store("keys", "readwrite")).add(key, "list")).catch(() => {}); // another tab won the race
  return await request((await store("keys")).get("list"));
}

export async function addFile(entry) {
  const key = await listKey();
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const plain = new TextEncoder().encode(JSON.stringify({ ...entry, added: entry.added || Date.now() }));
  const ct = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: AAD }, key, plain));
  const id = await request((await store("files", "readwrite")).add({ iv, ct }));
  changed();
  return id;
}

/** Every entry this browser can open, newest first (an entry that fails to open is skipped). */
export async function listFiles() {
  const key = await listKey();
  const rows = await request((await store("files")).getAll());
  const out = [];
  for (const row of rows) {
    try {
      const plain = await crypto.subtle.decrypt({ name: "AES-GCM", iv: row.iv, additionalData: AAD }, key, row.ct);
      out.push({ ...JSON.parse(new TextDecoder().decode(plain)), id: row.id });
    } catch { /* sealed under a key this browser no longer has */ }
  }
  return out.sort((a, b) => b.added - a.added);
}

export async function removeFile(id) {
  await request((await store("files", "readwrite")).delete(id));
  changed();
}

/** Raw stored rows (tests check that no link or name is kept in the clear). */
export async function sealedRows() { return await request((await store("files")).getAll()); }

export function setDeleteAction(fn) { deleteAction = fn; changed(); }
export function getDeleteAction() { return deleteAction; }
export function onChange(fn) { listeners.add(fn); }
function changed() { for (const fn of listeners) fn(); }
