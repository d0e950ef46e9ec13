"""Which pages of a big folder could hold a name that collides with a new one once normalised
and case-folded (names.fold), so that adding a name checks collisions without reading every page.

A name ``x`` collides with ``n`` when ``fold(x) == fold(n)``. When ``fold(n)`` is ASCII, every
character of such an ``x`` folds, alone, to ASCII (a character whose decomposition holds a
combining mark keeps it through case folding), and ``fold(x)`` is the concatenation of those
per-character folds. So the candidates are the strings spelt by walking ``fold(n)`` with, at
each step, any character whose own fold is the next 1..3 ASCII characters (``S``, ``s``, ``ſ``
for ``s``; ``ß`` for ``ss``; ``ﬁ`` for ``fi`` ...). The walk descends a prefix only while the
names starting with it span more than one page, so it visits few prefixes; past MAX_STEPS, or
for a name whose fold is not ASCII, the answer is None: read every page.

Imports from: veil.format.
"""

from __future__ import annotations

import functools
import unicodedata

from veil.format.folder import PageRef
from veil.format.folder_pages import page_for
from veil.format.names import fold

MAX_STEPS = 4096
TOP = "\U0010ffff"


@functools.cache
def _ascii_folds() -> dict[str, tuple[str, ...]]:
    """ASCII fold (1..3 characters) -> the characters that fold to it alone. Only the BMP has
    such characters (astral case pairs fold within their own scripts)."""
    out: dict[str, list[str]] = {}
    for cp in range(0x10000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        c = chr(cp)
        f = fold(c)
        if f.isascii() and 1 <= len(f) <= 3:
            out.setdefault(f, []).append(c)
    return {k: tuple(v) for k, v in out.items()}


def collision_pages(firsts: list[str], name: str) -> set[int] | None:
    """Indexes of the pages (given their ``first`` names) that could hold a name folding like
    ``name``; None when that cannot be bounded cheaply (read them all)."""
    f = fold(unicodedata.normalize("NFC", name))
    if not f.isascii():
        return None
    refs = [PageRef(x, 0, "") for x in firsts]
    table = _ascii_folds()
    found: set[int] = set()
    steps = 0
    stack = [("", 0)]
    while stack:
        prefix, pos = stack.pop()
        steps += 1
        if steps > MAX_STEPS:
            return None
        if pos == len(f):
            found.add(page_for(refs, prefix))
            continue
        lo, hi = page_for(refs, prefix), page_for(refs, prefix + TOP)
        if lo == hi:
            found.add(lo)
            continue
        for size in (1, 2, 3):
            for c in table.get(f[pos : pos + size], ()) if pos + size <= len(f) else ():
                stack.append((prefix + c, pos + size))
    return found
