"""Folders in the browser (docs/specs/gateway.md, "Folders in the browser"): chromium opens folder
links of the devnet's gateway, checks and decrypts the listing itself, downloads a file and the
whole tree as a ZIP stream, and with a write link uploads into the folder; a read link cannot.
Folders are made at the format level (tests/browser/folder_slots.py)."""

from __future__ import annotations

import base64
import io
import json
import threading
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from folder_slots import put_raw, read_listing, write_version
from gateway_browser import ARTIFACTS, Env, RecordingProxy, random_file
from playwright.sync_api import Browser, Page, Route

from veil.format.caps import parse_read_cap
from veil.format.folder import FILE, FOLDER, Entry, Listing, PageRef, sorted_listing
from veil.format.folder_caps import FolderWriteCap, new_folder
from veil.format.folder_seal import PAGE, seal_body, seal_child_write_cap
from veil.format.mutable import sign_record

pytestmark = pytest.mark.browser

VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "folders_v1.json").read_text())
EVIL = "<img src=x onerror=document.body.dataset.pwned=1>"


def test_browser_matches_the_folder_vectors(env: Env, page: Page) -> None:
    """veil-folder.js against tests/vectors/folders_v1.json, byte for byte, in chromium."""
    page.goto(env.gateway + "/")
    page.wait_for_selector("body[data-loaded='1']")
    got = page.evaluate("""async (V) => {
      const fo = await import("/static/veil-folder.js");
      const vf = await import("/static/veil-format.js");
      const unhex = (h) => Uint8Array.from(h.match(/../g) || [], (x) => parseInt(x, 16));
      const out = {};
      const frag = (l) => l.split("#")[1], loc = (l) => l.split("/d/")[1].split("#")[0];
      const r = await fo.parseFolderLink(loc(V.link), frag(V.link));
      const w = await fo.parseFolderLink(loc(V.write_link), frag(V.write_link));
      out.slot = vf.hex(r.slot); out.readKey = vf.hex(r.readKey); out.verifyKey = vf.hex(r.verifyKey);
      out.writeReadKey = vf.hex(w.readKey); out.publicKey = vf.hex(w.signer.publicKey); out.writable = [r.writable, w.writable];
      out.readCap = await fo.folderReadCap(r.readKey, r.slot);
      out.hrefs = [await fo.folderHref(r.slot, r.readKey), await fo.folderHref(w.slot, w.readKey, w.seed)];
      const rec1 = await fo.parseRecord(unhex(V.record_v1), r.slot);
      const rec2 = await fo.parseRecord(unhex(V.record_v2), r.slot);
      out.cs = [fo.checkstringText(rec1.cs), fo.checkstringText(rec2.cs)];
      out.chain2 = rec2.chain.map(fo.checkstringText);
      const listing = await fo.openBody(r.readKey, r.slot, 2, rec2.payload);
      out.entries = listing.entries.map((e) => ({ ...e, wcap: e.wcap ? vf.hex(e.wcap) : null }));
      out.listingCbor = vf.hex(vf.cborEncode(fo.listingValue(listing)));
      const salt = unhex(V.salt);
      out.body2 = vf.hex(await fo.sealBody(r.readKey, r.slot, 2, listing, fo.ROOT, salt));
      out.record2 = vf.hex((await fo.signRecord(w.signer, 2, unhex(V.body_v2), [rec1.cs])).raw);
      const photos = listing.entries.find((e) => e.name === "Photos");
      const child = await fo.parseFolderReadCap(photos.cap);
      out.childSeed = vf.hex(await fo.openChildWriteSeed(w.seed, w.slot, child.slot, photos.wcap));
      // every kind of damage is refused
      const fails = async (f) => { try { await f(); return "accepted"; } catch (e) { return e.kind || e.message; } };
      const flip = (h, i) => { const b = unhex(h); b[i] ^= 1; return b; };
      const raw2 = unhex(V.record_v2);
      const zeroLoc = await fo.locatorOf(new Uint8Array(32));
      out.tamper = {
        signature: await fails(() => fo.parseRecord(flip(V.record_v2, raw2.length - 1), r.slot)),
        payload: await fails(() => fo.parseRecord(flip(V.record_v2, 200), r.slot)),
        seq: await fails(() => fo.parseRecord(flip(V.record_v2, 44), r.slot)),
        otherSlot: await fails(() => fo.parseRecord(raw2, new Uint8Array(32))),
        truncated: await fails(() => fo.parseRecord(raw2.subarray(0, raw2.length - 1), r.slot)),
        body: await fails(() => fo.openBody(r.readKey, r.slot, 2, flip(V.body_v2, 300))),
        wrongSeq: await fails(() => fo.openBody(r.readKey, r.slot, 3, unhex(V.body_v2))),
        wrongKey: await fails(() => fo.openBody(new Uint8Array(32), r.slot, 2, unhex(V.body_v2))),
        nokey: await fails(() => fo.parseFolderLink(loc(V.link), "")),
        garbled: await fails(() => fo.parseFolderLink(loc(V.link), frag(V.link).slice(0, -1) + "a")),
        foreignWrite: await fails(() => fo.parseFolderLink(zeroLoc, frag(V.write_link))),
      };
      out.names = ["ok.txt", "..", ".", "a/b", "a\\\\b", "nul\\u0000", "tab\\t", "", "e\\u0301", "x".repeat(256)].map(fo.nameProblem);
      out.local = fo.localNames(["README", "readme", "a.txt", "A.TXT", "../x", "Café", "CAFÉ"]).map((l) => l.local);
      return out;
    }""", VECTORS)
    V = VECTORS
    assert (got["slot"], got["readKey"], got["verifyKey"]) == (V["slot_id"], V["read_key"], V["verify_key"])
    assert got["writeReadKey"] == V["read_key"] and got["publicKey"] == V["public_key"]
    assert got["writable"] == [False, True] and got["readCap"] == V["read_cap"]
    assert got["hrefs"] == ["/d/" + V["link"].split("/d/")[1], "/d/" + V["write_link"].split("/d/")[1]]
    assert got["cs"] == [V["checkstring_v1"], V["checkstring_v2"]] and got["chain2"] == [V["checkstring_v1"]]
    assert [{k: v for k, v in e.items() if v is not None} for e in got["entries"]] == \
        [{k: v for k, v in e.items() if v is not None} for e in V["entries"]]
    assert got["listingCbor"] == V["listing_cbor"]
    assert got["body2"] == V["body_v2"] and got["record2"] == V["record_v2"]
    assert got["childSeed"] == FolderWriteCap(bytes([7]) * 32).seed.hex()
    assert got["tamper"] == {"signature": "integrity", "payload": "integrity", "seq": "integrity",
                             "otherSlot": "integrity", "truncated": "integrity", "body": "wrongkey",
                             "wrongSeq": "wrongkey", "wrongKey": "wrongkey", "nokey": "nokey", "garbled": "garbled",
                             "foreignWrite": "wrongkey"}, got["tamper"]
    assert got["names"][0] is None and all(p for p in got["names"][1:]), got["names"]
    assert got["local"] == ["README", "readme (2)", "a.txt", "A (2).TXT", None, "Café", "CAFÉ (2)"]


