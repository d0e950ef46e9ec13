"""The browser path and the CLI path read each other's files byte for byte, through the
devnet's own gateway node; bad links explain themselves."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest
from gateway_browser import ARTIFACTS, Env, download_in_page, random_file, sha256_file, upload_in_page
from playwright.sync_api import Browser, BrowserContext, Page

pytestmark = pytest.mark.browser


def _png(width: int = 8, height: int = 8) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\xd0\x44\x2c" * width for _ in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def test_browser_upload_then_veil_get(env: Env, page: Page, tmp_path: Path) -> None:
    files = [
        random_file(tmp_path / "three-segments.bin", 3 * (1 << 20) + 12345, seed=2),
        random_file(tmp_path / "exactly one segment.bin", 1 << 20, seed=3),
        tmp_path / "empty.txt",
        tmp_path / "ünïcødé name.txt",
    ]
    files[2].write_bytes(b"")
    files[3].write_text("hello from the browser\n")
    page.goto(env.gateway + "/")
    links = upload_in_page(page, files)
    assert all(link.startswith(env.gateway + "/f/") and "#" in link for link in links)
    for src, link in zip(files, links, strict=True):
        out = tmp_path / f"got-{src.name}"
        env.veil("get", link, "-o", str(out))
        assert out.read_bytes() == src.read_bytes(), src.name
        info = env.veil("info", link).stdout.decode()
        assert f"name:        {src.name}" in info
    assert "text/plain" in env.veil("info", links[3]).stdout.decode()
    assert page.errors == []  # type: ignore[attr-defined]


def test_veil_put_then_browser_download(env: Env, page: Page, tmp_path: Path) -> None:
    src = random_file(tmp_path / "from-cli.bin", 5 * (1 << 20) + 7, seed=4)
    link = env.put(src)
    assert link.startswith(env.gateway + "/f/")  # devnet up wrote its gateway into network.json
    got = download_in_page(page, link, tmp_path / "downloaded.bin")
    assert sha256_file(got) == sha256_file(src)
    assert page.inner_text("#file-name") == "from-cli.bin"
    assert "5.2 MB" in page.inner_text("#file-size")
    assert "verified and decrypted" in page.inner_text("#download-status")
    page.wait_for_selector("#file-cost[data-free='1']")
    assert page.inner_text("#file-cost") == "Free download"


def test_image_preview_and_empty_file(env: Env, page: Page, tmp_path: Path) -> None:
    img = tmp_path / "dot.png"
    img.write_bytes(_png())
    page.goto(env.gateway + "/f/" + env.put(img).split("/f/", 1)[1])
    page.wait_for_selector("#preview img", timeout=30_000)
    assert page.eval_on_selector("#preview img", "i => i.naturalWidth") == 8
    assert page.get_attribute("#preview img", "alt") == "Preview of dot.png"
    empty = tmp_path / "nothing.dat"
    empty.write_bytes(b"")
    got = download_in_page(page, env.put(empty), tmp_path / "nothing-back.dat")
    assert got.read_bytes() == b""


def test_pdf_preview_is_sandboxed(env: Env, page: Page, tmp_path: Path) -> None:
    """Issue 19 item 10: an uploader-typed PDF is shown in an iframe without scripts, forms or navigation."""
    pdf = tmp_path / "doc.pdf"
    pdf.write_bytes(b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
                    b"trailer<</Root 1 0 R>>\n%%EOF\n")
    page.goto(env.gateway + "/f/" + env.put(pdf).split("/f/", 1)[1])
    page.wait_for_selector("#preview iframe", state="attached", timeout=30_000)
    assert page.get_attribute("#preview iframe", "sandbox") == ""


def test_two_hundred_megabytes_stream_both_ways(env: Env, context: BrowserContext, tmp_path: Path) -> None:
    """Upload reads the file slice by slice; download goes through the service worker stream."""
    src = random_file(tmp_path / "big.bin", 200 * 10**6, seed=5)
    page = context.new_page()
    page.goto(env.gateway + "/")
    [link] = upload_in_page(page, [src], timeout=600_000)
    got = download_in_page(page, link, tmp_path / "big-back.bin", timeout=600_000)
    assert got.stat().st_size == src.stat().st_size
    assert sha256_file(got) == sha256_file(src)
    # and the CLI reads the browser's upload too (ranged, so the test stays quick)
    out = tmp_path / "tail.bin"
    env.veil("get", link, "--range", f"{199 * 10**6}-", "-o", str(out))
    with open(src, "rb") as f:
        f.seek(199 * 10**6)
        assert out.read_bytes() == f.read()


def _message(page: Page) -> tuple[str, str]:
    page.wait_for_selector("#message:not([hidden])", timeout=30_000)
    return page.get_attribute("#message", "data-kind") or "", page.inner_text("#message")


def test_bad_links_say_what_is_wrong(env: Env, page: Page, tmp_path: Path) -> None:
    src = tmp_path / "note.txt"
    src.write_text("a note")
    link = env.put(src)
    verify, key = link.split("/f/", 1)[1].split("#", 1)

    page.goto(f"{env.gateway}/f/{verify[:-3]}xyz#{key}")
    kind, text = _message(page)
    assert kind == "garbled" and "garbled" in text.lower()

    page.goto(f"{env.gateway}/f/{verify}")
    kind, text = _message(page)
    assert kind == "nokey" and "no key" in text.lower()

    other = env.put(random_file(tmp_path / "other.bin", 10, seed=9))
    page.goto(f"{env.gateway}/f/{verify}#{other.split('#', 1)[1]}")
    kind, text = _message(page)
    assert kind == "wrongkey" and "does not belong" in text

    # A well-formed link to a file nobody stored.
    from veil.format.caps import ReadCap, new_file_key

    ghost = ReadCap(new_file_key(), bytes(32)).link(env.gateway)
    page.goto(ghost)
    kind, text = _message(page)
    assert kind == "notfound" and "no node" in text.lower()

    page.goto(env.gateway + "/no/such/page")
    page.wait_for_selector("#notfound-view:not([hidden])")
    assert page.errors == []  # type: ignore[attr-defined]


def test_phone_screen_and_keyboard_only(env: Env, browser: Browser, tmp_path: Path) -> None:
    ctx = browser.new_context(viewport={"width": 375, "height": 667}, is_mobile=True, has_touch=True,
                              accept_downloads=True)
    try:
        page = ctx.new_page()
        page.goto(env.gateway + "/")
        page.wait_for_selector("body[data-loaded='1']")
        # nothing wider than the screen
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        order = []
        for _ in range(4):
            page.keyboard.press("Tab")
            order.append(page.evaluate("document.activeElement.id || document.activeElement.className"))
        assert order[:3] == ["skip", "brand", "file-input"], order
        # the focused file input shows a visible focus ring on its button
        page.focus("#file-input")
        outline = page.eval_on_selector("#choose", "e => getComputedStyle(e).outlineStyle")
        assert outline not in ("", "none")
        # Every form control has an accessible label.
        unlabeled = page.evaluate(
            "Array.from(document.querySelectorAll('input,button,textarea')).filter(e => "
            "!(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim()).map(e => e.id)"
        )
        assert unlabeled == []
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "gateway-phone-upload.png"), full_page=True)
        # keyboard-only download: Tab to the button, press Enter
        src = random_file(tmp_path / "kbd.bin", 70_000, seed=11)
        page.goto(env.put(src))
        page.wait_for_selector("body[data-ready='1']")
        for _ in range(10):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.id") == "download":
                break
        assert page.evaluate("document.activeElement.id") == "download"
        with page.expect_download() as dl:
            page.keyboard.press("Enter")
        dl.value.save_as(tmp_path / "kbd-back.bin")
        assert (tmp_path / "kbd-back.bin").read_bytes() == src.read_bytes()
    finally:
        ctx.close()
