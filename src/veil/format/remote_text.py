"""Make text that came from a remote peer safe to print or log: one helper, used everywhere.

A node's error message, a DHT record's address or a peer's name may carry terminal escape
sequences (ESC [ ... m recolours, ESC ] ... rewrites the window title, CR overwrites a line)
or be very long. ``clean`` drops every control and format character (C0, DEL, C1, bidi
overrides), keeps printable text, and bounds the length; nothing remote reaches a terminal or a
log raw (issue 18, defect 7). Imports nothing from Veil.
"""

from __future__ import annotations

import re
import unicodedata

MAX_REMOTE_TEXT = 500

# ESC-introduced sequences (CSI, OSC, and two-byte escapes) are dropped whole, so no
# "[31m" residue is left behind once the ESC itself is gone.
_ESCAPE = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]?|\][^\x07\x1b]*(\x07|\x1b\\)?|[@-_]?)|\x9b[0-?]*[ -/]*[@-~]?")


def clean(text: object, limit: int = MAX_REMOTE_TEXT) -> str:
    """``text`` (anything; str() is taken) with escape sequences and control characters removed
    (line breaks and tabs become spaces), at most ``limit`` characters."""
    s = _ESCAPE.sub("", str(text))
    out = []
    for ch in s:
        if ch in "\t\n\r\v\f":
            out.append(" ")
        elif unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn"):
            continue
        else:
            out.append(ch)
    flat = "".join(out)
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
