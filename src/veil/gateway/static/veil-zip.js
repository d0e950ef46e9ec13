// A streaming ZIP writer (stored, no compression), for "download the whole folder" (docs/specs/gateway.md,
// "Folders in the browser"). Each file is a local header, its bytes as they are decrypted, and a data
// descriptor with the CRC-32 (bit 3), so nothing is held in memory; names are UTF-8 (bit 11); ZIP64 records
// are written where a size, an offset or the entry count does not fit 32 (16) bits, or always on request.
// About 150 lines of our own rather than a library: stored entries are all a folder of encrypted (hence
// incompressible) files needs, and the page's CSP allows no third-party code.

const enc = new TextEncoder();
const MAX32 = 0xffffffff;

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(data, crc = 0) {
  let c = (crc ^ MAX32) >>> 0;
  for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ MAX32) >>> 0;
}

class Bytes {
  constructor(n) { this.b = new Uint8Array(n); this.dv = new DataView(this.b.buffer); this.p = 0; }
  u16(v) { this.dv.setUint16(this.p, v, true); this.p += 2; return this; }
  u32(v) { this.dv.setUint32(this.p, v >>> 0, true); this.p += 4; return this; }
  u64(v) { this.dv.setBigUint64(this.p, BigInt(v), true); this.p += 8; return this; }
  raw(a) { this.b.set(a, this.p); this.p += a.length; return this; }
}

function dosDateTime(mtime) {
  const d = new Date((Number.isFinite(mtime) ? mtime : 0) * 1000);
  if (d.getUTCFullYear() < 1980) return [0, (1 << 5) | 1]; // 1980-01-01 00:00
  if (d.getUTCFullYear() > 2107) return [(23 << 11) | (59 << 5) | 29, (127 << 9) | (12 << 5) | 31];
  const time = (d.getUTCHours() << 11) | (d.getUTCMinutes() << 5) | (d.getUTCSeconds() >> 1);
  const date = ((d.getUTCFullYear() - 1980) << 9) | ((d.getUTCMonth() + 1) << 5) | d.getUTCDate();
  return [time, date];
}

export class ZipWriter {
  /** ``zip64``: "auto" (only where needed) or "always" (tests of the ZIP64 records). */
  constructor({ zip64 = "auto" } = {}) {
    this.always64 = zip64 === "always";
    this.offset = 0;
    this.entries = [];
    this.current = null;
  }

  _emit(bytes) { this.offset += bytes.length; return bytes; }

  /** A directory entry ("path/"), complete in itself. */
  directory(path, mtime) {
    const name = enc.encode(path.endsWith("/") ? path : `${path}/`);
    const e = { name, offset: this.offset, size: 0, crc: 0, dir: true, flags: 0x0800, time: dosDateTime(mtime), zip64: this.always64 };
    this.entries.push(e);
    return this._emit(this._local(e));
  }

  /** Start a file of ``size`` bytes: its local header. Then ``data`` for each chunk, then ``end``. */
  begin(path, size, mtime) {
    if (this.current) throw new Error("zip: the previous file is not finished");
    const e = { name: enc.encode(path), offset: this.offset, size, crc: 0, got: 0, dir: false, flags: 0x0808, time: dosDateTime(mtime) };
    e.zip64 = this.always64 || size >= MAX32 || this.offset >= MAX32;
    this.entries.push(e);
    this.current = e;
    return this._emit(this._local(e));
  }

  data(chunk) {
    const e = this.current;
    e.crc = crc32(chunk, e.crc);
    e.got += chunk.length;
    if (e.got > e.size) throw new Error("zip: more bytes than the file's size");
    this.offset += chunk.length;
    return chunk;
  }

  end() {
    const e = this.current;
    if (e.got !== e.size) throw new Error(`zip: ${e.got} bytes written, the file has ${e.size}`);
    this.current = null;
    const d = new Bytes(e.zip64 ? 24 : 16).u32(0x08074b50).u32(e.crc);
    if (e.zip64) d.u64(e.size).u64(e.size); else d.u32(e.size).u32(e.size);
    return this._emit(d.b);
  }

  _local(e) {
    const extra = e.zip64 ? new Bytes(20).u16(1).u16(16).u64(0).u64(0).b : new Uint8Array(0);
    const sizes = e.zip64 ? MAX32 : 0; // sizes and CRC follow in the data descriptor
    return new Bytes(30 + e.name.length + extra.length)
      .u32(0x04034b50).u16(e.zip64 ? 45 : 20).u16(e.flags).u16(0).u16(e.time[0]).u16(e.time[1])
      .u32(0).u32(sizes).u32(sizes).u16(e.name.length).u16(extra.length).raw(e.name).raw(extra).b;
  }

  /** The central directory and end records. */
  finish() {
    if (this.current) throw new Error("zip: the last file is not finished");
    const start = this.offset;
    const parts = [];
    for (const e of this.entries) {
      const big = this.always64 || e.size >= MAX32 || e.offset >= MAX32;
      const extra = big ? new Bytes(28).u16(1).u16(24).u64(e.size).u64(e.size).u64(e.offset).b : new Uint8Array(0);
      const attrs = e.dir ? ((0o40755 << 16) | 0x10) >>> 0 : (0o100644 << 16) >>> 0;
      parts.push(new Bytes(46 + e.name.length + extra.length)
        .u32(0x02014b50).u16((3 << 8) | 45).u16(big || e.zip64 ? 45 : 20).u16(e.flags).u16(0).u16(e.time[0]).u16(e.time[1])
        .u32(e.crc).u32(big ? MAX32 : e.size).u32(big ? MAX32 : e.size).u16(e.name.length).u16(extra.length).u16(0)
        .u16(0).u16(0).u32(attrs).u32(big ? MAX32 : e.offset).raw(e.name).raw(extra).b);
    }
    const cdSize = parts.reduce((a, p) => a + p.length, 0);
    const count = this.entries.length;
    const need64 = this.always64 || count >= 0xffff || cdSize >= MAX32 || start >= MAX32;
    if (need64) {
      const eocd64At = start + cdSize;
      parts.push(new Bytes(56).u32(0x06064b50).u64(44).u16((3 << 8) | 45).u16(45).u32(0).u32(0)
        .u64(count).u64(count).u64(cdSize).u64(start).b);
      parts.push(new Bytes(20).u32(0x07064b50).u32(0).u64(eocd64At).u32(1).b);
    }
    parts.push(new Bytes(22).u32(0x06054b50).u16(0).u16(0).u16(need64 ? 0xffff : count).u16(need64 ? 0xffff : count)
      .u32(need64 ? MAX32 : cdSize).u32(need64 ? MAX32 : start).u16(0).b);
    const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
    let off = 0;
    for (const p of parts) { out.set(p, off); off += p.length; }
    return this._emit(out);
  }
}
