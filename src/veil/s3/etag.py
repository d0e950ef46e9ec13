"""ETags as S3 computes them: the MD5 of the object, or for a multipart upload the MD5 of the
parts' MD5s followed by ``-N`` (N parts). Always shown quoted.
Imports: the standard library only.
"""

from __future__ import annotations

import hashlib


def quoted(hex_digest: str) -> str:
    return f'"{hex_digest}"'


def unquoted(etag: str) -> str:
    e = etag.strip()
    if e.startswith("W/"):
        e = e[2:]
    return e.strip('"')


def multipart_etag(part_etags: list[str]) -> str:
    """``"md5(md5(part1) || md5(part2) ...)-N"`` from the parts' (quoted or bare) hex ETags."""
    h = hashlib.md5()
    for e in part_etags:
        h.update(bytes.fromhex(unquoted(e)))
    return quoted(f"{h.hexdigest()}-{len(part_etags)}")