def test_zip_writer_output_opens_with_python_zipfile(env: Env, page: Page) -> None:
    """The ZIP writer's plain and ZIP64 records, read back by Python's zipfile."""
    page.goto(env.gateway + "/")
    page.wait_for_selector("body[data-loaded='1']")
    for mode in ("auto", "always"):
        b64 = page.evaluate("""async (mode) => {
          const { ZipWriter } = await import("/static/veil-zip.js");
          const vf = await import("/static/veil-format.js");
          const z = new ZipWriter({ zip64: mode });
          const enc = new TextEncoder();
          const parts = [z.directory("sub", 1700000000)];
          for (const [path, text] of [["sub/ünï.txt", "hello"], ["empty", ""], ["b.bin", "x".repeat(70000)]]) {
            const data = enc.encode(text);
            parts.push(z.begin(path, data.length, 1700000000));
            if (data.length) { parts.push(z.data(data.subarray(0, 10))); parts.push(z.data(data.subarray(10))); }
            parts.push(z.end());
          }
          parts.push(z.finish());
          return vf.toBase64(vf.concat(...parts));
        }""", mode)
        zf = zipfile.ZipFile(io.BytesIO(base64.b64decode(b64)))
        assert zf.testzip() is None
        assert zf.namelist() == ["sub/", "sub/ünï.txt", "empty", "b.bin"]
        assert zf.read("sub/ünï.txt") == b"hello" and zf.read("empty") == b"" and zf.read("b.bin") == b"x" * 70000
        assert zf.getinfo("b.bin").date_time[0] == 2023


