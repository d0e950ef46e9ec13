"""`upload()` always makes its own file key: segment nonces are the segment index, so a key
given twice would reuse AES-GCM nonces (issue 18)."""

from __future__ import annotations

import inspect

from veil.client.upload import upload


def test_upload_takes_no_key() -> None:
    params = inspect.signature(upload).parameters
    assert not [p for p in params if "key" in p.lower()]
    assert not [p for p in params.values() if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
