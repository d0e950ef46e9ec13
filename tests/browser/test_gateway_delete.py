"""Deleting from the web app (docs/specs/caps.md, "Deletion keys"): the upload result's "Delete
from the network" removes the shares from the devnet's real nodes; a delete with any other key —
through the gateway's API or the CLI's own secret — is refused and the file stays readable."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from gateway_browser import Env, random_file, upload_in_page
from playwright.sync_api import Page

pytestmark = pytest.mark.browser


def _post(url: str, body: dict[str, str]) -> tuple[int, dict[str, object]]:
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_the_uploader_deletes_from_the_result_page(env: Env, page: Page, tmp_path: Path) -> None:
    src = random_file(tmp_path / "to-delete.bin", 2 * (1 << 20) + 5, seed=31)
    page.goto(env.gateway + "/")
    link = upload_in_page(page, [src])[0]
    li = page.locator("li.upload").last
    assert env.veil("check", link).returncode == 0  # on the nodes, all 10 shares
    li.get_by_role("button", name="Delete from the network").click()
    page.wait_for_selector("li.upload:last-child[data-state='deleted']", timeout=120_000)
    assert "Deleted from the network (10 shares)" in li.inner_text()
    p = env.veil("get", link, "-o", str(tmp_path / "back.bin"), check=False)
    assert p.returncode == 4 and "no node has this file" in p.stderr.decode()
    assert page.errors == []  # type: ignore[attr-defined]


def test_anyone_else_is_refused(env: Env, page: Page, tmp_path: Path) -> None:
    src = random_file(tmp_path / "keep.bin", 300_000, seed=32)
    page.goto(env.gateway + "/")
    link = upload_in_page(page, [src])[0]
    verify = link.split("/f/", 1)[1].split("#", 1)[0]
    status, body = _post(f"{env.gateway}/api/files/{verify}/delete", {"key": "ab" * 32})
    assert status == 403 and body["error"] == "not_allowed"
    status, body = _post(f"{env.gateway}/api/files/{verify}/delete", {"key": "nothex"})
    assert status == 400
    env.put(src)  # the CLI user has a deletion secret of their own (made by its first put) ...
    p = env.veil("rm", link, check=False)  # ... which is not this browser upload's key
    assert p.returncode == 10 and "refused the delete" in p.stderr.decode()
    out = tmp_path / "still-here.bin"
    env.veil("get", link, "-o", str(out))
    assert out.read_bytes() == src.read_bytes()