@dataclass
class Tree:
    w: FolderWriteCap
    sub: FolderWriteCap
    files: dict[str, bytes]  # path in the tree -> content


def _file_entry(env: Env, path: Path, name: str) -> Entry:
    cap = parse_read_cap(env.put(path))
    return Entry(name, FILE, cap.to_string(), size=path.stat().st_size, mtime=1_700_000_000)


@pytest.fixture(scope="module")
def tree(env: Env, tmp_path_factory: pytest.TempPathFactory) -> Tree:
    d = tmp_path_factory.mktemp("folder-src")
    a = random_file(d / "a.bin", 1_300_000, seed=21)
    b = d / "b.txt"
    b.write_text("hello from a folder\n")
    c = random_file(d / "c.bin", 5_000, seed=22)
    root, sub = new_folder(), new_folder()
    write_version(env.net, sub, [_file_entry(env, c, "inner ü.bin")])
    write_version(env.net, root, [
        _file_entry(env, a, "a.bin"),
        _file_entry(env, b, EVIL),
        # a hostile name written by hand: the page must refuse it, never write it anywhere
        Entry("../escape.txt", FILE, _file_entry(env, b, "x").cap, size=b.stat().st_size),
        Entry("Sub", FOLDER, sub.read_cap().to_string(), wcap=seal_child_write_cap(root, sub)),
    ])
    return Tree(root, sub, {"a.bin": a.read_bytes(), EVIL: b.read_bytes(), "Sub/inner ü.bin": c.read_bytes()})


def _open(page: Page, link: str) -> None:
    page.goto(link)
    page.wait_for_selector("body[data-ready='1']", timeout=60_000)


def _row_names(page: Page) -> list[str]:
    return page.eval_on_selector_all("#folder-entries tbody tr.entry", "rows => rows.map(r => r.dataset.name)")


def test_read_link_lists_and_downloads(env: Env, page: Page, tree: Tree, tmp_path: Path) -> None:
    link = tree.w.read_cap().link(env.gateway)
    _open(page, link)
    assert sorted(_row_names(page)) == sorted(["a.bin", EVIL, "Sub"])
    # names are text, never markup
    assert page.locator("#folder-entries img").count() == 0 and page.evaluate("document.body.dataset.pwned") is None
    assert page.locator("#folder-entries td.name", has_text=EVIL).count() == 1
    assert 'refused entry "../escape.txt": contains "/"' in page.inner_text("#folder-warnings")
    assert page.is_hidden("#folder-upload") and page.is_disabled("#folder-file-input")
    assert page.is_hidden("#folder-share")
    assert "read-only" in page.inner_text("#folder-kind").lower()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "gateway-folder.png"), full_page=True)
    # one file, through the service worker
    row = page.locator("#folder-entries tr.entry[data-name='a.bin']")
    with page.expect_download(timeout=120_000) as dl:
        row.locator("button").click()
    dl.value.save_as(tmp_path / "a.bin")
    assert dl.value.suggested_filename == "a.bin"
    assert (tmp_path / "a.bin").read_bytes() == tree.files["a.bin"]
    # subfolder navigation: a read link to the child (no write key without one for the parent)
    href = page.get_attribute("#folder-entries tr.entry[data-name='Sub'] a", "href") or ""
    assert "#w-" not in href
    page.click("#folder-entries tr.entry[data-name='Sub'] a")
    page.wait_for_function("() => document.body.dataset.ready === '1' && location.pathname.startsWith('/d/')"
                           " && document.querySelectorAll('#folder-entries tr.entry').length === 1", timeout=60_000)
    assert _row_names(page) == ["inner ü.bin"]
    assert page.errors == []  # type: ignore[attr-defined]


