"""Folder entry names: what may be written, and how a listing maps to local file names (pure).

docs/specs/folders.md, "Names". A name is one path component: 1..255 bytes of UTF-8 in NFC,
never ``.`` or ``..``, without ``/``, ``\\``, NUL or any other control character. Writers refuse
anything else and refuse a name that collides with an existing entry once normalised and
case-folded (so a folder never holds ``Café`` twice, or ``README`` and ``readme``, which one file
system would merge). Readers check every name again, because a folder may have been written by
hand: a bad name is refused with a warning, a colliding one renamed ``name (2).ext``; a folder
can therefore never make a download write outside its target directory.

Imports from: veil.errors.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from veil.errors import UsageError

MAX_NAME_BYTES = 255
MAX_PATH_DEPTH = 64


def name_problem(name: object) -> str | None:
    """Why ``name`` may not be a folder entry's name, or None if it may."""
    if not isinstance(name, str):
        return "not a string"
    if not name:
        return "empty name"
    if name in (".", ".."):
        return f"{name!r} is not a name"
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        return "not valid Unicode (lone surrogate)"
    if size > MAX_NAME_BYTES:
        return f"longer than {MAX_NAME_BYTES} bytes"
    for ch in name:
        if ch in "/\\":
            return f"contains {ch!r} (a path separator)"
        if ch == "\x00":
            return "contains NUL"
        if unicodedata.category(ch) == "Cc":
            return f"contains the control character U+{ord(ch):04X}"
    if unicodedata.normalize("NFC", name) != name:
        return "not in Unicode normal form C"
    return None


def check_name(name: str) -> str:
    """``name`` if a writer may use it; UsageError naming the rule otherwise."""
    problem = name_problem(name)
    if problem is not None:
        raise UsageError(f"bad entry name {shown(name)}: {problem}")
    return name


def normalise(name: str) -> str:
    """What a writer stores for a name the user typed: its NFC form (then checked)."""
    return check_name(unicodedata.normalize("NFC", name))


def fold(name: str) -> str:
    """The collision key: two names with the same key are one file on some file system."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFD", name).casefold())


def shown(name: object) -> str:
    """A name made safe to print: control characters escaped, length bounded."""
    text = name if isinstance(name, str) else repr(name)
    out = "".join(c if unicodedata.category(c) not in ("Cc", "Cs") else f"\\x{ord(c):02x}" for c in text[:300])
    return repr(out)


def split_path(path: str) -> list[str]:
    """``a/b/c`` (a path inside a folder, as typed after ``FOLDER/``) into checked components."""
    parts = path.strip("/").split("/") if path.strip("/") else []
    if len(parts) > MAX_PATH_DEPTH:
        raise UsageError(f"path is deeper than {MAX_PATH_DEPTH} folders")
    return [check_name(unicodedata.normalize("NFC", p)) for p in parts]


@dataclass(frozen=True)
class LocalName:
    name: str  # the entry's name as stored
    local: str | None  # the file name to write, or None: refused
    warning: str | None = None


def local_names(names: list[str]) -> list[LocalName]:
    """Map a listing's names to safe, distinct local names (in listing order), with a warning for
    every name refused or renamed. Distinct means distinct after ``fold``, so the plan is safe on
    case-insensitive and normalising file systems too."""
    taken: set[str] = set()
    out: list[LocalName] = []
    for name in names:
        problem = name_problem(name)
        if problem is not None:
            out.append(LocalName(name, None, f"refused entry {shown(name)}: {problem}"))
            continue
        local = name
        n = 2
        while fold(local) in taken:
            stem, dot, ext = name.rpartition(".")
            local = f"{stem} ({n}).{ext}" if dot and stem else f"{name} ({n})"
            n += 1
        if name_problem(local) is not None:
            out.append(LocalName(name, None, f"refused entry {shown(name)}: it collides with another entry"))
            continue
        taken.add(fold(local))
        warning = None if local == name else f"renamed {shown(name)} to {shown(local)}: it collides with another entry"
        out.append(LocalName(name, local, warning))
    return out
