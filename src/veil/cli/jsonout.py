"""`--json` for the commands scripts call: one option, one printer (docs/specs/cli-json.md).

Every JSON answer is one object on one line of stdout (JSON Lines where a command reports on
several things, as `veil put A B C`), with a ``"v": 1`` shape version; amounts are integers of the
ledger's smallest unit, sizes integers of bytes, times Unix seconds. Warnings and errors still go
to stderr as text, and the exit codes are the text mode's.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])
SHAPE = 1  # bump only for a change a script would notice (a key removed or its meaning changed)


def json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True,
                        help="Print the result as one line of JSON (docs/specs/cli-json.md).")(f)  # fmt: skip


def emit(obj: dict[str, Any]) -> None:
    """Print ``obj`` (with the shape version first) as one line of JSON on stdout."""
    click.echo(json.dumps({"v": SHAPE, **obj}, ensure_ascii=False, separators=(",", ":")))


def channel_row(cid: bytes, ch: Any, me: bytes) -> dict[str, Any]:
    """A ledger channel (veil.ledger.state.Channel) as `--json` shows it, from ``me``'s side."""
    from veil.ledger.address import encode_address
    from veil.ledger.state import CLOSING

    mine = ch.payer == me
    return {"id": cid.hex(), "direction": "to" if mine else "from",
            "peer": encode_address(ch.payee if mine else ch.payer), "deposit": ch.deposit, "settled": ch.paid,
            "free_bytes_settled": ch.free_bytes, "status": "closing" if ch.status == CLOSING else "open",
            "expires": ch.expires, "close_at": ch.close_at or None}  # fmt: skip