def test_whole_folder_as_zip(env: Env, page: Page, tree: Tree, tmp_path: Path) -> None:
    _open(page, tree.w.read_cap().link(env.gateway))
    with page.expect_download(timeout=120_000) as dl:
        page.click("#zip")
    out = tmp_path / "folder.zip"
    dl.value.save_as(out)
    page.wait_for_selector("body[data-zipped='1']", timeout=60_000)
    zf = zipfile.ZipFile(out)
    assert zf.testzip() is None
    assert sorted(zf.namelist()) == sorted([*tree.files, "Sub/"])
    for path, data in tree.files.items():
        assert zf.read(path) == data, path
    assert not any(".." in n or n.startswith("/") for n in zf.namelist())
    assert page.errors == []  # type: ignore[attr-defined]


def _upload(page: Page, path: Path, expect: str = "done") -> None:
    before = page.locator("#folder-uploads li.upload").count()
    page.set_input_files("#folder-file-input", str(path))
    page.wait_for_selector(f"#folder-uploads li.upload:nth-child({before + 1})[data-state]", timeout=120_000)
    li = page.locator("#folder-uploads li.upload").nth(before)
    assert li.get_attribute("data-state") == expect, li.inner_text()


def test_write_link_uploads_into_the_folder(env: Env, page: Page, tmp_path: Path) -> None:
    parent, sub = new_folder(), new_folder()
    write_version(env.net, sub, [])
    write_version(env.net, parent, [Entry("Sub", FOLDER, sub.read_cap().to_string(), wcap=seal_child_write_cap(parent, sub))])
    # the parent's write link opens the child's sealed write key: its link writes too
    _open(page, parent.write_link(env.gateway))
    assert "add files" in page.inner_text("#folder-kind").lower() and page.is_visible("#folder-choose")
    assert page.get_attribute("#folder-entries tr.entry[data-name='Sub'] a", "href") == sub.write_link("")
    assert page.input_value("#folder-read-link") == parent.read_cap().link(env.gateway)  # to hand out
    page.click("#folder-entries tr.entry[data-name='Sub'] a")
    page.wait_for_function("() => document.body.dataset.ready === '1' && location.hash.startsWith('#w-')"
                           " && document.querySelectorAll('#folder-entries tr.entry').length === 0", timeout=60_000)
    assert page.is_visible("#folder-empty")
    src = random_file(tmp_path / "from browser ☃.bin", 2_200_000, seed=23)
    _upload(page, src)
    page.wait_for_function("() => Array.from(document.querySelectorAll('#folder-entries tr.entry'))"
                           ".some(r => r.dataset.name === 'from browser ☃.bin')", timeout=60_000)
    # the format-level reader sees the browser's version, signed with the folder's key, and its entry
    rec, listing = read_listing(env.net, sub)
    assert rec.seq == 2 and rec.public_key == sub.signing_key.public_key
    [new] = listing.entries
    assert (new.name, new.kind, new.size) == ("from browser ☃.bin", FILE, src.stat().st_size)
    out = tmp_path / "back.bin"
    env.veil("get", new.cap, "-o", str(out))
    assert out.read_bytes() == src.read_bytes()
    # a name the folder already holds (after case folding) is refused before anything is uploaded
    same = tmp_path / "FROM BROWSER ☃.bin"
    same.write_bytes(b"x")
    page.set_input_files("#folder-file-input", str(same))
    page.wait_for_selector("#folder-uploads li.upload:nth-child(2)[data-state='failed']", timeout=60_000)
    assert "already has an entry" in page.inner_text("#folder-uploads li.upload:nth-child(2)")
    assert len(read_listing(env.net, sub)[1].entries) == 1
    assert page.errors == []  # type: ignore[attr-defined]


def test_a_lost_race_is_retried_not_lost(env: Env, page: Page, tmp_path: Path) -> None:
    """Another writer saves a version between the page's read and its write: the gateway answers
    409, the page reads again and saves both changes."""
    w = new_folder()
    first = write_version(env.net, w, [])
    other = _file_entry(env, random_file(tmp_path / "other.bin", 100, seed=24), "other.bin")
    raced = threading.Event()

    def race(route: Route) -> None:
        if route.request.method == "PUT" and not raced.is_set():
            raced.set()
            write_version(env.net, w, [other], base=first)  # wins: the page's version now conflicts
        route.continue_()

    page.route("**/api/mutable/*", race)
    _open(page, w.write_link(env.gateway))
    src = random_file(tmp_path / "mine.bin", 3000, seed=25)
    _upload(page, src)
    assert raced.is_set()
    rec, listing = read_listing(env.net, w)
    assert sorted(e.name for e in listing.entries) == ["mine.bin", "other.bin"]
    assert rec.seq == 3 and first.checkstring in rec.chain


def _gateway_put(env: Env, slot: bytes, raw: bytes) -> tuple[int, dict[str, str]]:
    req = urllib.request.Request(f"{env.gateway}/api/mutable/{slot.hex()}", data=raw, method="PUT",
                                 headers={"Content-Type": "application/octet-stream"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_a_read_link_cannot_write(env: Env, page: Page, tree: Tree) -> None:
    """The page offers no upload; a version forged without the write key is refused by the gateway
    and by every node; a stale version signed with the key loses its compare-and-swap."""
    _open(page, tree.w.read_cap().link(env.gateway))
    assert page.is_hidden("#folder-upload") and page.is_disabled("#folder-file-input")
    rec, listing = read_listing(env.net, tree.w)
    slot = tree.w.slot_id
    # forged: signed by another key (its public key does not hash to this slot)
    mallory = new_folder()
    forged = sign_record(mallory.signing_key, rec.seq + 1, seal_body(tree.w, rec.seq + 1, sorted_listing([])),
                         (rec.checkstring,))
    status, body = _gateway_put(env, slot, forged.raw)
    assert status == 400 and body["error"] == "bad_record", body
    assert set(put_raw(env.net, slot, forged.raw, rec.checkstring)) == {400}
    # damaged: the real key's record with one payload byte changed
    good = sign_record(tree.w.signing_key, rec.seq + 1, seal_body(tree.w, rec.seq + 1, listing), (rec.checkstring,))
    bad = bytearray(good.raw)
    bad[300] ^= 1
    assert _gateway_put(env, slot, bytes(bad))[0] == 400
    # stale: a validly signed version that does not build on the current one
    stale = sign_record(tree.w.signing_key, rec.seq, seal_body(tree.w, rec.seq, sorted_listing([])))
    status, body = _gateway_put(env, slot, stale.raw)
    assert status == 409 and body["error"] == "conflict", body
    assert read_listing(env.net, tree.w)[0].checkstring == rec.checkstring  # nothing changed


def test_stale_nodes_do_not_roll_the_folder_back(env: Env, page: Page, tmp_path: Path) -> None:
    """Version 2 reached only 7 of the 10 nodes (the others still hold version 1): the gateway
    resolves over all of them and the page shows version 2."""
    w = new_folder()
    v1 = write_version(env.net, w, [])
    entry = _file_entry(env, random_file(tmp_path / "new.bin", 10, seed=26), "new.bin")
    v2 = sign_record(w.signing_key, 2, seal_body(w, 2, sorted_listing([entry])), (v1.checkstring,))
    assert put_raw(env.net, w.slot_id, v2.raw, v1.checkstring, only=7) == [200] * 7
    with urllib.request.urlopen(f"{env.gateway}/api/mutable/{w.slot_id.hex()}", timeout=30) as r:
        assert r.read() == v2.raw and r.headers["X-Veil-Seq"] == "2"
        assert r.headers["X-Veil-Anchor"] == v2.checkstring.to_text()
    _open(page, w.read_cap().link(env.gateway))
    assert _row_names(page) == ["new.bin"] and page.get_attribute("body", "data-version") == "2"


def test_gateway_write_moves_nodes_holding_an_own_attempt_or_nothing(env: Env, tmp_path: Path) -> None:
    """A writer's earlier attempt that reached 3 nodes (an orphan) and two nodes that hold nothing:
    a version naming the attempt as merged is taken by all 10 through the gateway."""
    w = new_folder()
    v1 = sign_record(w.signing_key, 1, seal_body(w, 1, sorted_listing([])))
    assert put_raw(env.net, w.slot_id, v1.raw, None, only=8) == [200] * 8  # nodes 9 and 10 stay empty
    orphan = sign_record(w.signing_key, 2, seal_body(w, 2, sorted_listing([])), (v1.checkstring,))
    assert put_raw(env.net, w.slot_id, orphan.raw, v1.checkstring, only=3) == [200] * 3
    v3 = sign_record(w.signing_key, 3, seal_body(w, 3, sorted_listing([])), (v1.checkstring,), (orphan.checkstring,))
    status, body = _gateway_put(env, w.slot_id, v3.raw)
    assert status == 200 and body == {"seq": 3, "hash": v3.hash.hex(), "accepted": 10, "n": 10}, body
    assert read_listing(env.net, w)[0].checkstring == v3.checkstring
    # the same record again is a no-op success (a retried PUT); garbage is 400, too big 413
    assert _gateway_put(env, w.slot_id, v3.raw)[0] == 200
    assert _gateway_put(env, w.slot_id, b"VLMS")[0] == 400
    assert _gateway_put(env, b"\x00" * 31, v3.raw)[0] == 400
    assert _gateway_put(env, w.slot_id, bytes(300_000))[0] == 413
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"{env.gateway}/api/mutable/{new_folder().slot_id.hex()}", timeout=30)
    assert e.value.code == 404


def test_a_folder_that_contains_itself_zips_once(env: Env, page: Page, tmp_path: Path) -> None:
    w = new_folder()
    src = random_file(tmp_path / "f.bin", 1000, seed=27)
    write_version(env.net, w, [_file_entry(env, src, "f.bin"), Entry("loop", FOLDER, w.read_cap().to_string())])
    _open(page, w.read_cap().link(env.gateway))
    with page.expect_download(timeout=120_000) as dl:
        page.click("#zip")
    dl.value.save_as(tmp_path / "loop.zip")
    page.wait_for_selector("body[data-zipped='1']", timeout=60_000)
    zf = zipfile.ZipFile(tmp_path / "loop.zip")
    assert zf.namelist() == ["f.bin", "loop/"] and zf.read("f.bin") == src.read_bytes()
    assert "contains itself" in page.inner_text("#folder-warnings")


def test_a_paged_folder_is_read_but_not_written(env: Env, page: Page, tmp_path: Path) -> None:
    """A big folder's root lists pages (immutable files, each a sealed page body): the page fetches
    and opens them; adding to a paged folder is left to `veil put`."""
    w = new_folder()
    src = random_file(tmp_path / "p.bin", 500, seed=28)
    e = _file_entry(env, src, "x")
    groups = [[replace(e, name="alpha"), replace(e, name="beta")], [replace(e, name="mango")]]
    refs = []
    for i, group in enumerate(groups):
        body = tmp_path / f"page{i}"
        body.write_bytes(seal_body(w, 0, sorted_listing(group), PAGE))
        refs.append(PageRef("" if i == 0 else group[0].name, len(group), parse_read_cap(env.put(body)).to_string()))
    rec = sign_record(w.signing_key, 1, seal_body(w, 1, Listing(pages=tuple(refs))))
    assert put_raw(env.net, w.slot_id, rec.raw, None).count(200) == 10
    _open(page, w.write_link(env.gateway))
    assert _row_names(page) == ["alpha", "beta", "mango"]
    _upload(page, src, expect="failed")
    assert "split into pages" in page.inner_text("#folder-uploads")


def _forms(key: bytes, text: str) -> list[bytes]:
    return [text.encode(), text.upper().encode(), key, key.hex().encode(), key.hex().upper().encode(),
            base64.b64encode(key), base64.urlsafe_b64encode(key).rstrip(b"=")]


def test_no_folder_key_or_name_reaches_the_gateway(env: Env, page: Page, tmp_path: Path) -> None:
    """Every byte the (branded) gateway receives while the page lists, downloads, zips and uploads
    into a folder, and its whole log: no form of the read key or the write seed, no entry name."""
    w = new_folder()
    src = random_file(tmp_path / "s.bin", 70_000, seed=29)
    write_version(env.net, w, [_file_entry(env, src, "secret-entry-91b2.bin")])
    proxy = RecordingProxy(env.branded_port)
    try:
        origin = f"http://127.0.0.1:{proxy.port}"
        read_link, write_link = w.read_cap().link(origin), w.write_link(origin)
        _open(page, read_link)
        with page.expect_download(timeout=120_000) as dl:
            page.locator("#folder-entries tr.entry button").click()
        dl.value.save_as(tmp_path / "one")
        with page.expect_download(timeout=120_000) as dl:
            page.click("#zip")
        dl.value.save_as(tmp_path / "all.zip")
        page.wait_for_selector("body[data-zipped='1']", timeout=60_000)
        _open(page, write_link)
        _upload(page, random_file(tmp_path / "secret-upload-44c1.bin", 5000, seed=30))
    finally:
        proxy.close()
    assert (tmp_path / "one").read_bytes() == src.read_bytes()
    assert sorted(read_listing(env.net, w)[1].entries, key=lambda e: e.name)[1].name == "secret-upload-44c1.bin"
    wire = bytes(proxy.received)
    log = env.branded_log.read_bytes()
    assert b"GET /api/mutable/" in wire and b"PUT /api/mutable/" in wire and b"PUT /api/uploads/" in wire
    forms = _forms(w.read_cap().read_key, read_link.split("#", 1)[1]) + _forms(w.seed, write_link.split("#", 1)[1])
    for form in forms:
        assert form not in wire, "key material reached the gateway"
        assert form not in log, "key material in the gateway's log"
    for name in (b"secret-entry-91b2", b"secret-upload-44c1"):
        assert name not in wire and name not in log
    assert b"#" not in b"".join(line for line in wire.split(b"\r\n") if line.startswith((b"GET ", b"PUT ", b"POST ")))


def test_folder_page_on_a_phone(env: Env, browser: Browser, tree: Tree) -> None:
    ctx = browser.new_context(viewport={"width": 375, "height": 667}, is_mobile=True, has_touch=True)
    try:
        page = ctx.new_page()
        _open(page, tree.w.write_link(env.gateway))
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        unlabeled = page.evaluate(
            "() => Array.from(document.querySelectorAll('#folder-view input, #folder-view button')).filter(e => "
            "!(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim()).map(e => e.id)")
        assert unlabeled == []
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "gateway-folder-phone.png"), full_page=True)
    finally:
        ctx.close()


def test_two_pages_adding_at_once_both_land(env: Env, browser: Browser, tmp_path: Path) -> None:
    """Two visitors add files to one folder at the same moment, three each: whatever the
    interleaving, every file reported added is in the folder afterwards."""
    w = new_folder()
    write_version(env.net, w, [])
    ctxs = [browser.new_context() for _ in range(2)]
    try:
        pages = [c.new_page() for c in ctxs]
        for p in pages:
            _open(p, w.write_link(env.gateway))
        files = [[random_file(tmp_path / f"p{i}-{j}.bin", 3000 + j, seed=40 + 3 * i + j) for j in range(3)] for i in range(2)]
        for p, fs in zip(pages, files, strict=True):
            p.set_input_files("#folder-file-input", [str(f) for f in fs])
        for p in pages:
            p.wait_for_selector("#folder-uploads li.upload:nth-child(3)[data-state]", timeout=180_000)
            states = p.eval_on_selector_all("#folder-uploads li.upload", "ls => ls.map(l => l.dataset.state)")
            assert states == ["done"] * 3, p.inner_text("#folder-uploads")
        _, listing = read_listing(env.net, w)
        assert sorted(e.name for e in listing.entries) == sorted(f.name for fs in files for f in fs)
    finally:
        for c in ctxs:
            c.close()
